"""The class target, shared by text and series classifiers: decisions, metrics, plots.

Two classes are a binary task: one positive probability per row (the class at index 1),
decided at a threshold tuned on validation. More classes: a probability per class, decided
by the most probable one. Accuracy lies on imbalanced data, so beside it come macro-F1, each
class's F1, the minority class's F1, ROC-AUC and the majority-class rate (what always
guessing the commonest class scores).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.core.common import PipelineError

CURVE_POINTS = 200
# The baseline stage's validation probabilities, in data/clean/validation.parquet's row order:
# what an ensemble of the recurrent model with the baseline is weighted on.
VALIDATION_PROBABILITIES = "validation_probabilities.npy"
ENSEMBLE_WEIGHTS = np.round(np.arange(0.0, 1.001, 0.05), 2)


def is_binary(classes: list[str]) -> bool:
    return len(classes) == 2


def predictions(probabilities: np.ndarray, threshold: float | None) -> np.ndarray:
    """Class indices: positive probability >= threshold (binary) or the most probable class."""
    if probabilities.ndim == 1:
        return (probabilities >= threshold).astype(int)
    return probabilities.argmax(axis=1).astype(int)


def class_weights(labels: np.ndarray, n_classes: int, mode: str) -> dict[int, float] | None:
    """'balanced': weights inversely proportional to class frequency; 'none': no weights."""
    if mode == "none":
        return None
    if mode != "balanced":
        raise PipelineError(f"params.yaml: train class_weight must be 'balanced' or 'none', not {mode!r}")
    counts = np.bincount(labels.astype(int), minlength=n_classes)
    return {label: float(len(labels) / (n_classes * count)) for label, count in enumerate(counts) if count}


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


def _key(name: str) -> str:
    return "".join(character if character.isalnum() else "_" for character in str(name).lower()).strip("_") or "class"


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


def thin(frame: pd.DataFrame, points: int = CURVE_POINTS) -> pd.DataFrame:
    """At most ``points`` evenly spaced rows of a curve (ends kept), so plot files stay small."""
    if len(frame) <= points:
        return frame
    return frame.iloc[np.unique(np.linspace(0, len(frame) - 1, points).round().astype(int))]


def curves(labels: np.ndarray, probabilities: np.ndarray, classes: list[str], threshold: float | None) -> dict[str, pd.DataFrame]:
    """Plot data: one confusion row per example (class names), ROC and PR curves when binary."""
    from sklearn import metrics

    names = np.asarray(classes, dtype=object)
    data = {"confusion": pd.DataFrame({"actual": names[labels], "predicted": names[predictions(probabilities, threshold)]})}
    if is_binary(classes) and len(np.unique(labels)) == 2:
        fpr, tpr, _ = metrics.roc_curve(labels, probabilities)
        precision, recall, _ = metrics.precision_recall_curve(labels, probabilities)
        data["roc"] = thin(pd.DataFrame({"fpr": fpr, "tpr": tpr}))
        data["precision_recall"] = thin(pd.DataFrame({"recall": recall, "precision": precision}))
    return data


def confusion_matrix(confusion: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    """K x K counts, rows actual, columns predicted, in class order."""
    return pd.crosstab(confusion["actual"], confusion["predicted"]).reindex(index=classes, columns=classes, fill_value=0)


def save_png_plots(data: dict[str, pd.DataFrame], metrics: dict[str, Any], classes: list[str], directory: Path) -> None:
    """PNG copies of the plots, viewable without DVC or a network."""
    from tasks.checks.eda import figure, save

    matrix = confusion_matrix(data["confusion"], classes).to_numpy()
    size = min(4 + 0.45 * len(classes), 12)
    plot = figure(size, size)
    axis = plot.subplots()
    axis.imshow(matrix, cmap="Blues")
    for (row, column), value in np.ndenumerate(matrix):
        axis.text(column, row, str(value), ha="center", va="center", fontsize=8 if len(classes) > 8 else 10)
    ticks = list(range(len(classes)))
    axis.set_xticks(ticks, classes, rotation=45 if len(classes) > 4 else 0, ha="right" if len(classes) > 4 else "center")
    axis.set_yticks(ticks, classes)
    axis.set(xlabel="predicted", ylabel="actual", title="Confusion matrix (test)")
    save(plot, directory / "confusion.png")
    for name, x, y, title in (
        ("roc", "fpr", "tpr", f"ROC (AUC {metrics.get('roc_auc') or 0:.3f})"),
        ("precision_recall", "recall", "precision", f"Precision-recall (AP {metrics.get('pr_auc') or 0:.3f})"),
    ):
        if name in data:
            plot = figure(4, 4)
            axis = plot.subplots()
            axis.plot(data[name][x], data[name][y])
            axis.set(xlabel=x, ylabel=y, title=title, xlim=(0, 1), ylim=(0, 1.02))
            save(plot, directory / f"{name}.png")


def slice_metrics(frame: pd.DataFrame, probabilities: np.ndarray, threshold: float | None, columns: list[str],
                  length_column: str, buckets: list[int]) -> dict[str, Any]:
    """Accuracy and macro-F1 within each value of the slice columns and each length bucket."""
    from sklearn import metrics

    frame = frame.assign(predicted=predictions(probabilities, threshold))
    frame["length_bucket"] = pd.cut(frame[length_column], bins=buckets, right=False).astype(str)
    report: dict[str, Any] = {}
    for column in [c for c in columns if c in frame.columns] + ["length_bucket"]:
        report[column] = {
            str(value): {
                "n": int(len(group)),
                "majority_rate": round(float(group["label"].value_counts(normalize=True).max()), 4),
                "accuracy": round(float((group["label"] == group["predicted"]).mean()), 4),
                "macro_f1": round(float(metrics.f1_score(group["label"], group["predicted"], average="macro", zero_division=0)), 4),
            }
            for value, group in frame.groupby(column, dropna=False, observed=True)
        }
    return report


def worst_examples(frame: pd.DataFrame, probabilities: np.ndarray, classes: list[str], threshold: float | None,
                   count: int, columns: list[str]) -> pd.DataFrame:
    """The misclassified examples the model was most confident about."""
    labels = frame["label"].to_numpy().astype(int)
    predicted = predictions(probabilities, threshold)
    if probabilities.ndim == 1:
        confidence = np.abs(probabilities - labels)
    else:
        confidence = 1 - probabilities[np.arange(len(labels)), labels]
    names = np.asarray(classes, dtype=object)
    shown = frame.assign(actual=names[labels], predicted=names[predicted], confidence_in_error=confidence.round(4))
    wrong = shown[predicted != labels]
    return wrong.sort_values("confidence_in_error", ascending=False).head(count)[
        ["id", "actual", "predicted", "confidence_in_error", *columns]]


def probability_columns(probabilities: np.ndarray, classes: list[str]) -> dict[str, np.ndarray]:
    """Output columns of predict: ``probability`` (binary) or ``probability_<class>`` per class."""
    if probabilities.ndim == 1:
        return {"probability": probabilities.round(6)}
    return {f"probability_{_key(name)}": probabilities[:, index].round(6) for index, name in enumerate(classes)}



def label_counts(frame: pd.DataFrame, classes: list[str]) -> dict[str, int]:
    """Rows per class name (``<NA>`` for rows without a label), for ingest summaries."""
    counts = frame["label"].value_counts(dropna=False)
    return {("<NA>" if pd.isna(index) else classes[int(index)]): int(count) for index, count in counts.items()}


def label_array(table: pd.DataFrame, classes: list[str]) -> np.ndarray:
    """Labels as Keras takes them: float 0/1 for two classes, int class indices for more."""
    return table["label"].to_numpy().astype(np.float32 if is_binary(classes) else np.int32)


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


class Served:
    """What a trained classifier answers: its RNN's probabilities (``rnn_probabilities``, per input
    type), mixed with its baseline's when the model card names an ensemble."""

    ensemble: dict[str, Any] | None
    baseline: Any

    def rnn_probabilities(self, cleaned: list) -> np.ndarray:
        raise NotImplementedError

    def probabilities_of_clean(self, cleaned: list, rnn: np.ndarray | None = None) -> np.ndarray:
        """``rnn``: the RNN's probabilities of ``cleaned`` when the caller has them already."""
        rnn = self.rnn_probabilities(cleaned) if rnn is None else rnn
        if not self.ensemble or not len(cleaned):
            return rnn
        weight = self.ensemble["rnn_weight"]
        return weight * rnn + (1 - weight) * self.baseline.probabilities(cleaned)


