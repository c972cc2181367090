"""The classifiers' evaluate stage: the served model's test metrics, plots, slices and worst errors.

A kind's evaluate reads its test split into what its ``Predictor`` takes and calls
:func:`evaluate` with the columns its reports show. No training code: only the served model
(:mod:`tasks.targets.classifier.served`) and the metrics (:mod:`tasks.targets.classification`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.targets.classification import classification_metrics, is_binary, predictions
from tasks.targets.classifier.served import Served

CURVE_POINTS = 200


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



def score_test_split(predictor: Served, labels: np.ndarray, rnn: np.ndarray, probabilities: np.ndarray,
                     plots_dir: Path) -> dict[str, Any]:
    """The served model's test metrics (the RNN alone beside them for an ensemble), its curves as
    CSV for DVC and as PNG."""
    classes, threshold = predictor.classes, predictor.threshold
    metrics = classification_metrics(labels, probabilities, classes, threshold)
    if predictor.ensemble:  # the served model mixes with the baseline; the RNN alone is always reported too
        metrics["ensemble_rnn_weight"] = predictor.ensemble["rnn_weight"]
        metrics["ensemble"] = {key: predictor.ensemble[key] for key in ("served", "stack", "why", "validation")
                               if key in predictor.ensemble}
        metrics["rnn_only"] = classification_metrics(labels, rnn, classes, predictor.card["rnn_threshold"])
    data = curves(labels, probabilities, classes, threshold)
    for name, frame in data.items():
        frame.to_csv(plots_dir / f"{name}.csv", index=False)
    save_png_plots(data, metrics, classes, plots_dir)
    return metrics


def evaluate(predictor: Served, items: list, table: pd.DataFrame, params: dict[str, Any], baseline: dict[str, Any] | None,
             plots_dir: Path, report_dir: Path, slice_columns: list[str], length_column: str,
             shown_columns: list[str]) -> dict[str, Any]:
    """Score ``items`` (the test split as the predictor takes it; ``table``: its rows, labels and
    the columns reports show): test metrics and plots (:func:`score_test_split`), metrics per
    value of ``slice_columns`` and per ``length_column`` bucket (``reports/.../slices.json``),
    the worst errors with ``shown_columns`` (``worst_examples.csv``), the baseline's test metrics beside."""
    from tasks.core.common import write_json

    rnn = predictor.rnn_probabilities(items)
    probabilities = predictor.probabilities_of_clean(items, rnn)
    labels = table["label"].to_numpy().astype(int)
    classes, threshold = predictor.classes, predictor.threshold
    metrics = score_test_split(predictor, labels, rnn, probabilities, plots_dir)
    write_json(report_dir / "slices.json", slice_metrics(
        table, probabilities, threshold, slice_columns, length_column, params["length_buckets"]))
    worst_examples(table, probabilities, classes, threshold, params["worst_examples"],
                   shown_columns).to_csv(report_dir / "worst_examples.csv", index=False)
    if baseline:
        metrics["baseline"] = baseline.get("test", baseline)
    return metrics
