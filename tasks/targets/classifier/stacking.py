"""Mixing a classifier's RNN with its baseline by stacking in logit space, and the served mix.

The stack reads each model's log-odds (two classes) or log-probabilities (K classes) and weighs
them: ``score = a * rnn + b * baseline (+ bias, two classes)``, then a sigmoid or softmax; a, b
>= 0. K classes get no bias per class: each part's probabilities carry the class priors already,
and K more coefficients overfit a small validation split (digits: 180 rows, 10 classes). Fitted by log-loss on predictions neither model was trained on (the
validation split's). Unlike one weight on probabilities, it can trust a confident model more
where the two disagree, and it learns each model's calibration.

What is served is chosen by cross-validation on those predictions: the better part alone (the
baseline, whose choices were cross-validated on the whole train split, unless the RNN's
validation log-loss beats it by more than one standard error of their paired difference),
unless the stack's out-of-fold log-loss beats that part by more than one standard error and its
out-of-fold accuracy is no lower. So the served model is never
worse out of fold than its best part by more than one standard error (and then only the
cross-validated baseline is served over an RNN that is not clearly better), and a part that is
noise gets no say. A stack needs
:data:`ROWS_PER_COEFFICIENT` validation rows per coefficient; fewer (a small archive's 5
validation series), the better part alone.

The served side (:func:`mix`) imports nothing heavy: evaluate and predict use it.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from tasks.targets.classification import log_losses, predictions, squash

FLOOR = 1e-6  # probabilities are floored (and capped) here before their logs
FOLDS = 5
# A stack is fitted only on this many validation rows per coefficient (2 weights, a bias for two classes)
# or more: the events-per-variable rule of thumb of logistic regression; fewer, the better part alone.
ROWS_PER_COEFFICIENT = 10


def log_odds(probabilities: np.ndarray) -> np.ndarray:
    """Two classes (one positive probability per row): the logit; K classes: log-probabilities."""
    clipped = np.clip(np.asarray(probabilities, np.float64), FLOOR, 1 - FLOOR)
    return np.log(clipped / (1 - clipped)) if clipped.ndim == 1 else np.log(clipped)


def stacked(coefficients: dict[str, Any], rnn: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """The stack's probabilities from both models' probabilities."""
    scores = coefficients["rnn"] * log_odds(rnn) + coefficients["baseline"] * log_odds(baseline)
    return squash(scores + sum(coefficients["bias"]))  # two classes: one bias; K classes: none


def mix(ensemble: dict[str, Any], rnn: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """What a model card's ``ensemble`` serves: one part alone (``served``: rnn or baseline), its
    ``stack`` (coefficients), or an average of probabilities with the RNN's share ``rnn_weight``
    (a fixed ``ensemble_weight``)."""
    parts = {"rnn": rnn, "baseline": baseline}
    if ensemble.get("served") in parts:
        return parts[ensemble["served"]]
    if ensemble.get("stack"):
        return stacked(ensemble["stack"], rnn, baseline)
    weight = ensemble["rnn_weight"]
    return weight * rnn + (1 - weight) * baseline


def bias_count(probabilities: np.ndarray) -> int:
    """The stack's biases: one for two classes (one probability per row), none for K classes."""
    return 1 if probabilities.ndim == 1 else 0


def fit_stack(labels: np.ndarray, rnn: np.ndarray, baseline: np.ndarray) -> dict[str, Any]:
    """Coefficients a, b >= 0 (and, two classes, the bias) of the lowest log-loss (a tiny ridge on
    the bias keeps it finite where a class is missing)."""
    from scipy.optimize import minimize

    features = np.stack([log_odds(rnn), log_odds(baseline)])  # 2 x rows (x classes)
    biases = bias_count(rnn)

    def objective(theta: np.ndarray) -> float:
        scores = np.tensordot(theta[:2], features, axes=1) + theta[2:].sum()
        return float(log_losses(labels, squash(scores), FLOOR).mean() + 1e-4 * np.sum(theta[2:] ** 2))

    start = np.concatenate([[0.5, 0.5], np.zeros(biases)])
    result = minimize(objective, start, method="L-BFGS-B", bounds=[(0, None), (0, None)] + [(None, None)] * biases)
    return {"rnn": round(float(result.x[0]), 6), "baseline": round(float(result.x[1]), 6),
            "bias": [round(float(value), 6) for value in result.x[2:]]}


