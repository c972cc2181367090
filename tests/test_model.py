"""Model rules (cuDNN eligibility, safe loading) and the trained model in use."""
from __future__ import annotations

import json
from pathlib import Path

import keras
import pandas as pd
import pytest
from keras import layers

from conftest import run, up_to_date
from tasks import kinds
from tasks.core.common import PipelineError
from tasks.networks.model import build_text_classifier, cudnn_eligible, load_model

PARAMS = {"model": "gru", "bidirectional": True, "layers": 2, "units": 4, "embedding_dim": 4, "dropout": 0.1, "pooling": "max"}


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_built_recurrent_layers_are_cudnn_eligible(kind: str):
    model = build_text_classifier({**PARAMS, "model": kind}, vocab_size=50)
    recurrent = [layer for layer in model.layers if isinstance(layer, layers.Bidirectional)]
    assert len(recurrent) == 2
    assert all(cudnn_eligible(layer) == [] for layer in recurrent)


def test_cudnn_rules_name_what_breaks_eligibility():
    assert cudnn_eligible(layers.LSTM(4, activation="relu")) == ["activation is relu, not tanh"]
    assert cudnn_eligible(layers.GRU(4, recurrent_dropout=0.2, reset_after=False)) == [
        "recurrent_dropout is not 0",
        "reset_after is off",
    ]
    assert cudnn_eligible(layers.LSTM(4, recurrent_activation="hard_sigmoid", unroll=True, use_bias=False)) == [
        "recurrent_activation is hard_sigmoid, not sigmoid",
        "unroll is on",
        "use_bias is off",
    ]
    assert cudnn_eligible(layers.SimpleRNN(4)) == ["SimpleRNN has no cuDNN kernel"]


def test_padding_is_masked_so_right_padding_does_not_change_predictions():
    model = build_text_classifier({**PARAMS, "bidirectional": False, "layers": 1}, vocab_size=50)
    short = model.predict_on_batch(keras.ops.convert_to_tensor([[5, 6, 7]]))
    padded = model.predict_on_batch(keras.ops.convert_to_tensor([[5, 6, 7, 0, 0, 0]]))
    assert float(short[0, 0]) == pytest.approx(float(padded[0, 0]), abs=1e-6)


@pytest.mark.parametrize("batch_size", [4, 16])
def test_padding_fraction_from_lengths_is_what_the_bucketed_batches_hold(batch_size: int):
    import numpy as np

    from tasks.networks.training import padding_fraction, ragged_dataset

    rng = np.random.default_rng(batch_size)
    items = [np.arange(1, length + 1, dtype=np.int32) for length in rng.integers(1, 60, 203)]
    batches = ragged_dataset(items, np.zeros(len(items), np.float32), batch_size, seed=5, shuffle=True, epoch=2)
    held = [sequences.numpy() for sequences, _ in batches]
    padded, real = sum(batch.size for batch in held), sum(int((batch != 0).sum()) for batch in held)
    assert padded > real  # the case pads at all
    assert padding_fraction([len(item) for item in items], batch_size, seed=5, epoch=2) == pytest.approx(1 - real / padded)


def test_unknown_model_is_a_clear_error():
    with pytest.raises(PipelineError, match="train.model 'transformer'"):
        build_text_classifier({**PARAMS, "model": "transformer"}, vocab_size=10)


def test_safe_mode_refuses_code_in_a_model_file(tmp_path: Path):
    inputs = keras.Input(shape=(2,))
    model = keras.Model(inputs, layers.Lambda(lambda x: x * 2)(inputs))
    model.save(tmp_path / "evil.keras")
    with pytest.raises(ValueError, match="(?i)safe"):
        load_model(str(tmp_path / "evil.keras"))


def test_predict_cli_scores_raw_text(trained_project: Path):
    source = trained_project / "incoming.csv"
    pd.DataFrame(
        {"review": ["I love it, perfect and gorgeous!", "Awful, cheap and itchy. Returned.", None]}
    ).to_csv(source, index=False)
    run(["python", "-m", "tasks.predict", str(source), "--text-column", "review", "-o", "scored.csv"], trained_project)
    scored = pd.read_csv(trained_project / "scored.csv")
    assert list(scored.columns) == ["review", "predicted_label", "predicted_probability"]
    assert scored["predicted_probability"].between(0, 1).all()
    assert scored["predicted_probability"][0] > scored["predicted_probability"][1]


def test_predict_cli_names_a_missing_column(trained_project: Path):
    (trained_project / "bad.csv").write_text("body\nhello\n")
    result = run(["python", "-m", "tasks.predict", "bad.csv", "--text-column", "review", "-o", "x.csv"], trained_project, check=False)
    assert result.returncode != 0
    assert "bad.csv: no column 'review'" in result.stderr
    assert not (trained_project / "x.csv").exists()


def test_training_twice_gives_identical_metrics(trained_project: Path):
    """Same data, same params, CPU: seeds and deterministic ops make the run repeat exactly."""
    before = json.loads((trained_project / "metrics/evaluate.json").read_text())
    run(["dvc", "repro", "--force", "--single-item", "train"], trained_project)
    run(["dvc", "repro", "--single-item", "evaluate"], trained_project)
    assert json.loads((trained_project / "metrics/evaluate.json").read_text()) == before
    assert up_to_date(run(["dvc", "status"], trained_project).stdout)


def test_mirrored_strategy_over_the_cpu_trains_the_same_model(trained_project: Path, tmp_path: Path, monkeypatch):
    """The distributed path (MirroredStrategy, as with several GPUs) over the one CPU device gives
    the same model as training without a strategy, within float tolerance.

    Both runs read the batches in one fixed order: under a strategy Keras creates one more
    iterator of the dataset, so a seeded reshuffle would start one permutation later (another,
    equally random order); the same order isolates what the strategy computes."""
    import numpy as np
    import yaml

    from tasks.networks import training
    from tasks.kinds import settings

    monkeypatch.chdir(trained_project)
    shuffled = training.ragged_dataset
    monkeypatch.setattr(training, "ragged_dataset", lambda *args, **kwargs: shuffled(*args, **{**kwargs, "shuffle": False}))
    params = settings(yaml.safe_load(Path("params.yaml").read_text())["train"], "text_classification", "train")
    params = {**params, "epochs": 2}
    for name in ("m1", "m2"):
        (tmp_path / name).mkdir()
    plain = kinds.part("text_classification", "train").train(params, Path("data/tokenized"), tmp_path / "m1", tmp_path / "l1", tmp_path / "c1")
    mirrored = kinds.part("text_classification", "train").train(params, Path("data/tokenized"), tmp_path / "m2", tmp_path / "l2", tmp_path / "c2",
                                         devices=["/cpu:0"])
    assert plain["replicas"] == 1 and mirrored["replicas"] == 1
    texts = pd.read_parquet("data/clean/validation.parquet")["text"].tolist()
    first = kinds.part("text_classification", "predict").Predictor(tmp_path / "m1").probabilities_of_clean(texts)
    second = kinds.part("text_classification", "predict").Predictor(tmp_path / "m2").probabilities_of_clean(texts)
    assert np.allclose(first, second, atol=1e-4)
    assert {path.name for path in (tmp_path / "m1").iterdir()} == {path.name for path in (tmp_path / "m2").iterdir()}
