"""Stacking the RNN with its baseline in logit space: a stack of two models with independent
errors beats both; a part that is noise gets no say; the card's mix is what is served."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tasks.targets import VALIDATION_PROBABILITIES
from tasks.targets.classification import mean_log_loss
from tasks.targets.classifier import train as classifier_train
from tasks.targets.classifier.stacking import choose_mix, mix


def noisy_scores(labels: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Positive probabilities of a model whose log-odds are ``strength`` x the label's sign plus its own noise."""
    return 1 / (1 + np.exp(-(strength * (2 * labels - 1) + rng.normal(0, 1.5, len(labels)))))


def test_two_models_with_independent_errors_stack_better_than_either():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 600)
    rnn, baseline = noisy_scores(labels, rng, 1.0), noisy_scores(labels, rng, 1.2)
    chosen = choose_mix(labels, rnn, baseline)
    assert chosen["served"] == "stack" and chosen["stack"]["rnn"] > 0.3 and chosen["stack"]["baseline"] > 0.3
    figures = chosen["validation"]
    assert figures["log_loss"]["stack_out_of_fold"] < min(figures["log_loss"]["rnn"], figures["log_loss"]["baseline"])
    assert figures["accuracy"]["stack_out_of_fold"] > max(figures["accuracy"]["rnn"], figures["accuracy"]["baseline"])
    fresh = rng.integers(0, 2, 2000)  # and on new rows too
    fresh_rnn, fresh_baseline = noisy_scores(fresh, rng, 1.0), noisy_scores(fresh, rng, 1.2)
    assert mean_log_loss(fresh, mix(chosen, fresh_rnn, fresh_baseline)) < min(
        mean_log_loss(fresh, fresh_rnn), mean_log_loss(fresh, fresh_baseline))


@pytest.mark.parametrize("rows", [12, 402])
def test_a_useless_rnn_is_left_out_and_the_served_mix_is_never_worse_out_of_fold(rows: int):
    """A calibrated baseline (the labels drawn from its probabilities: nothing to learn from it) and
    an RNN that is noise: the baseline alone is served, at small and larger validation sizes."""
    rng = np.random.default_rng(rows)
    baseline = rng.dirichlet(np.full(3, 0.3), rows)
    labels = np.asarray([rng.choice(3, p=row) for row in baseline])
    rnn = rng.dirichlet(np.ones(3), rows)  # noise
    chosen = choose_mix(labels, rnn, baseline)
    assert chosen["served"] == "baseline" and chosen["stack"] == {"rnn": 0.0, "baseline": 1.0, "bias": []}
    assert np.allclose(mix(chosen, rnn, baseline), baseline)
    assert "baseline alone" in chosen["why"]
    chosen = choose_mix(labels, baseline, rnn)  # the other way round: the RNN is the good one
    assert chosen["served"] == "rnn" and np.allclose(mix(chosen, baseline, rnn), baseline)


def test_a_handful_of_validation_rows_that_favour_the_rnn_by_chance_serve_the_baseline():
    """Five validation series (a small archive): the RNN's log-loss is a little lower on them, within
    the noise of five rows, so the cross-validated baseline is served; clearly lower, the RNN is."""
    labels = np.asarray([0, 1, 0, 1, 1])
    baseline = np.asarray([0.3, 0.7, 0.3, 0.7, 0.7])
    lucky = np.asarray([0.2, 0.8, 0.2, 0.8, 0.45])  # better on four rows, worse on one
    assert mean_log_loss(labels, lucky) < mean_log_loss(labels, baseline)
    chosen = choose_mix(labels, lucky, baseline)
    assert chosen["served"] == "baseline" and "does not beat its own by more than one standard error" in chosen["why"]
    sure = np.asarray([0.05, 0.95, 0.05, 0.95, 0.9])
    assert choose_mix(labels, sure, baseline)["served"] == "rnn"


def test_ensemble_auto_stacks_and_copies_the_baseline(tmp_path: Path):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 300)
    rnn, baseline = noisy_scores(labels, rng, 1.0), noisy_scores(labels, rng, 1.0)
    np.save(tmp_path / VALIDATION_PROBABILITIES, baseline)
    (tmp_path / "base.npz").write_bytes(b"baseline model")
    (tmp_path / "model").mkdir()
    served, card = classifier_train.ensemble({"ensemble": "baseline", "ensemble_weight": "auto"}, labels, rnn, tmp_path,
                                             "base.npz", tmp_path / "model", "train.x")
    assert card["served"] == "stack" and 0 < card["rnn_weight"] < 1 and np.allclose(served, mix(card, rnn, baseline))
    assert (tmp_path / "model/base.npz").read_bytes() == b"baseline model"


def test_k_class_stack_of_independent_models_beats_both_without_class_biases():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, 600)

    def model() -> np.ndarray:
        scores = rng.normal(0, 1.5, (600, 3))
        scores[np.arange(600), labels] += 1.2
        return np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)

    rnn, baseline = model(), model()
    chosen = choose_mix(labels, rnn, baseline)
    assert chosen["served"] == "stack" and chosen["stack"]["bias"] == []
    assert chosen["validation"]["log_loss"]["stack_out_of_fold"] < min(chosen["validation"]["log_loss"]["rnn"],
                                                                       chosen["validation"]["log_loss"]["baseline"])
    assert np.allclose(mix(chosen, rnn, baseline).sum(axis=1), 1)