def out_of_fold_stack(labels: np.ndarray, rnn: np.ndarray, baseline: np.ndarray,
                      seed: int) -> tuple[np.ndarray, dict[str, Any]] | None:
    """The stack's probabilities of each row from a stack fitted without its fold (stratified),
    and the stack fitted on every row; None when the rows are too few to cross-validate (no class
    has two)."""
    from tasks.core.splits import stratified_folds

    folds = stratified_folds(labels, seed, FOLDS)
    if not folds:
        return None
    whole = fit_stack(labels, rnn, baseline)
    result = stacked(whole, rnn, baseline)  # rows no fold holds out
    for fit_rows, held_rows in folds:
        result[held_rows] = stacked(fit_stack(labels[fit_rows], rnn[fit_rows], baseline[fit_rows]),
                                    rnn[held_rows], baseline[held_rows])
    return result, whole


def accuracy(labels: np.ndarray, probabilities: np.ndarray) -> float:
    return float((predictions(probabilities, 0.5) == labels).mean())


def standard_error(differences: np.ndarray) -> float:
    """The standard error of the mean of paired differences (infinite for fewer than two)."""
    return float(differences.std(ddof=1) / np.sqrt(len(differences))) if len(differences) > 1 else float("inf")


def better_part(rnn_losses: np.ndarray, baseline_losses: np.ndarray) -> str:
    """``rnn`` when its validation log-loss beats the baseline's by more than one standard error
    of their paired difference, else ``baseline``: the baseline's choices were cross-validated on
    the whole train split and it has no training noise, so a handful of validation rows that
    favour the RNN by chance do not serve it."""
    difference = baseline_losses - rnn_losses
    return "rnn" if difference.mean() > standard_error(difference) else "baseline"


def choose_mix(labels: np.ndarray, rnn: np.ndarray, baseline: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """What to serve from the two models' predictions of rows neither was fitted on: the better
    part, or the stack when its out-of-fold log-loss is lower by more than one standard error and
    its out-of-fold accuracy no lower (module docstring). Returns the card's ``stack`` (a part
    alone is a stack with the other's coefficient 0), what was served, why, and the figures."""
    parts = {"rnn": log_losses(labels, rnn, FLOOR), "baseline": log_losses(labels, baseline, FLOOR)}
    best = better_part(parts["rnn"], parts["baseline"])
    stack_oof, whole = out_of_fold_stack(labels, rnn, baseline, seed) or (None, None)
    coefficients = 2 + bias_count(rnn)
    too_few = stack_oof is None or len(labels) < ROWS_PER_COEFFICIENT * coefficients
    if stack_oof is None:  # nothing to cross-validate a stack on: its figures are the better part's
        stack_oof = rnn if best == "rnn" else baseline
    stack_losses = log_losses(labels, stack_oof, FLOOR)
    difference = parts[best] - stack_losses
    error = standard_error(difference)
    figures = {
        "rows": int(len(labels)),
        "log_loss": {"rnn": round(float(parts["rnn"].mean()), 4), "baseline": round(float(parts["baseline"].mean()), 4),
                     "stack_out_of_fold": round(float(stack_losses.mean()), 4)},
        "accuracy": {"rnn": round(accuracy(labels, rnn), 4), "baseline": round(accuracy(labels, baseline), 4),
                     "stack_out_of_fold": round(accuracy(labels, stack_oof), 4)},
    }
    best_accuracy = accuracy(labels, rnn if best == "rnn" else baseline)
    gain = float(difference.mean())
    if not too_few and gain > error and accuracy(labels, stack_oof) >= best_accuracy:
        stack, served = whole, "stack"
        why = (f"the stack's out-of-fold log-loss beats the better part ({best}) by {gain:.4f}, more than one "
               f"standard error ({error:.4f}), at no loss of accuracy")
    else:
        stack = {"rnn": float(best == "rnn"), "baseline": float(best == "baseline"), "bias": [0.0] * bias_count(rnn)}
        served = best
        part_why = ("its validation log-loss beats the baseline's by more than one standard error" if best == "rnn" else
                    "the RNN's validation log-loss does not beat its own by more than one standard error")
        if too_few:
            stack_why = (f"{len(labels)} validation rows are too few for a stack of {coefficients} coefficients "
                         f"(it takes {ROWS_PER_COEFFICIENT * coefficients})")
        elif gain > error:
            stack_why = (f"the stack's out-of-fold log-loss is lower by {gain:.4f} but its out-of-fold accuracy is lower "
                         f"({accuracy(labels, stack_oof):.4f} vs {best_accuracy:.4f})")
        else:
            stack_why = f"the stack's out-of-fold log-loss does not beat it by more than one standard error ({gain:.4f} vs {error:.4f})"
        why = f"the {best} alone ({part_why}); {stack_why}"
    return {"stack": stack, "served": served, "why": why, "validation": figures}
