"""Stage 6, evaluate: score the saved text model on the held-out test split.

Accuracy alone lies on imbalanced data, so beside it come macro-F1, each class's F1,
the minority class's F1, ROC-AUC, PR-AUC and the majority-class rate (what always
guessing the commoner class scores). Writes ``metrics/evaluate.json``, DVC plot data and
PNGs under ``plots/evaluate/`` (confusion matrix, ROC, precision-recall) and
``reports/evaluation/`` (metrics per slice, the worst misclassified examples).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.common import atomic_path, load_params, read_parquet, run_main, write_json

TEST_SPLIT = Path("data/clean/test.parquet")
METRICS = Path("metrics/evaluate.json")
PLOTS_DIR = Path("plots/evaluate")
REPORT_DIR = Path("reports/evaluation")
CURVE_POINTS = 200


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray, threshold: float) -> dict[str, Any]:
    """The headline metrics of binary predictions."""
    from sklearn import metrics

    predicted = (probabilities >= threshold).astype(int)
    positive_rate = float(labels.mean())
    minority = 1 if positive_rate < 0.5 else 0
    f1 = metrics.f1_score(labels, predicted, average=None, labels=[0, 1], zero_division=0)
    both_classes = len(np.unique(labels)) == 2
    return {
        "n_test": int(len(labels)),
        "threshold": float(threshold),
        "accuracy": float(metrics.accuracy_score(labels, predicted)),
        "macro_f1": float(f1.mean()),
        "f1_negative": float(f1[0]),
        "f1_positive": float(f1[1]),
        "minority_class": minority,
        "minority_f1": float(f1[minority]),
        "roc_auc": float(metrics.roc_auc_score(labels, probabilities)) if both_classes else None,
        "pr_auc": float(metrics.average_precision_score(labels, probabilities)) if both_classes else None,
        "majority_rate": max(positive_rate, 1 - positive_rate),
        "precision": float(metrics.precision_score(labels, predicted, zero_division=0)),
        "recall": float(metrics.recall_score(labels, predicted, zero_division=0)),
    }


def thin(frame: pd.DataFrame, points: int = CURVE_POINTS) -> pd.DataFrame:
    """At most ``points`` evenly spaced rows of a curve (ends kept), so plot files stay small."""
    if len(frame) <= points:
        return frame
    return frame.iloc[np.unique(np.linspace(0, len(frame) - 1, points).round().astype(int))]


def curves(labels: np.ndarray, probabilities: np.ndarray, threshold: float) -> dict[str, pd.DataFrame]:
    """Plot data: confusion rows, ROC and precision-recall curves."""
    from sklearn import metrics

    fpr, tpr, _ = metrics.roc_curve(labels, probabilities)
    precision, recall, _ = metrics.precision_recall_curve(labels, probabilities)
    return {
        "confusion": pd.DataFrame({"actual": labels, "predicted": (probabilities >= threshold).astype(int)}),
        "roc": thin(pd.DataFrame({"fpr": fpr, "tpr": tpr})),
        "precision_recall": thin(pd.DataFrame({"recall": recall, "precision": precision})),
    }


def slice_metrics(test: pd.DataFrame, probabilities: np.ndarray, threshold: float, columns: list[str], buckets: list[int]) -> dict[str, Any]:
    """Accuracy and F1 within each value of the slice columns and each text-length bucket."""
    from sklearn import metrics

    frame = test.assign(probability=probabilities, predicted=(probabilities >= threshold).astype(int))
    frame["length_bucket"] = pd.cut(frame["n_tokens"], bins=buckets, right=False).astype(str)
    report: dict[str, Any] = {}
    for column in [c for c in columns if c in frame.columns] + ["length_bucket"]:
        report[column] = {
            str(value): {
                "n": int(len(group)),
                "positive_rate": round(float(group["label"].mean()), 4),
                "accuracy": round(float((group["label"] == group["predicted"]).mean()), 4),
                "macro_f1": round(float(metrics.f1_score(group["label"], group["predicted"], average="macro", zero_division=0)), 4),
            }
            for value, group in frame.groupby(column, dropna=False, observed=True)
        }
    return report


def worst_examples(test: pd.DataFrame, probabilities: np.ndarray, threshold: float, count: int) -> pd.DataFrame:
    """The misclassified test texts the model was most confident about."""
    frame = test.assign(probability=probabilities.round(4), predicted=(probabilities >= threshold).astype(int))
    wrong = frame[frame["predicted"] != frame["label"]].copy()
    wrong["confidence_in_error"] = (wrong["probability"] - wrong["label"]).abs()
    columns = ["id", "label", "predicted", "probability", "confidence_in_error", "raw_text", "text"]
    return wrong.sort_values("confidence_in_error", ascending=False).head(count)[columns]


def save_png_plots(data: dict[str, pd.DataFrame], metrics: dict[str, Any], directory: Path) -> None:
    """PNG copies of the plots, viewable without DVC or a network."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    confusion = pd.crosstab(data["confusion"]["actual"], data["confusion"]["predicted"]).reindex(
        index=[0, 1], columns=[0, 1], fill_value=0
    )
    figure, axis = plt.subplots(figsize=(4, 4))
    axis.imshow(confusion.to_numpy(), cmap="Blues")
    for (row, column), value in np.ndenumerate(confusion.to_numpy()):
        axis.text(column, row, str(value), ha="center", va="center")
    axis.set(xticks=[0, 1], yticks=[0, 1], xlabel="predicted", ylabel="actual", title="Confusion matrix (test)")
    figure.tight_layout()
    figure.savefig(directory / "confusion.png", dpi=100)
    plt.close(figure)
    for name, x, y, title in (
        ("roc", "fpr", "tpr", f"ROC (AUC {metrics['roc_auc']:.3f})"),
        ("precision_recall", "recall", "precision", f"Precision-recall (AP {metrics['pr_auc']:.3f})"),
    ):
        figure, axis = plt.subplots(figsize=(4, 4))
        axis.plot(data[name][x], data[name][y])
        axis.set(xlabel=x, ylabel=y, title=title, xlim=(0, 1), ylim=(0, 1.02))
        figure.tight_layout()
        figure.savefig(directory / f"{name}.png", dpi=100)
        plt.close(figure)


