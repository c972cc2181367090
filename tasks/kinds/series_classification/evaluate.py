"""Series classification, evaluate: test metrics, plots, slices and the worst errors."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from tasks.inputs import series
from tasks.kinds.series_classification.served import Predictor
from tasks.targets.classifier import evaluate as classifier


def evaluate(model_dir: Path, test: pd.DataFrame, params: dict[str, Any], baseline: dict[str, Any] | None,
             plots_dir: Path, report_dir: Path) -> dict[str, Any]:
    """Test accuracy, macro-F1, each class's F1, the majority rate, a K x K confusion matrix,
    metrics by length bucket and the worst errors (:func:`tasks.targets.classifier.evaluate.evaluate`)."""
    predictor = Predictor(model_dir)
    items = series.unpack(test["values"], predictor.card["n_features"])
    return classifier.evaluate(predictor, items, test.drop(columns="values"), params, baseline, plots_dir, report_dir,
                               [], "n_steps", ["n_steps"])


def headline(metrics: dict[str, Any]) -> str:
    return (f"accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}, minority F1 {metrics['minority_f1']:.4f} "
            f"({metrics['n_classes']} classes, majority rate {metrics['majority_rate']:.4f}, n={metrics['n_test']})")