def score_test_split(predictor, labels: np.ndarray, rnn: np.ndarray, probabilities: np.ndarray,
                     plots_dir: Path) -> dict[str, Any]:
    """The served model's test metrics (the RNN alone beside them for an ensemble), its curves as
    CSV for DVC and as PNG."""
    classes, threshold = predictor.classes, predictor.threshold
    metrics = classification_metrics(labels, probabilities, classes, threshold)
    if predictor.ensemble:  # the served model averages with the baseline; the RNN alone is always reported too
        metrics["ensemble_rnn_weight"] = predictor.ensemble["rnn_weight"]
        metrics["rnn_only"] = classification_metrics(labels, rnn, classes, predictor.card["rnn_threshold"])
    data = curves(labels, probabilities, classes, threshold)
    for name, frame in data.items():
        frame.to_csv(plots_dir / f"{name}.csv", index=False)
    save_png_plots(data, metrics, classes, plots_dir)
    return metrics

@dataclass(frozen=True)
class Phase:
    """A stretch of training: up to epoch ``until``, at ``learning_rate``, with ``frozen`` layers
    (named) not trained. A pretrained encoder is fine-tuned in two: head first, then everything."""

    until: int
    learning_rate: float
    frozen: tuple[str, ...] = ()


class _EarlyStopping:
    """Keras' ``EarlyStopping(restore_best_weights=True)`` (min_delta 0, no baseline) as plain
    state a backup holds: the best value, its epoch and weights, and the epochs waited since."""

    def __init__(self, mode: str, patience: int, state: dict[str, Any] | None = None, best_weights: list | None = None):
        self.mode, self.patience = mode, patience
        state = state or {"best": -np.inf if mode == "max" else np.inf, "best_epoch": 0, "wait": 0}
        self.best, self.best_epoch, self.wait = float(state["best"]), int(state["best_epoch"]), int(state["wait"])
        self.best_weights = best_weights or None

    def state(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}

    def update(self, model, epoch: int, current: float | None) -> bool:
        """After epoch ``epoch`` (0-based, counted over all phases): True when training stops."""
        if current is None:
            return False
        if self.best_weights is None:
            self.best_weights, self.best_epoch = model.get_weights(), epoch
        self.wait += 1
        if current > self.best if self.mode == "max" else current < self.best:
            self.best, self.best_epoch, self.best_weights, self.wait = float(current), epoch, model.get_weights(), 0
            return False
        return self.wait >= self.patience and epoch > 0


