"""What the classifiers' predict writes: the ``predicted_*`` columns beside the input's.

The served model itself is :mod:`tasks.targets.classifier.served`'s.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tasks.core.common import PipelineError, atomic_path
from tasks.targets.classification import is_binary, predictions
from tasks.targets.classifier.served import Served

PREDICTED = "predicted_"  # the prefix of every column predict adds: never an input column's name


def _key(name: str) -> str:
    return "".join(character if character.isalnum() else "_" for character in str(name).lower()).strip("_") or "class"


def probability_columns(probabilities: np.ndarray, classes: list[str]) -> dict[str, np.ndarray]:
    """Output columns of predict: ``probability`` (binary) or ``probability_<class>`` per class."""
    if probabilities.ndim == 1:
        return {"probability": probabilities.round(6)}
    return {f"probability_{_key(name)}": probabilities[:, index].round(6) for index, name in enumerate(classes)}


def prediction_columns(classes: list[str]) -> list[str]:
    """The columns predict adds: ``predicted_label``, then ``predicted_probability`` (two
    classes) or ``predicted_probability_<class>`` per class."""
    empty = np.zeros((0,) if is_binary(classes) else (0, len(classes)))
    return [f"{PREDICTED}label", *(PREDICTED + name for name in probability_columns(empty, classes))]


def refuse_taken_columns(columns, classes: list[str], source: Path) -> None:
    """An input that already has a column predict would write is refused, naming the column."""
    taken = [name for name in prediction_columns(classes) if name in {str(column) for column in columns}]
    if taken:
        raise PipelineError(f"{source}: already has a column '{taken[0]}', a name predict writes its answers under; "
                            "rename that column (input columns are never overwritten)")


def write_answers(frame: pd.DataFrame, predictor: Served, probabilities: np.ndarray, output: Path,
                  binary_index: bool = False) -> int:
    """``frame`` with the predicted label and the class probabilities (``predicted_*`` columns)
    written to ``output`` as CSV, atomically; the rows written. ``binary_index``: two classes
    answer 0/1 (the label's index) instead of the class name."""
    predicted = predictions(probabilities, predictor.threshold)
    added = {f"{PREDICTED}label": predicted if binary_index and is_binary(predictor.classes)
             else np.asarray(predictor.classes, dtype=object)[predicted]}
    for column, values in probability_columns(probabilities, predictor.classes).items():
        added[PREDICTED + column] = values
    frame = frame.assign(**added)
    with atomic_path(output, kind="file") as tmp:
        frame.to_csv(tmp, index=False)
    return len(frame)
