"""Series classification, baseline: logistic regression over summary and shape features."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tasks.core.common import read_parquet
from tasks.inputs import series
from tasks.kinds.series_classification import BASELINE_FILE, read_features
from tasks.targets import classification


def baseline(tokenized_dir: Path, clean_dir: Path, params: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Logistic regression over length-independent summary features of each series and its shape
    resampled to ``shape_steps`` steps (:class:`tasks.inputs.series.SummaryLogistic`); C chosen on
    validation (macro-F1), as is a two-class threshold. Saves the model and its validation probabilities (for an ensemble with the RNN)."""
    _, meta = read_features(tokenized_dir)
    classes = meta["classes"]
    parts = {name: read_parquet(clean_dir / f"{name}.parquet", "clean") for name in ("train", "validation", "test")}
    items = {name: series.unpack(part["values"], meta["n_features"]) for name, part in parts.items()}
    labels = {name: part["label"].to_numpy().astype(int) for name, part in parts.items()}
    model = series.SummaryLogistic.fit(items["train"], labels["train"], items["validation"], labels["validation"],
                                       classification.macro_f1_scorer(classes), params["C"], params["shape_steps"])
    model.save(out_dir / BASELINE_FILE)
    probabilities = {name: model.probabilities(items[name]) for name in ("validation", "test")}
    return classification.baseline_report(model.description, labels, probabilities, classes, out_dir)


def baseline_headline(metrics: dict[str, Any]) -> str:
    return f"accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}"
