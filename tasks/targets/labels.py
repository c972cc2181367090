"""Class labels as the data keeps them: an int index into the table's ``classes`` per row.

What the data stages need of the class target (ingest counts the labels) and the train stage
reads them as: nothing here computes a metric or touches a model, so editing how a classifier
is scored or trained never reruns a data stage.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def is_binary(classes: list[str]) -> bool:
    return len(classes) == 2


def label_counts(frame: pd.DataFrame, classes: list[str]) -> dict[str, int]:
    """Rows per class name (``<NA>`` for rows without a label), for ingest summaries."""
    counts = frame["label"].value_counts(dropna=False)
    return {("<NA>" if pd.isna(index) else classes[int(index)]): int(count) for index, count in counts.items()}


def label_array(table: pd.DataFrame, classes: list[str]) -> np.ndarray:
    """Labels as Keras takes them: float 0/1 for two classes, int class indices for more."""
    return table["label"].to_numpy().astype(np.float32 if is_binary(classes) else np.int32)


def labelled_summary(frame: pd.DataFrame, metadata: dict[str, Any], **figures: Any) -> dict[str, Any]:
    """A classifying kind's ``metrics/ingest.json`` figures: its own ``figures``, the classes and
    the rows per class (:func:`label_counts`)."""
    classes = metadata["classes"]
    return {**figures, "classes": classes, "labels": label_counts(frame, classes)}