def main() -> None:
    """Run the evaluate stage with ``params.yaml`` ``evaluate``."""
    from tasks.predict import Predictor

    params = load_params("evaluate")
    test = read_parquet(TEST_SPLIT, "clean")
    predictor = Predictor()
    probabilities = predictor.probabilities_of_clean(test["text"].tolist())
    labels = test["label"].to_numpy().astype(int)
    metrics = classification_metrics(labels, probabilities, predictor.threshold)
    data = curves(labels, probabilities, predictor.threshold)
    with atomic_path(PLOTS_DIR) as plots:
        plots.mkdir()
        for name, frame in data.items():
            frame.to_csv(plots / f"{name}.csv", index=False)
        save_png_plots(data, metrics, plots)
    with atomic_path(REPORT_DIR) as report:
        report.mkdir()
        slices = slice_metrics(test, probabilities, predictor.threshold, params["slice_columns"], params["length_buckets"])
        write_json(report / "slices.json", slices)
        worst_examples(test, probabilities, predictor.threshold, params["worst_examples"]).to_csv(
            report / "worst_examples.csv", index=False
        )
    write_json(METRICS, {key: round(value, 4) if isinstance(value, float) else value for key, value in metrics.items()})
    print(
        f"evaluate: accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}, "
        f"minority F1 {metrics['minority_f1']:.4f}, ROC-AUC {metrics['roc_auc']:.4f} "
        f"(majority rate {metrics['majority_rate']:.4f}, n={metrics['n_test']})"
    )


if __name__ == "__main__":
    run_main(main)
