"""Text classification, evaluate: test metrics, plots, slices and the worst errors."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from tasks.kinds.text_classification.served import Predictor
from tasks.targets.classifier import evaluate as classifier


def evaluate(model_dir: Path, test: pd.DataFrame, params: dict[str, Any], baseline: dict[str, Any] | None,
             plots_dir: Path, report_dir: Path) -> dict[str, Any]:
    """Test metrics, plots (confusion, ROC, PR), metrics per slice column and length, the worst
    errors with their raw and cleaned text (:func:`tasks.targets.classifier.evaluate.evaluate`)."""
    return classifier.evaluate(Predictor(model_dir), test["text"].tolist(), test, params, baseline, plots_dir, report_dir,
                               params["slice_columns"], "n_tokens", ["raw_text", "text"])


def headline(metrics: dict[str, Any]) -> str:
    auc = metrics.get("roc_auc")
    return (f"accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}, "
            f"minority F1 {metrics['minority_f1']:.4f}, ROC-AUC {auc if auc is None else round(auc, 4)} "
            f"(majority rate {metrics['majority_rate']:.4f}, n={metrics['n_test']})")
