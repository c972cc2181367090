"""Series classification, baseline: logistic regression over summary and shape features."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tasks.inputs import series
from tasks.kinds.series_classification import BASELINE_FILE, read_features
from tasks.targets.classifier.baseline import fit_baseline, macro_f1_scorer


def baseline(tokenized_dir: Path, clean_dir: Path, params: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Logistic regression over length-independent summary features of each series and its shape
    resampled to ``shape_steps`` steps (:class:`tasks.inputs.series.SummaryLogistic`); C chosen on
    validation (macro-F1), as is a two-class threshold. Saves the model and its validation probabilities (for an ensemble with the RNN)."""
    _, meta = read_features(tokenized_dir)
    classes = meta["classes"]
    return fit_baseline(clean_dir, classes, lambda split: series.unpack(split["values"], meta["n_features"]),
                        lambda *data: series.SummaryLogistic.fit(*data, macro_f1_scorer(classes), params["C"], params["shape_steps"]),
                        out_dir / BASELINE_FILE)


def baseline_headline(metrics: dict[str, Any]) -> str:
    return f"accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}"
