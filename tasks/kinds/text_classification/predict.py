"""Text classification, predict: score a table's text column with the served model."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tasks.core.common import PipelineError
from tasks.kinds.text_classification.served import Predictor
from tasks.targets.classifier.predict import refuse_taken_columns, write_answers
from tasks.targets.classifier.served import classifier_card


def predict_file(source: Path, output: Path, model_dir: Path, text_column: str = "text", **_: Any) -> int:
    """Score every row of a table; write it, every input column as it was, with the predicted
    label (two classes: 0/1) and the class probabilities in ``predicted_*`` columns. The input
    and the model card are checked before the model loads."""
    from tasks.readers.tables import read_one_table

    classes = classifier_card(model_dir)["classes"]
    frame = read_one_table(source)
    if text_column not in frame.columns:
        raise PipelineError(f"{source}: no column '{text_column}'; found: {', '.join(map(str, frame.columns))}")
    refuse_taken_columns(frame.columns, classes, source)
    predictor = Predictor(model_dir)
    probabilities = predictor.probabilities(frame[text_column].fillna("").astype(str).tolist())
    return write_answers(frame, predictor, probabilities, output, binary_index=True)
