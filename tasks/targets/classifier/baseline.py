"""The classifiers' baseline stage: fit the classical model on the clean splits, save it, report it."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from tasks.core.common import read_parquet
from tasks.targets import VALIDATION_PROBABILITIES
from tasks.targets.classification import best_threshold, classification_metrics, is_binary, robust_threshold

SPLITS = ("train", "validation", "test")


def macro_f1_scorer(classes: list[str]):
    """How a baseline's candidates are compared on validation: macro-F1 at the best threshold (two classes)."""
    def score(truth: np.ndarray, probabilities: np.ndarray) -> float:
        threshold = best_threshold(truth, probabilities) if is_binary(classes) else None
        return classification_metrics(truth, probabilities, classes, threshold)["macro_f1"]
    return score


def log_loss_scorer(classes: list[str]):
    """Baseline candidates compared by validation log-loss (negated: higher is better). The
    probabilities themselves count where an ensemble mixes them: on the clothing reviews the C it
    picks (16, against macro-F1's 4) gave the mix with the RNN a better accuracy on every seed."""
    from sklearn.metrics import log_loss

    def score(truth: np.ndarray, probabilities: np.ndarray) -> float:
        return -log_loss(truth, np.clip(probabilities, 1e-7, 1 - 1e-7), labels=list(range(len(classes))))
    return score


def baseline_report(description: str, labels: dict[str, np.ndarray], probabilities: dict[str, np.ndarray],
                    classes: list[str], out_dir: Path) -> dict[str, Any]:
    """Save a baseline's validation probabilities (an ensemble is weighted on them) and report its
    validation and test metrics at the threshold chosen as the RNN's is."""
    np.save(out_dir / VALIDATION_PROBABILITIES, probabilities["validation"])
    threshold = robust_threshold(labels["validation"], probabilities["validation"]) if is_binary(classes) else None
    return {"model": description,
            **{name: classification_metrics(labels[name], probabilities[name], classes, threshold)
               for name in ("validation", "test")}}


def fit_baseline(clean_dir: Path, classes: list[str], inputs: Callable[[pd.DataFrame], Any],
                 fit: Callable[[Any, np.ndarray, Any, np.ndarray], Any], path: Path) -> dict[str, Any]:
    """Read the clean splits, ``fit(train, train labels, validation, validation labels)`` the
    kind's model on what ``inputs`` takes of each split, save it to ``path`` and report it
    (:func:`baseline_report`, beside the model). The model has ``save``, ``probabilities`` and
    ``description``, and may have a ``report`` (a dict the report takes in: how it was chosen) and
    ``refit(items, labels)``: the same choices fitted again on train and validation together, the
    model saved and tested (the validation probabilities, what an ensemble is fitted on, stay
    those of the model fitted on train alone)."""
    splits = {name: read_parquet(clean_dir / f"{name}.parquet", "clean") for name in SPLITS}
    items = {name: inputs(part) for name, part in splits.items()}
    labels = {name: part["label"].to_numpy().astype(int) for name, part in splits.items()}
    model = fit(items["train"], labels["train"], items["validation"], labels["validation"])
    probabilities = {"validation": model.probabilities(items["validation"])}
    if hasattr(model, "refit"):  # its choices made, the served model learns from the validation series too
        model = model.refit(list(items["train"]) + list(items["validation"]),
                            np.concatenate([labels["train"], labels["validation"]]))
    model.save(path)
    probabilities["test"] = model.probabilities(items["test"])
    return {**baseline_report(model.description, labels, probabilities, classes, path.parent),
            "fitted_on": "train and validation" if hasattr(model, "refit") else "train", **getattr(model, "report", {})}
