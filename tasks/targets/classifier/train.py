"""The classifiers' train stage: fit the network, mix it with the baseline, decide, write the card.

A kind's train reads its features, says how a table becomes sequences and how its network is
built (:func:`fit`), computes the network's validation probabilities and saves the model its
way, then :func:`serve` weighs the ensemble, decides the threshold and writes the model card.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from tasks.core.common import PipelineError, read_parquet
from tasks.targets import VALIDATION_PROBABILITIES
from tasks.targets.classification import (
    best_threshold,
    classification_metrics,
    is_binary,
    robust_threshold,
    threshold_objective,
)
from tasks.targets.labels import label_array

@dataclass
class Fitted:
    """A fitted network and what the rest of the train stage needs of its fit."""

    model: Any
    tables: dict[str, pd.DataFrame]  # data/tokenized's train and validation tables
    summary: dict[str, Any]  # the device facts, the replicas and the training loop's summary
    padding_fraction: float  # the share of padded steps in the train split's batches
    init: dict[str, Any] | None  # how the network began, for the card (None: from scratch)


def fit(params: dict[str, Any], tokenized_dir: Path, classes: list[str], where: str, live_dir: Path,
        checkpoint_dir: Path, sequences: Callable[[pd.DataFrame], list[np.ndarray]], build: Callable[[], tuple],
        pad_value: float = 0, devices: list[str] | None = None) -> Fitted:
    """Seed and set up TensorFlow, read the tokenized train and validation tables, and inside
    the distribution strategy (``devices``: :func:`tasks.networks.training.distribution`) batch
    ``sequences(table)`` (padded with ``pad_value``), ``build()`` the network (it returns the
    model, its training phases or None, and how it began or None) and fit it
    (:func:`tasks.networks.fit.fit_classifier`)."""
    from tasks.networks.fit import fit_classifier
    from tasks.networks.training import configure_tensorflow, distribution, padding_fraction, ragged_dataset

    device = configure_tensorflow(params)
    tables = {name: read_parquet(tokenized_dir / f"{name}.parquet", "tokenize") for name in ("train", "validation")}
    with distribution(params, devices) as replicas:
        inputs = {name: (sequences(table), label_array(table, classes)) for name, table in tables.items()}
        batch_size = params["batch_size"] * replicas
        validation = ragged_dataset(*inputs["validation"], batch_size, params["seed"], shuffle=False, pad_value=pad_value)

        def train_epoch(epoch: int):  # epoch k's order from (seed, k) alone: a resumed run reads the same batches
            return ragged_dataset(*inputs["train"], batch_size, params["seed"], shuffle=True, pad_value=pad_value, epoch=epoch)

        model, phases, init = build()
        summary = fit_classifier(model, train_epoch, validation, label_array(tables["train"], classes), classes,
                                 params, live_dir, checkpoint_dir, where, phases)
    padding = padding_fraction([len(item) for item in inputs["train"][0]], batch_size, params["seed"])
    return Fitted(model, tables, {**device, "replicas": replicas, **summary}, padding, init)


def serve(params: dict[str, Any], meta: dict[str, Any], fitted: Fitted, rnn: np.ndarray, model_dir: Path,
          baseline_file: str, where: str, card: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """From the network's validation probabilities ``rnn``: the ensemble with the baseline
    (:func:`ensemble`), the decision (:func:`decide_served`) and the model card (``card``: the
    kind's own keys). Returns the train summary and the card's ``ensemble``."""
    from tasks.core.artifacts import BASELINE_DIR, write_card

    classes = meta["classes"]
    labels = fitted.tables["validation"]["label"].to_numpy().astype(int)
    combined, mixed = ensemble(params, labels, rnn, BASELINE_DIR, baseline_file, model_dir, where)
    decision, rnn_threshold = decide_served(labels, combined, rnn, mixed is not None, classes, params, where)
    write_card(model_dir, {
        "kind": meta["kind"],
        "classes": classes,
        "threshold": decision["threshold"],
        "rnn_threshold": rnn_threshold,
        "ensemble": mixed,
        **card,
        "clean": meta["clean"],
        "params": params,
    })
    served = {"ensemble_served": mixed["served"], "ensemble_why": mixed["why"]} if mixed else {}
    return {**fitted.summary, **decision, **served}, mixed


def decide(labels: np.ndarray, probabilities: np.ndarray, classes: list[str], objective: str = "macro_f1") -> dict[str, Any]:
    """The decision rule from validation (a robust threshold for two classes, maximising
    ``objective``) and the validation metrics."""
    threshold = robust_threshold(labels, probabilities, objective) if is_binary(classes) else None
    validation = classification_metrics(labels, probabilities, classes, threshold)
    return {
        "threshold": threshold,
        "threshold_objective": objective if is_binary(classes) else None,
        "threshold_best_on_validation": best_threshold(labels, probabilities, objective) if is_binary(classes) else None,
        "val_accuracy": round(validation["accuracy"], 4),
        "val_macro_f1": round(validation["macro_f1"], 4),
        "val_roc_auc": round(validation["roc_auc"], 4) if validation.get("roc_auc") is not None else None,
    }


def decide_served(labels: np.ndarray, served: np.ndarray, rnn: np.ndarray, ensembled: bool, classes: list[str],
                  params: dict[str, Any], where: str) -> tuple[dict[str, Any], float | None]:
    """:func:`decide` for the probabilities the model serves, with the section's threshold
    objective; and the RNN alone's threshold when it is mixed with the baseline (else None)."""
    objective = threshold_objective(params, where)
    rnn_threshold = robust_threshold(labels, rnn, objective) if is_binary(classes) and ensembled else None
    return decide(labels, served, classes, objective), rnn_threshold


def _checked_weight(setting: Any, where: str) -> float | None:
    """A fixed ``ensemble_weight`` (the RNN's share of an average of probabilities), or None for ``auto``."""
    if setting == "auto":
        return None
    if isinstance(setting, (int, float)) and not isinstance(setting, bool) and 0 <= setting <= 1:
        return float(setting)
    raise PipelineError(f"params.yaml: {where}.ensemble_weight must be auto or a number from 0 to 1, not {setting!r}")


def ensemble(params: dict[str, Any], labels: np.ndarray, rnn: np.ndarray, baseline_dir: Path, baseline_file: str,
             model_dir: Path, where: str) -> tuple[np.ndarray, dict[str, Any] | None]:
    """``ensemble: baseline``: mix the RNN's validation probabilities with the baseline's, and copy
    the baseline model into ``model_dir`` (the saved model serves both); ``none``: the RNN alone.
    ``ensemble_weight: auto``: the stack in logit space, or the better part alone, as
    cross-validation on validation chooses (:func:`tasks.targets.classifier.stacking.choose_mix`);
    a number: the RNN's fixed share of an average of probabilities. Returns the validation
    probabilities the model will answer with, and the card's ``ensemble``."""
    import shutil

    from tasks.targets.classifier.stacking import choose_mix, mix

    choice = params.get("ensemble", "none")
    if choice == "none":
        return rnn, None
    if choice != "baseline":
        raise PipelineError(f"params.yaml: {where}.ensemble must be none or baseline, not {choice!r}")
    baseline = np.load(baseline_dir / VALIDATION_PROBABILITIES, allow_pickle=False)
    if baseline.shape != rnn.shape:
        raise PipelineError(f"{baseline_dir}: the baseline's validation probabilities do not match this split; "
                            "run the pipeline again (dvc repro)")
    weight = _checked_weight(params.get("ensemble_weight", "auto"), where)
    if weight is None:
        card = {"baseline": baseline_file, **choose_mix(labels, rnn, baseline, params.get("seed", 0))}
        coefficients = card["stack"]
        card["rnn_weight"] = round(coefficients["rnn"] / max(coefficients["rnn"] + coefficients["baseline"], 1e-12), 4)
    else:
        card = {"baseline": baseline_file, "rnn_weight": weight, "served": "average",
                "why": f"ensemble_weight {weight:g} set in params.yaml"}
    shutil.copy(baseline_dir / baseline_file, model_dir / baseline_file)
    return mix(card, rnn, baseline), card
