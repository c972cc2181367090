"""Series classification, baseline: the classical peer chosen by cross-validation on train."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tasks.core.splits import stratified_folds
from tasks.inputs import series
from tasks.kinds.series_classification import BASELINE_FILE, read_features
from tasks.kinds.series_classification.served import save_baseline
from tasks.targets.classification import mean_log_loss, predictions
from tasks.targets.classifier.baseline import fit_baseline, macro_f1_scorer

FOLD_SEED = 0  # the cross-validation's folds and MiniRocket's kernels: fixed, so a rerun fits the same baseline


@dataclass
class Chosen:
    """The candidate with the best cross-validated accuracy, and every candidate's figures."""

    model: Any
    name: str
    evidence: dict[str, dict[str, float]]
    how: str
    classes: list[str]
    params: dict[str, Any]

    def refit(self, items: list[np.ndarray], labels: np.ndarray) -> "Chosen":
        """The chosen model fitted again on ``items`` (train and validation: a small archive's
        validation series are a tenth of what it has to learn from)."""
        folds = stratified_folds(labels, FOLD_SEED, self.params.get("folds", 5))
        refitted = fit_candidate(self.name, items, labels, self.classes, self.params, folds)
        return Chosen(refitted, self.name, self.evidence, f"{self.how}; refitted on train and validation",
                      self.classes, self.params)

    def probabilities(self, items: list[np.ndarray]) -> np.ndarray:
        return self.model.probabilities(items)

    def save(self, path: Path) -> None:
        save_baseline(self.model, self.name, path)

    @property
    def description(self) -> str:
        return f"{self.model.description}; chosen by {self.how}"

    @property
    def report(self) -> dict[str, Any]:
        return {"chosen": self.name, "chosen_by": self.how, "cross_validated": self.evidence}


def fit_candidate(name: str, items: list[np.ndarray], labels: np.ndarray, classes: list[str], params: dict[str, Any],
                  folds: list[tuple[np.ndarray, np.ndarray]]):
    """One candidate fitted on every train series, with its out-of-fold probabilities (``out_of_fold``)."""
    if name == "summary_logistic":
        return series.SummaryLogistic.fit(items, labels, macro_f1_scorer(classes), params["C"], params["shape_steps"], folds)
    from tasks.baselines.minirocket import KERNEL_LENGTH, MiniRocketRidge

    n_steps = max(KERNEL_LENGTH, min(max(len(item) for item in items), params.get("minirocket_max_steps", 1024)))
    return MiniRocketRidge.fit(items, labels, n_steps, params.get("minirocket_features", 10_000), FOLD_SEED)


def choose_baseline(items: list[np.ndarray], labels: np.ndarray, classes: list[str], params: dict[str, Any]) -> Chosen:
    """Every model of ``models`` fitted on the train split and judged on its out-of-fold
    predictions (stratified ``folds``-fold cross-validation; MiniRocket's ridge: leave-one-out);
    the best accuracy wins, ties going to the lower log-loss. The validation split stays unseen:
    the train stage mixes the RNN with the baseline on it."""
    folds = stratified_folds(labels, FOLD_SEED, params.get("folds", 5))
    fitted, evidence = {}, {}
    for name in params.get("models", ["summary_logistic", "minirocket"]):
        fitted[name] = fit_candidate(name, items, labels, classes, params, folds)
        threshold = 0.5 if fitted[name].out_of_fold.ndim == 1 else None
        evidence[name] = {"accuracy": round(float((predictions(fitted[name].out_of_fold, threshold) == labels).mean()), 4),
                          "log_loss": round(mean_log_loss(labels, fitted[name].out_of_fold), 4)}
    best = min(evidence, key=lambda name: (-evidence[name]["accuracy"], evidence[name]["log_loss"]))
    how = (f"{len(folds)}-fold cross-validation on train (MiniRocket: leave-one-out): "
           + ", ".join(f"{name} accuracy {figures['accuracy']:.4f}" for name, figures in evidence.items()))
    return Chosen(fitted[best], best, evidence, how, classes, params)


def baseline(tokenized_dir: Path, clean_dir: Path, params: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """The classical peer (:func:`choose_baseline`) fitted on the train split; saves it and its
    validation probabilities (what the train stage mixes the RNN with)."""
    _, meta = read_features(tokenized_dir)
    classes = meta["classes"]
    return fit_baseline(clean_dir, classes, lambda split: series.unpack(split["values"], meta["n_features"]),
                        lambda items, labels, *_: choose_baseline(items, labels, classes, params), out_dir / BASELINE_FILE)


def baseline_headline(metrics: dict[str, Any]) -> str:
    return f"accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}"
