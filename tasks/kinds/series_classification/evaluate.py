"""Series classification, evaluate: test metrics, plots, slices and the worst errors."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from tasks.inputs import series
from tasks.kinds.series_classification.predict import Predictor
from tasks.targets import classification


def evaluate(model_dir: Path, test: pd.DataFrame, params: dict[str, Any], baseline: dict[str, Any] | None,
             plots_dir: Path, report_dir: Path) -> dict[str, Any]:
    """Test accuracy, macro-F1, each class's F1, the majority rate, a K x K confusion matrix,
    metrics by length bucket and the worst errors."""
    from tasks.core.common import write_json

    predictor = Predictor(model_dir)
    items = series.unpack(test["values"], predictor.card["n_features"])
    rnn = predictor.rnn_probabilities(items)
    probabilities = predictor.probabilities_of_clean(items, rnn)
    labels = test["label"].to_numpy().astype(int)
    classes, threshold = predictor.classes, predictor.threshold
    metrics = classification.score_test_split(predictor, labels, rnn, probabilities, plots_dir)
    table = test.drop(columns="values")
    write_json(report_dir / "slices.json", classification.slice_metrics(
        table, probabilities, threshold, [], "n_steps", params["length_buckets"]))
    classification.worst_examples(table, probabilities, classes, threshold, params["worst_examples"],
                                  ["n_steps"]).to_csv(report_dir / "worst_examples.csv", index=False)
    if baseline:
        metrics["baseline"] = baseline.get("test", baseline)
    return metrics


def headline(metrics: dict[str, Any]) -> str:
    return (f"accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}, minority F1 {metrics['minority_f1']:.4f} "
            f"({metrics['n_classes']} classes, majority rate {metrics['majority_rate']:.4f}, n={metrics['n_test']})")