def fit_classifier(model, train_data, validation_data, train_labels: np.ndarray, classes: list[str],
                   params: dict[str, Any], live_dir: Path, checkpoint_dir: Path, where: str,
                   phases: list[Phase] | None = None) -> dict[str, Any]:
    """Compile and fit a classifier phase by phase (resumable, early stopping, DVCLive); the
    training summary. Early stopping watches validation AUC for two classes, validation loss
    for more; each phase ends on its best weights.

    ``train_data(epoch)`` is epoch ``epoch``'s dataset (its order drawn from the seed and the
    epoch; a dataset given instead is read in the same order every epoch). After each epoch a
    backup (:func:`tasks.networks.training.save_backup`) commits everything the rest of the run depends
    on: weights, dropout's random state, the optimizer's state, early stopping (best value,
    epoch and weights, epochs waited), the phase and the epochs' logs. A run killed at any point
    resumes from its last finished epoch and ends with the model, metrics and DVCLive curves of
    a run never killed (bit for bit on CPU)."""
    import shutil
    import time

    from dvclive import Live

    from tasks.core.artifacts import PROGRESS_FILE
    from tasks.networks.training import load_backup, log_epoch, save_backup

    binary = is_binary(classes)
    phases = phases or [Phase(params["epochs"], params["learning_rate"])]
    epochs = phases[-1].until
    monitor, mode = ("val_auc", "max") if binary else ("val_loss", "min")
    epoch_data = train_data if callable(train_data) else (lambda epoch: train_data)
    weights = class_weights(train_labels, len(classes), params.get("class_weight", "none"))
    compiled: list[int | None] = [None]  # the phase the model is compiled for

    def phase_at(epoch: int) -> int | None:
        return next((number for number, phase in enumerate(phases) if phase.until > epoch), None)

    def compile_phase(number: int):
        import keras

        from tasks.networks.training import optimizer

        phase = phases[number]
        for layer in model.layers:
            layer.trainable = layer.name not in phase.frozen
        model.compile(
            optimizer=optimizer({**params, "learning_rate": phase.learning_rate}, where),
            loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy",
            metrics=["accuracy", keras.metrics.AUC(name="auc")] if binary else ["accuracy"],
        )
        model.optimizer.build(model.trainable_variables)  # as fit would: the backup's state is assigned into it
        compiled[0] = number
        return model.optimizer

    def resumed_optimizer(record: dict[str, Any]):
        number = phase_at(record["epoch"])
        if number is None or record.get("early_stopping") is None:  # finished, or a phase just ended
            return None
        return compile_phase(number)

    record: dict[str, Any] = {"epoch": 0, "trained": 0, "early_stopping": None, "history": []}
    best_weights = None
    restored = load_backup(checkpoint_dir, model, resumed_optimizer)
    if restored:
        record, arrays = restored
        best_weights = arrays.get("best") or None
        print(f"train: resuming from the backup of epoch {record['epoch']} in {checkpoint_dir}")
    else:
        compiled[0] = None
    resumed_from = record["epoch"]
    started = time.perf_counter()
    epochs_this_run = 0
    with Live(str(live_dir), dvcyaml=False, save_dvc_exp=False, report=None) as live:
        for logged in record["history"]:  # the curves keep the epochs before the resume
            log_epoch(live, PROGRESS_FILE, logged["epoch"], epochs, resumed_from, logged["logs"])
        epoch = record["epoch"]
        while (number := phase_at(epoch)) is not None:
            phase = phases[number]
            if compiled[0] != number:
                compile_phase(number)
            stopping = _EarlyStopping(mode, params["early_stopping_patience"], record["early_stopping"], best_weights)
            while epoch < phase.until:
                epoch_started = time.perf_counter()
                history = model.fit(
                    epoch_data(epoch),
                    validation_data=validation_data,
                    initial_epoch=epoch,
                    epochs=epoch + 1,
                    shuffle=False,  # the dataset is ordered (seed, epoch); Keras cannot shuffle a dataset
                    class_weight=weights,
                    verbose=0,
                )
                logs = {name: float(values[-1]) for name, values in history.history.items()}
                print(f"Epoch {epoch + 1}/{epochs} - {time.perf_counter() - epoch_started:.1f}s - "
                      + " - ".join(f"{name}: {value:.4f}" for name, value in logs.items()), flush=True)
                stop = stopping.update(model, epoch, logs.get(monitor))
                record["history"].append({"epoch": epoch, "logs": logs})
                logged, epoch, epochs_this_run = epoch, epoch + 1, epochs_this_run + 1
                ended = stop or epoch >= phase.until
                if stop:
                    print(f"Epoch {epoch}: early stopping (best: epoch {stopping.best_epoch + 1})")
                if ended:  # as Keras' EarlyStopping at the end of training: the phase's best weights
                    if stopping.best_weights is not None:
                        model.set_weights(stopping.best_weights)
                    epoch = phase.until
                record.update(epoch=epoch, trained=record["trained"] + 1,
                              early_stopping=None if ended else stopping.state())
                save_backup(checkpoint_dir, model, record, None if ended else model.optimizer,
                            {"best": [] if ended else list(stopping.best_weights or [])})
                # After the commit: progress says an epoch is done once a kill can no longer lose it.
                log_epoch(live, PROGRESS_FILE, logged, epochs, resumed_from, logs)
                if ended:
                    break
            record["early_stopping"], best_weights = None, None
    seconds = time.perf_counter() - started
    shutil.rmtree(checkpoint_dir, ignore_errors=True)  # finished: the backup can never be resumed
    return {
        "epochs_run": record["trained"],
        "resumed_from_epoch": resumed_from,
        "train_seconds": round(seconds, 2),
        "train_samples_per_s": round(len(train_labels) * epochs_this_run / seconds, 1) if seconds and epochs_this_run else None,
        "parameters": int(model.count_params()),
    }


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


