"""Classifiers that start from a language model, the baseline beside them, ensembles and the
decision threshold."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import commit_all, make_project, run, synthetic_reviews, up_to_date
from tasks.targets import VALIDATION_PROBABILITIES, classification
from tasks.targets.classifier import baseline as classifier_baseline
from tasks.targets.classifier import train as classifier_train
from tasks.networks import lm
from tasks.core.common import PipelineError
from tasks.baselines.tfidf import TfidfLogistic

ARCHITECTURE = {"model": "lstm", "layers": 2, "units": 6, "embedding_dim": 5, "dropout": 0.1, "tied": True}


def test_classifier_encoder_starts_with_the_language_model_weights():
    from tasks.networks.model import build_text_classifier, initialise_from_language_model

    language_model = lm.build(40, ARCHITECTURE)
    shaped = {"model": "lstm", "layers": 2, "units": 6, "embedding_dim": 5, "bidirectional": False, "dropout": 0.1,
              "pooling": "max"}
    classifier = build_text_classifier(shaped, 40, n_classes=3)
    encoder = initialise_from_language_model(classifier, language_model)
    assert encoder == ["embedding", "lstm_0", "lstm_1"]
    for name in encoder:
        source = language_model.embedding if name == "embedding" else language_model.rnns[int(name[-1])]
        for ours, theirs in zip(classifier.get_layer(name).get_weights(), source.get_weights()):
            assert np.array_equal(ours, theirs)


def test_robust_threshold_moves_less_than_the_best_threshold_when_the_model_changes_a_little():
    rng = np.random.default_rng(0)
    labels = (rng.random(2000) > 0.12).astype(int)  # the clothing reviews' validation split: 12% negative
    scores = np.clip(rng.normal(0.3 + 0.5 * labels, 0.2), 0, 1)
    best, robust = [], []
    for _ in range(40):  # the same data, models that differ a little (another seed, another machine)
        perturbed = np.clip(scores + rng.normal(0, 0.03, len(scores)), 0, 1)
        best.append(classification.best_threshold(labels, perturbed))
        robust.append(classification.robust_threshold(labels, perturbed))
    assert np.std(robust) < 0.75 * np.std(best)
    assert abs(np.mean(robust) - np.mean(best)) < 0.05  # the same place, steadier
    balanced = (rng.random(500) > 0.5).astype(int)
    assert 0.4 <= classification.robust_threshold(balanced, rng.random(500) * 0.5 + 0.5 * balanced) <= 0.6


def test_threshold_objective_accuracy_maximises_accuracy_and_a_typo_is_named():
    rng = np.random.default_rng(1)
    labels = (rng.random(3000) > 0.12).astype(int)
    scores = np.clip(rng.normal(0.3 + 0.5 * labels, 0.2), 0, 1)
    by_accuracy = classification.best_threshold(labels, scores, "accuracy")
    accuracy = lambda threshold: ((scores >= threshold) == labels).mean()
    assert accuracy(by_accuracy) == max(accuracy(t) for t in classification.THRESHOLDS)
    assert abs(classification.robust_threshold(labels, scores, "accuracy") - by_accuracy) <= 0.05
    with pytest.raises(PipelineError, match="train.text_classification.threshold_objective must be one of"):
        classification.threshold_objective({"threshold_objective": "f1"}, "train.text_classification")


def test_log_loss_scorer_prefers_calibrated_probabilities():
    labels = np.array([0, 1] * 50)
    calibrated = np.where(labels == 1, 0.9, 0.1)
    timid = np.where(labels == 1, 0.6, 0.4)  # the same ranking and decisions, less sure
    score = classifier_baseline.log_loss_scorer(["negative", "positive"])
    assert score(labels, calibrated) > score(labels, timid)
    assert score(labels, 1 - calibrated) < score(labels, timid)


def test_the_mix_follows_the_better_model():
    from tasks.targets.classifier.stacking import choose_mix

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 400)
    good = np.clip(labels * 0.8 + 0.1 + rng.normal(0, 0.05, 400), 0.01, 0.99)
    noise = rng.random(400)
    rnn_good, baseline_good = choose_mix(labels, good, noise), choose_mix(labels, noise, good)
    assert rnn_good["stack"]["baseline"] < 0.05 and rnn_good["stack"]["rnn"] > 0.5  # the noise gets no say
    assert baseline_good["stack"]["rnn"] < 0.05 and baseline_good["stack"]["baseline"] > 0.5


def test_a_fixed_ensemble_weight_mixes_as_set_and_a_bad_one_is_named(tmp_path: Path):
    from tasks.core.common import PipelineError

    labels = np.array([0, 1, 1, 0])
    rnn, baseline = np.array([0.2, 0.9, 0.6, 0.4]), np.array([0.1, 0.5, 0.8, 0.3])
    np.save(tmp_path / VALIDATION_PROBABILITIES, baseline)
    (tmp_path / "base.npz").write_bytes(b"baseline model")
    (tmp_path / "model").mkdir()
    params = {"ensemble": "baseline", "ensemble_weight": 0.25}
    mixed, card = classifier_train.ensemble(params, labels, rnn, tmp_path, "base.npz", tmp_path / "model", "train.x")
    assert np.allclose(mixed, 0.25 * rnn + 0.75 * baseline) and card["rnn_weight"] == 0.25
    assert (tmp_path / "model/base.npz").read_bytes() == b"baseline model"  # the served model carries the baseline
    with pytest.raises(PipelineError, match="train.x.ensemble_weight must be auto or a number from 0 to 1, not 2"):
        classifier_train.ensemble({**params, "ensemble_weight": 2}, labels, rnn, tmp_path, "base.npz", tmp_path, "train.x")


@pytest.mark.parametrize("weighting", ["tfidf", "nb"])
def test_ngram_baseline_learns_and_round_trips_without_pickle(tmp_path: Path, weighting: str):
    frame = synthetic_reviews(600, seed=2)
    texts = frame["text"].str.lower().str.replace(".", " .", regex=False).tolist()
    labels = frame["label"].to_numpy()

    def accuracy(truth, probabilities):
        return float(((probabilities >= 0.5) == truth).mean())

    model = TfidfLogistic.fit(texts[:400], labels[:400], texts[400:500], labels[400:500], accuracy, (1, 2), 1, None, [1, 10],
                              weighting)
    assert accuracy(labels[500:], model.probabilities(texts[500:])) > 0.85
    model.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as stored:
        assert all(stored[name].dtype != object for name in stored.files)
    assert np.allclose(TfidfLogistic.load(tmp_path / "m.npz").probabilities(texts[500:]), model.probabilities(texts[500:]))

    # Refitted on train and validation: the same C, vocabulary and weights, new coefficients; the
    # features fit weighted already are reused, and give what reading the texts again gives.
    refitted = model.refit(texts[:500], labels[:500])
    assert (refitted.c, refitted.vectorizer, refitted.ratio is None) == (model.c, model.vectorizer, weighting == "tfidf")
    read_again = TfidfLogistic.load(tmp_path / "m.npz").refit(texts[:500], labels[:500])
    assert np.allclose(read_again.coef, refitted.coef, atol=1e-5) and np.allclose(read_again.intercept, refitted.intercept, atol=1e-5)
    assert accuracy(labels[500:], refitted.probabilities(texts[500:])) > 0.85
    assert not np.allclose(refitted.probabilities(texts[500:]), model.probabilities(texts[500:]))


# --------------------------------------------------------------------------- the pipeline

PRETRAINED = {
    "pretrain": {"source": ["data/raw/unlabelled.csv", "train"], "units": 8, "embedding_dim": 8, "epochs": 1,
                 "batch_size": 8, "sequence_length": 10, "sampled_softmax": 16, "validation_fraction": 0.1},
    "train": {"text_classification": {"init": "pretrained", "freeze_epochs": 1, "epochs": 3, "ensemble": "baseline"}},
}


@pytest.fixture(scope="module")
def pretrained_project(tmp_path_factory) -> Path:
    root = make_project(tmp_path_factory.mktemp("pretrain") / "project", overrides=PRETRAINED)
    labelled = pd.read_csv(root / "data/raw/reviews.csv")
    unlabelled = synthetic_reviews(300, seed=7)[["text"]]
    unlabelled.to_csv(root / "data/raw/unlabelled.csv", index=False)
    # One test-split review slipped into the unlabelled corpus: it must never reach pretraining.
    run(["dvc", "repro", "clean"], root)
    test_text = pd.read_parquet(root / "data/clean/test.parquet")["raw_text"].iloc[0]
    pd.concat([unlabelled, pd.DataFrame({"text": [test_text]})], ignore_index=True).to_csv(root / "data/raw/unlabelled.csv", index=False)
    assert len(labelled) == 240
    commit_all(root, "unlabelled corpus")
    return root


@pytest.mark.slow
def test_pretrained_ensembled_classifier_end_to_end(pretrained_project: Path):
    root = pretrained_project
    first = run(["dvc", "repro"], root)
    assert "Running stage 'pretrain'" in first.stdout
    summary = json.loads((root / "metrics/pretrain.json").read_text())
    assert summary["pretrained"] and summary["dropped_as_held_out"] == 1
    card = json.loads((root / "models/model.json").read_text())
    assert card["init"]["pretrained"]["units"] == 8 and card["ensemble"]["baseline"] == "tfidf_logistic.npz"
    assert json.loads((root / "pretrained/card.json").read_text())["vocabulary"]
    metrics = json.loads((root / "metrics/evaluate.json").read_text())
    assert {"rnn_only", "baseline", "ensemble_rnn_weight"} <= set(metrics)
    assert metrics["rnn_only"]["n_test"] == metrics["baseline"]["n_test"] == metrics["n_test"]
    scored = run(["python", "-m", "tasks.predict", "data/raw/reviews.csv", "-o", "scored.csv"], root)
    assert "predict: 240 rows" in scored.stdout
    # A train parameter change reuses the pretrained model and the baseline.
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["train"]["text_classification"]["epochs"] = 2
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    again = run(["dvc", "repro"], root)
    assert [stage for stage in ("pretrain", "baseline", "train", "evaluate") if f"Running stage '{stage}'" in again.stdout] == [
        "train", "evaluate"]
    assert up_to_date(run(["dvc", "status"], root).stdout)


def test_a_pretrained_model_of_another_vocabulary_is_refused(tmp_path: Path):
    from tasks.core.common import PipelineError
    from tasks.kinds.text_classification.train import build

    (tmp_path / "card.json").write_text(json.dumps({"pretrained": True, "architecture": ARCHITECTURE, "vocabulary": "0" * 16}))
    meta = {"classes": ["negative", "positive"], "vocab_size": 12}
    with pytest.raises(PipelineError, match="another vocabulary"):
        build({"init": "pretrained", "dropout": 0.1, "pooling": "max"}, meta, ["a", "b"], tmp_path)
    (tmp_path / "card.json").write_text(json.dumps({"pretrained": False}))
    with pytest.raises(PipelineError, match="set pretrain.source"):
        build({"init": "pretrained"}, meta, ["a", "b"], tmp_path)
