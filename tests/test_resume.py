"""A training killed at any point and resumed is the same run as one never killed.

For each kind, the train stage (``python -m tasks.train``, real TensorFlow on tiny data) runs
twice in two copies of the same inputs: once SIGKILLed while a later epoch runs (at least one
epoch finished) and then run again, which resumes from its backup; once straight through.
Both must end with the same model bit for bit (every weight array equal), the same
``metrics/train.json`` (timings and ``resumed_from_epoch`` aside), the same model card and the
same DVCLive histories, every epoch in them. On CPU the stage runs with deterministic kernels.

- text classifier: starting from a (random) pretrained language model, so there are two
  phases (the head alone, then everything at another learning rate); the kill lands as the
  second starts, or in its last epoch, with its optimizer state and early stopping (best value,
  epoch and weights) in the backup;
- series classifier: one phase, K classes (early stopping on validation loss);
- language model: truncated BPTT with sampled softmax, dropout and learning-rate decay.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import NEGATIVE, NEUTRAL, POSITIVE, ROOT, SHARED, merge_params, synthetic_reviews
from tasks.networks import lm, training
from tasks import kinds
from tasks.core import artifacts, common

TIMINGS = {"train_seconds", "train_samples_per_s", "train_tokens_per_s", "resumed_from_epoch"}
TIMING_CURVES = {"train_tokens_per_s"}  # DVCLive metrics that are speeds, not results
EPOCHS = 6


# --------------------------------------------------------------------------- inputs


def _params(kind: str, overrides: dict, **sections: dict) -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    return merge_params(params, {"train": {"distribute": "off", kind: overrides}, **sections})


def _text_inputs(folder: Path) -> dict:
    """Tokenized reviews and a pretrained (untrained, seeded) language model of their vocabulary."""
    import keras

    from tasks.networks import lm
    from tasks.inputs import vocabulary
    from tasks.core.artifacts import PRETRAINED_CARD as CARD_FILE
    from tasks.inputs.vocabulary import vocabulary_digest

    frame = synthetic_reviews(900, seed=3)
    frame["n_tokens"] = frame["text"].str.split().str.len()
    splits = {"train": frame.iloc[:700], "validation": frame.iloc[700:]}
    meta = {"kind": "text_classification", "classes": ["negative", "positive"], "clean": {}}
    files = kinds.part("text_classification", "tokenize").featurize(splits, meta, {"vocab_size": 200, "min_count": 1, "max_len": "auto",
                                                         "length_percentile": 95})
    common.write_files(files, _mkdir(folder / "data/tokenized"))
    words = files[vocabulary.VOCAB_FILE].split("\n")[:-1]
    architecture = {"model": "gru", "layers": 1, "units": 8, "embedding_dim": 8, "dropout": 0.1, "tied": True}
    keras.utils.set_random_seed(5)
    lm.build(files[vocabulary.META_FILE]["vocab_size"], architecture).save_weights(
        str(_mkdir(folder / "pretrained") / lm.WEIGHTS_FILE))
    (folder / "pretrained" / CARD_FILE).write_text(json.dumps({
        "pretrained": True, "architecture": architecture, "vocab_size": files[vocabulary.META_FILE]["vocab_size"],
        "vocabulary": vocabulary_digest(words), "clean": {}}))
    return _params("text_classification", {
        "init": "pretrained", "freeze_epochs": 1, "finetune_learning_rate": 0.005, "epochs": EPOCHS, "batch_size": 16,
        "dropout": 0.3, "learning_rate": 0.01, "early_stopping_patience": 2, "ensemble": "none"},
        pretrain={"source": ["train"]})  # what made pretrained/ (made here instead)


def _series_inputs(folder: Path) -> dict:
    """Three noisy shapes, two features, 12 to 30 steps (tests/test_series.py's), tokenized."""
    from test_series import SHAPES, shape_series

    from tasks.inputs import series

    rng = np.random.default_rng(4)
    labels = [number % 3 for number in range(300)]
    items = [shape_series(SHAPES[label], int(rng.integers(12, 30)), rng).astype(np.float32) for label in labels]
    values, steps = series.pack(items)
    frame = pd.DataFrame({"id": [f"s{number}" for number in range(300)], "label": labels, "values": values, "n_steps": steps})
    splits = {"train": frame.iloc[:240], "validation": frame.iloc[240:]}
    meta = {"kind": "series_classification", "classes": list(SHAPES), "clean": {}, "n_features": 2}
    common.write_files(kinds.part("series_classification", "tokenize").featurize(splits, meta, {}), _mkdir(folder / "data/tokenized"))
    return _params("series_classification", {
        "bidirectional": False, "layers": 1, "units": 8, "dropout": 0.3, "batch_size": 16, "epochs": EPOCHS,
        "learning_rate": 0.01, "early_stopping_patience": 2, "ensemble": "none"})


def _corpus_inputs(folder: Path) -> dict:
    """A tiny corpus of sentences over a few dozen words, tokenized."""
    import random

    from tasks.inputs.textclean import END_TOKEN

    rng = random.Random(6)
    documents = [" ".join(rng.choices(NEUTRAL + POSITIVE + NEGATIVE, k=rng.randint(5, 15)) + [END_TOKEN])
                 for _ in range(1500)]
    frame = pd.DataFrame({"id": [f"d{number}" for number in range(len(documents))], "text": documents})
    splits = {"train": frame.iloc[:1350], "validation": frame.iloc[1350:]}
    meta = {"kind": "language_model", "clean": {}, "end_token": END_TOKEN, "tokenized": False}
    common.write_files(kinds.part("language_model", "tokenize").featurize(splits, meta, {"vocab_size": 100, "min_count": 1}),
                         _mkdir(folder / "data/tokenized"))
    return _params("language_model", {
        "layers": 1, "units": 16, "embedding_dim": 16, "dropout": 0.3, "sequence_length": 10, "batch_size": 8,
        "sampled_softmax": 8, "epochs": EPOCHS, "early_stopping_patience": 2, "learning_rate": 0.01})


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


# --------------------------------------------------------------------------- runs


def _env() -> dict[str, str]:
    # On CPU, where the stage turns on deterministic kernels: bit for bit is the CPU's promise (cuDNN's
    # kernels on a GPU are not deterministic, a resumed run there is the same run only up to them).
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "-1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    if (SHARED / "nltk_data").is_dir():
        env.setdefault("NLTK_DATA", str(SHARED / "nltk_data"))
    return env


def _start(folder: Path, log: str) -> subprocess.Popen:
    """The train stage in ``folder``, in its own process group, its output to ``folder/log``."""
    with (folder / log).open("w") as output:
        return subprocess.Popen([sys.executable, "-m", "tasks.train"], cwd=folder, env=_env(), stdout=output,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _finish(process: subprocess.Popen, folder: Path, log: str) -> str:
    returncode = process.wait(timeout=300)
    output = (folder / log).read_text()
    assert returncode == 0, f"train failed ({returncode}):\n{output}"
    return output


def _progress(folder: Path) -> int:
    try:
        return json.loads((folder / artifacts.PROGRESS_FILE).read_text())["epoch"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


def _kill_mid_epoch(folder: Path, after: int) -> int:
    """Start the train stage, SIGKILL it (and its group) while epoch ``after + 1`` runs; the
    epoch its backup resumes from."""
    process = _start(folder, "killed.log")
    try:
        marks = {}
        deadline = time.monotonic() + 240
        while after not in marks:
            epoch = _progress(folder)
            if epoch in (after - 1, after) and epoch not in marks:
                marks[epoch] = time.monotonic()
            assert process.poll() is None, f"training ended before the kill:\n{(folder / 'killed.log').read_text()}"
            assert time.monotonic() < deadline, f"timed out waiting for epoch {after}"
            time.sleep(0.01)
        # Into the next epoch (an epoch's backup is committed before its progress is written): a
        # fraction of an epoch, at most 0.1 s (the first epochs of a phase are the slowest: tracing).
        time.sleep(min(0.1, (marks[after] - marks.get(after - 1, marks[after])) / 3))
        assert process.poll() is None, "training ended before the kill"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    [backup] = [path for path in (folder / training.CHECKPOINT_ROOT).iterdir() if path.is_dir()]
    killed_at = training.resumable_epoch(backup)
    assert after <= killed_at < EPOCHS, f"the backup resumes from epoch {killed_at}"
    assert not (folder / "models").exists() and not (folder / "metrics/train.json").exists()
    return killed_at


def _weights(folder: Path) -> dict[str, np.ndarray]:
    """Every weight array of the saved model, by its path in the weights file."""
    import h5py

    models = folder / "models"
    if (models / "model.keras").exists():
        with zipfile.ZipFile(models / "model.keras") as archive:
            source = io.BytesIO(archive.read("model.weights.h5"))
    else:
        source = models / lm.WEIGHTS_FILE
    arrays: dict[str, np.ndarray] = {}
    with h5py.File(source, "r") as weights:
        weights.visititems(lambda name, item: arrays.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None)
    assert arrays
    return arrays


def _curves(folder: Path) -> dict[str, list]:
    """DVCLive's metric histories: (step, value) rows per metric, timestamps and speeds aside."""
    root = folder / "dvclive/train/plots/metrics"
    curves = {}
    for path in sorted(root.rglob("*.tsv")):
        name = str(path.relative_to(root))[: -len(".tsv")]
        if name not in TIMING_CURVES:
            frame = pd.read_csv(path, sep="\t")
            curves[name] = frame.drop(columns=["timestamp"], errors="ignore").values.tolist()
    return curves


def _card(folder: Path) -> dict:
    card = json.loads((folder / "models/model.json").read_text())
    for entry in card.get("history", []):
        entry.pop("tokens_per_s", None)
    return card


def _resumed_equals_straight(tmp_path: Path, make_inputs, kill_after: int = 2) -> None:
    started = time.perf_counter()
    killed, straight = tmp_path / "killed", tmp_path / "straight"
    params = make_inputs(killed)
    (killed / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.copytree(killed, straight)

    uninterrupted = _start(straight, "train.log")  # beside the other: the two share nothing but the CPUs
    try:
        killed_at = _kill_mid_epoch(killed, kill_after)
        resumed = _finish(_start(killed, "resumed.log"), killed, "resumed.log")
        _finish(uninterrupted, straight, "train.log")
    finally:
        if uninterrupted.poll() is None:
            os.killpg(uninterrupted.pid, signal.SIGKILL)
            uninterrupted.wait(timeout=60)
    assert f"train: resuming from the backup of epoch {killed_at}" in resumed
    assert "epoch 1/" not in resumed.lower() and f"epoch {killed_at + 1}/{EPOCHS}" in resumed.lower()

    summaries = [json.loads((folder / "metrics/train.json").read_text()) for folder in (killed, straight)]
    assert summaries[0]["resumed_from_epoch"] == killed_at and summaries[1]["resumed_from_epoch"] == 0
    assert {key: value for key, value in summaries[0].items() if key not in TIMINGS} == \
        {key: value for key, value in summaries[1].items() if key not in TIMINGS}
    weights = [_weights(folder) for folder in (killed, straight)]
    assert weights[0].keys() == weights[1].keys()
    different = [name for name in weights[0] if not np.array_equal(weights[0][name], weights[1][name])]
    assert different == [], f"weights that differ after the resume from epoch {killed_at}: {different}"
    assert _card(killed) == _card(straight)
    curves = [_curves(folder) for folder in (killed, straight)]
    assert [row[0] for row in curves[1]["val_loss"]] == list(range(summaries[1]["epochs_run"]))  # step: epoch index
    assert curves[0] == curves[1]  # every epoch, also those before the kill
    print(f"killed during epoch {killed_at + 1} (resumed from {killed_at}), {summaries[1]['epochs_run']} epochs; "
          f"identical; {time.perf_counter() - started:.0f}s")


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("kill_after", [1, EPOCHS - 1], ids=["between-phases", "last-epoch"])
def test_text_classifier_resumed_in_its_fine_tuning_phase_is_the_same_run(tmp_path: Path, kill_after: int):
    """Killed in the first epoch of the second phase (the backup: the first phase ended on its
    best weights), or in the last epoch: here (seeded, on CPU) its validation AUC is below the
    fifth's, so the model served is the best weights the backup kept, chosen by the best value
    it kept."""
    _resumed_equals_straight(tmp_path, _text_inputs, kill_after)


def test_series_classifier_resumed_is_the_same_run(tmp_path: Path):
    _resumed_equals_straight(tmp_path, _series_inputs)


def test_language_model_resumed_is_the_same_run(tmp_path: Path):
    _resumed_equals_straight(tmp_path, _corpus_inputs)


def test_a_backup_restores_dropout_and_optimizer_state_and_a_misfit_one_changes_nothing(tmp_path: Path):
    """Keras' save_weights leaves the dropout layers' seed generators out: the backup keeps them,
    and the optimizer's variables. A backup that does not fit is discarded, the model as it was."""
    import keras

    from tasks.networks.model import build_text_classifier

    def classifier(seed: int):
        keras.utils.set_random_seed(seed)
        return build_text_classifier({"model": "gru", "bidirectional": False, "layers": 1, "units": 4, "embedding_dim": 4,
                                      "dropout": 0.5, "pooling": "max"}, vocab_size=20)

    def adam(variables):
        optimizer = keras.optimizers.Adam()
        optimizer.build(variables)
        return optimizer

    def values(variables) -> list[np.ndarray]:
        return [variable.numpy() for variable in variables]

    model = classifier(1)
    for number, state in enumerate(training.random_state(model)):
        state.assign(np.asarray([7, 123 + number]))  # as after some training steps
    optimizer = adam(model.trainable_variables)
    for number, variable in enumerate(optimizer.variables):
        variable.assign(np.full(variable.shape, number + 0.5, np.dtype(variable.dtype)))
    training.save_backup(tmp_path / "backup", model, {"epoch": 3, "note": "kept"}, optimizer, {"best": model.get_weights()})

    fresh = classifier(2)
    before = values(fresh.variables)
    assert len(training.random_state(fresh)) == 3  # two dropout layers and the GRU cell
    assert not all(np.array_equal(a, b) for a, b in zip(before, values(model.variables)))
    fresh_optimizer = adam(fresh.trainable_variables)
    record, arrays = training.load_backup(tmp_path / "backup", fresh, fresh_optimizer)
    assert record["epoch"] == 3 and record["note"] == "kept" and len(arrays["best"]) == len(fresh.get_weights())
    assert all(np.array_equal(a, b) for a, b in zip(values(model.variables), values(fresh.variables)))
    assert all(np.array_equal(a, b) for a, b in zip(values(optimizer.variables), values(fresh_optimizer.variables)))

    for variable, value in zip(fresh.variables, before):
        variable.assign(value)
    misfit = adam(fresh.trainable_variables[:-1])  # fails after the weights were read: they are put back
    assert training.load_backup(tmp_path / "backup", fresh, misfit) is None
    assert not (tmp_path / "backup").exists()
    assert all(np.array_equal(a, b) for a, b in zip(before, values(fresh.variables)))


def test_each_epoch_order_depends_on_seed_and_epoch_only():
    items = [np.arange(1, 2 + number % 7, dtype=np.int32) for number in range(40)]
    labels = np.arange(40, dtype=np.float32)

    def order(epoch: int, seed: int = 3) -> list[float]:
        dataset = training.ragged_dataset(items, labels, 4, seed, shuffle=True, epoch=epoch)
        return [float(label) for _, batch in dataset for label in batch.numpy()]

    first = order(2)
    assert order(0) != first and order(2, seed=4) != first
    assert order(2) == first  # in a fresh iteration, after other epochs' datasets: the same batches
    assert sorted(first) == sorted(labels.tolist())


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", *sys.argv[1:]]))