def ensemble_weight(labels: np.ndarray, rnn: np.ndarray, baseline: np.ndarray) -> float:
    """The RNN's share in a mix of its probabilities with the baseline's: the lowest validation
    log-loss (a proper score, steadier than a thresholded one); ties go to the RNN."""
    from sklearn.metrics import log_loss

    n_classes = rnn.shape[1] if rnn.ndim > 1 else 2

    def loss(weight: float) -> float:
        mixed = np.clip(weight * rnn + (1 - weight) * baseline, 1e-7, 1 - 1e-7)
        return log_loss(labels, mixed, labels=list(range(n_classes)))

    return float(min(ENSEMBLE_WEIGHTS, key=lambda weight: (round(loss(weight), 6), -weight)))


def _fixed_or_fitted_weight(setting: Any, labels: np.ndarray, rnn: np.ndarray, baseline: np.ndarray, where: str) -> float:
    if setting == "auto":
        return ensemble_weight(labels, rnn, baseline)
    if isinstance(setting, (int, float)) and not isinstance(setting, bool) and 0 <= setting <= 1:
        return float(setting)
    raise PipelineError(f"params.yaml: {where}.ensemble_weight must be auto or a number from 0 to 1, not {setting!r}")


def ensemble(params: dict[str, Any], labels: np.ndarray, rnn: np.ndarray, baseline_dir: Path, baseline_file: str,
             model_dir: Path, where: str) -> tuple[np.ndarray, dict[str, Any] | None]:
    """``ensemble: baseline``: weigh the RNN's validation probabilities with the baseline's (the RNN's
    share ``ensemble_weight``: auto = the best validation log-loss, or a fixed number), copy the
    baseline model into ``model_dir`` (the saved model serves both); ``none``: the RNN alone.
    Returns the validation probabilities the model will answer with, and the card's ``ensemble``."""
    import shutil

    choice = params.get("ensemble", "none")
    if choice == "none":
        return rnn, None
    if choice != "baseline":
        raise PipelineError(f"params.yaml: {where}.ensemble must be none or baseline, not {choice!r}")
    baseline = np.load(baseline_dir / VALIDATION_PROBABILITIES, allow_pickle=False)
    if baseline.shape != rnn.shape:
        raise PipelineError(f"{baseline_dir}: the baseline's validation probabilities do not match this split; "
                            "run the pipeline again (dvc repro)")
    weight = _fixed_or_fitted_weight(params.get("ensemble_weight", "auto"), labels, rnn, baseline, where)
    shutil.copy(baseline_dir / baseline_file, model_dir / baseline_file)
    return weight * rnn + (1 - weight) * baseline, {"rnn_weight": weight, "baseline": baseline_file}
