"""Series classification: a numeric sequence in (steps x features), one of K classes out.

Input: numeric series (:mod:`tasks.inputs.series`: missing values, length rules, scaling fitted on
train and built into the model). Target: classes (:mod:`tasks.targets.classification`; the stages
it shares with text classification, :mod:`tasks.targets.classifier`). The saved model takes a
batch of series padded at the end with NaN and returns class probabilities.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCALER_FILE = "scaler.json"
META_FILE = "meta.json"
BASELINE_FILE = "series_baseline.npz"  # the baseline stage's model, copied beside an ensembled RNN


def read_features(directory: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The tokenize stage's scaler and metadata."""
    return json.loads((directory / SCALER_FILE).read_text()), json.loads((directory / META_FILE).read_text())
