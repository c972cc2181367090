"""The class target, shared by text and series classifiers: the decision and its metrics.

Two classes are a binary task: one positive probability per row (the class at index 1),
decided at a threshold tuned on validation. More classes: a probability per class, decided
by the most probable one. Accuracy lies on imbalanced data, so beside it come macro-F1, each
class's F1, the minority class's F1, ROC-AUC and the majority-class rate (what always
guessing the commonest class scores).

What one stage alone does with them lives with that stage's shared code
(:mod:`tasks.targets.classifier`: the baseline's scorers, train's ensemble and decision,
evaluate's plots, slices and worst errors, predict's served model); the training loop is
:mod:`tasks.networks.fit`'s.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from tasks.core.common import PipelineError
from tasks.targets.labels import is_binary


def predictions(probabilities: np.ndarray, threshold: float | None) -> np.ndarray:
    """Class indices: positive probability >= threshold (binary) or the most probable class."""
    if probabilities.ndim == 1:
        return (probabilities >= threshold).astype(int)
    return probabilities.argmax(axis=1).astype(int)


def log_losses(labels: np.ndarray, probabilities: np.ndarray, floor: float = 1e-7) -> np.ndarray:
    """Each row's negative log-probability of its true class (two classes: ``probabilities`` is the
    positive one's), the probability floored at ``floor`` so that one confident error stays finite."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    true = (np.where(labels == 1, probabilities, 1 - probabilities) if probabilities.ndim == 1
            else probabilities[np.arange(len(labels)), labels])
    return -np.log(np.maximum(true, floor))


def mean_log_loss(labels: np.ndarray, probabilities: np.ndarray, floor: float = 1e-7) -> float:
    return float(log_losses(labels, probabilities, floor).mean())


def squash(scores: np.ndarray) -> np.ndarray:
    """Scores as probabilities: a sigmoid of one score per row (the positive class's), else a softmax per row."""
    if scores.ndim == 1:
        return np.exp(-np.logaddexp(0, -scores))
    exponent = np.exp(scores - scores.max(axis=1, keepdims=True))
    return exponent / exponent.sum(axis=1, keepdims=True)


THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.01), 2)
SMOOTHING = 5  # thresholds on each side averaged: the F1 curve over a 0.1 wide window


def _counts_by_threshold(labels: np.ndarray, probabilities: np.ndarray) -> tuple[np.ndarray, ...]:
    """True/false positives and negatives at every threshold of :data:`THRESHOLDS` (matrix products)."""
    positive = (probabilities[None, :] >= THRESHOLDS[:, None]).astype(np.float64)  # thresholds x examples
    actual = labels.astype(np.float64)
    tp, fp = positive @ actual, positive @ (1 - actual)
    return tp, fp, actual.sum() - tp, (1 - actual).sum() - fp


def macro_f1_by_threshold(labels: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Two-class macro-F1 at every threshold of :data:`THRESHOLDS`."""
    tp, fp, fn, tn = _counts_by_threshold(labels, probabilities)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1_positive = np.nan_to_num(2 * tp / (2 * tp + fp + fn))
        f1_negative = np.nan_to_num(2 * tn / (2 * tn + fp + fn))
    return (f1_positive + f1_negative) / 2


def accuracy_by_threshold(labels: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Two-class accuracy at every threshold of :data:`THRESHOLDS`."""
    tp, _, _, tn = _counts_by_threshold(labels, probabilities)
    return (tp + tn) / max(len(labels), 1)


# What a two-class decision threshold maximises on validation (params: threshold_objective).
THRESHOLD_OBJECTIVES = {"macro_f1": macro_f1_by_threshold, "accuracy": accuracy_by_threshold}


def threshold_objective(params: dict[str, Any], where: str) -> str:
    """The section's ``threshold_objective``, checked."""
    objective = params.get("threshold_objective", "macro_f1")
    if objective not in THRESHOLD_OBJECTIVES:
        raise PipelineError(f"params.yaml: {where}.threshold_objective must be one of {sorted(THRESHOLD_OBJECTIVES)}, "
                            f"not {objective!r}")
    return objective


def _closest_to_half(scores: np.ndarray) -> float:
    best = np.flatnonzero(np.isclose(scores, scores.max()))
    return float(THRESHOLDS[best[np.argmin(np.abs(THRESHOLDS[best] - 0.5))]])


def best_threshold(labels: np.ndarray, probabilities: np.ndarray, objective: str = "macro_f1") -> float:
    """The decision threshold with the best ``objective`` on these examples (ties: closest to 0.5)."""
    return _closest_to_half(THRESHOLD_OBJECTIVES[objective](labels, probabilities))


def robust_threshold(labels: np.ndarray, probabilities: np.ndarray, objective: str = "macro_f1") -> float:
    """A decision threshold that does not swing with small changes of the model or the split.

    Macro-F1 (and accuracy) is flat near its best threshold on imbalanced data, so the exact
    argmax jumps along the plateau when the model changes a little (another seed, another
    machine's floating point) and the thresholded metrics jump with it. The curve averaged over
    a window of +-0.05 has its maximum in the middle of the plateau: in a simulation of the
    clothing reviews' validation split (2,000 reviews, 12% negative) under small score
    perturbations, its threshold moved half as much as the argmax (tests/test_pretrain.py).
    """
    scores = THRESHOLD_OBJECTIVES[objective](labels, probabilities)
    padded = np.pad(scores, SMOOTHING, mode="edge")
    smoothed = np.convolve(padded, np.ones(2 * SMOOTHING + 1) / (2 * SMOOTHING + 1), mode="valid")
    return _closest_to_half(smoothed)


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray, classes: list[str],
                           threshold: float | None) -> dict[str, Any]:
    """The headline metrics: accuracy, macro-F1, each class's F1, minority F1, ROC-AUC, majority rate."""
    from sklearn import metrics

    predicted = predictions(probabilities, threshold)
    indices = list(range(len(classes)))
    counts = np.bincount(labels, minlength=len(classes))
    f1 = metrics.f1_score(labels, predicted, average=None, labels=indices, zero_division=0)
    present = [index for index in indices if counts[index]]
    minority = min(present, key=lambda index: (counts[index], index))
    result: dict[str, Any] = {
        "n_test": int(len(labels)),
        "n_classes": len(classes),
        "accuracy": float(metrics.accuracy_score(labels, predicted)),
        "macro_f1": float(np.mean([f1[index] for index in present])),
        "minority_class": classes[minority],
        "minority_f1": float(f1[minority]),
        "majority_rate": float(counts.max() / max(len(labels), 1)),
    }
    if is_binary(classes):
        both = len(present) == 2
        result.update({
            "threshold": float(threshold),
            "f1_negative": float(f1[0]),
            "f1_positive": float(f1[1]),
            "roc_auc": float(metrics.roc_auc_score(labels, probabilities)) if both else None,
            "pr_auc": float(metrics.average_precision_score(labels, probabilities)) if both else None,
            "precision": float(metrics.precision_score(labels, predicted, zero_division=0)),
            "recall": float(metrics.recall_score(labels, predicted, zero_division=0)),
        })
    else:
        result["f1_per_class"] = {classes[index]: float(f1[index]) for index in indices}
        if len(present) == len(classes):
            result["roc_auc"] = float(metrics.roc_auc_score(labels, probabilities, multi_class="ovr",
                                                            average="macro", labels=indices))
    return result
