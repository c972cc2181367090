"""Text classification, evaluate: test metrics, plots, slices and the worst errors."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from tasks.kinds.text_classification.predict import Predictor
from tasks.targets import classification


def evaluate(model_dir: Path, test: pd.DataFrame, params: dict[str, Any], baseline: dict[str, Any] | None,
             plots_dir: Path, report_dir: Path) -> dict[str, Any]:
    """Test metrics, plots (confusion, ROC, PR), per-slice metrics and the worst errors."""
    from tasks.core.common import write_json

    predictor = Predictor(model_dir)
    texts = test["text"].tolist()
    rnn = predictor.rnn_probabilities(texts)
    probabilities = predictor.probabilities_of_clean(texts, rnn)
    labels = test["label"].to_numpy().astype(int)
    classes, threshold = predictor.classes, predictor.threshold
    metrics = classification.score_test_split(predictor, labels, rnn, probabilities, plots_dir)
    write_json(report_dir / "slices.json", classification.slice_metrics(
        test, probabilities, threshold, params["slice_columns"], "n_tokens", params["length_buckets"]))
    classification.worst_examples(test, probabilities, classes, threshold, params["worst_examples"],
                                  ["raw_text", "text"]).to_csv(report_dir / "worst_examples.csv", index=False)
    if baseline:
        metrics["baseline"] = baseline.get("test", baseline)
    return metrics


def headline(metrics: dict[str, Any]) -> str:
    auc = metrics.get("roc_auc")
    return (f"accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}, "
            f"minority F1 {metrics['minority_f1']:.4f}, ROC-AUC {auc if auc is None else round(auc, 4)} "
            f"(majority rate {metrics['majority_rate']:.4f}, n={metrics['n_test']})")
