"""Text classification, predict: the served model (RNN, baseline, mix, threshold) and batch scoring."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tasks.core.common import PipelineError, atomic_path
from tasks.inputs import vocabulary
from tasks.inputs.textclean import CleanOptions
from tasks.kinds.text_classification import PREDICTED
from tasks.targets import classification


class Predictor(classification.Served):
    """The trained text model with its cleaning, threshold and (optionally) the baseline it is
    averaged with: text in, class probabilities out."""

    def __init__(self, model_dir: Path) -> None:
        from tasks.core.artifacts import read_card
        from tasks.core.common import (
            check_model_archive,
            damaged_model,
            load_model_part,
        )

        self.card = read_card(model_dir)
        self.classes = card_classes(self.card, model_dir)
        try:
            self.options = CleanOptions.from_params(self.card["clean"])
            self.threshold = self.card["threshold"]
            self.ensemble = self.card.get("ensemble")
            baseline = self.ensemble and model_dir / self.ensemble["baseline"]
        except (KeyError, TypeError, ValueError) as error:
            raise damaged_model(Path(model_dir) / "model.json", "a text classifier's model card",
                                f"missing {error}" if isinstance(error, KeyError) else error) from error
        check_model_archive(model_dir / "model.keras", "a Keras model file")  # before TensorFlow loads
        from tasks.networks.model import load_model

        self.model = load_model(str(model_dir / "model.keras"))
        if self.ensemble:
            from tasks.baselines.tfidf import TfidfLogistic

            self.baseline = load_model_part(baseline, "the baseline's arrays (.npz)", TfidfLogistic.load)

    def rnn_probabilities(self, cleaned: list[str], batch_size: int = 256) -> np.ndarray:
        """The recurrent network's own probabilities of cleaned texts (two classes: the positive one)."""
        import tensorflow as tf

        width = 1 if classification.is_binary(self.classes) else len(self.classes)
        if not cleaned:
            return np.zeros((0,) if width == 1 else (0, width), dtype=np.float32)
        # A text that cleans to nothing becomes one OOV step: cuDNN rejects all-padding sequences.
        cleaned = [text or vocabulary.OOV_TOKEN for text in cleaned]
        dataset = tf.data.Dataset.from_tensor_slices(tf.constant(cleaned, dtype=tf.string)).batch(batch_size)
        # predict_on_batch runs one traced graph (texts in, a fixed max_len inside); an eager call
        # would step the recurrent loop in Python.
        outputs = np.concatenate([np.asarray(self.model.predict_on_batch(batch)) for batch in dataset])
        return outputs.ravel() if width == 1 else outputs

    def probabilities(self, texts: list[str]) -> np.ndarray:
        """Class probabilities for raw texts."""
        from tasks.inputs.textclean import clean_texts

        return self.probabilities_of_clean(clean_texts(texts, self.options))


def card_classes(card: dict[str, Any], model_dir: Path) -> list[str]:
    """The class names a classifier's card lists (a card without them is damaged)."""
    from tasks.core.common import damaged_model

    classes = card.get("classes")
    if not isinstance(classes, list) or len(classes) < 2:
        raise damaged_model(Path(model_dir) / "model.json", "a classifier's model card", "no list of classes")
    return classes


def prediction_columns(classes: list[str]) -> list[str]:
    """The columns predict adds: ``predicted_label``, then ``predicted_probability`` (two
    classes) or ``predicted_probability_<class>`` per class."""
    empty = np.zeros((0,) if classification.is_binary(classes) else (0, len(classes)))
    return [f"{PREDICTED}label", *(PREDICTED + name for name in classification.probability_columns(empty, classes))]


def refuse_taken_columns(columns, classes: list[str], source: Path) -> None:
    """An input that already has a column predict would write is refused, naming the column."""
    taken = [name for name in prediction_columns(classes) if name in {str(column) for column in columns}]
    if taken:
        raise PipelineError(f"{source}: already has a column '{taken[0]}', a name predict writes its answers under; "
                            "rename that column (input columns are never overwritten)")


def predict_file(source: Path, output: Path, model_dir: Path, text_column: str = "text", **_: Any) -> int:
    """Score every row of a table; write it, every input column as it was, with the predicted
    label and the class probabilities in ``predicted_*`` columns. The input and the model card
    are checked before the model loads."""
    from tasks.core.artifacts import read_card
    from tasks.readers.tables import read_one_table

    classes = card_classes(read_card(model_dir), model_dir)
    frame = read_one_table(source)
    if text_column not in frame.columns:
        raise PipelineError(f"{source}: no column '{text_column}'; found: {', '.join(map(str, frame.columns))}")
    refuse_taken_columns(frame.columns, classes, source)
    predictor = Predictor(model_dir)
    probabilities = predictor.probabilities(frame[text_column].fillna("").astype(str).tolist())
    predicted = classification.predictions(probabilities, predictor.threshold)
    added = {f"{PREDICTED}label": predicted if classification.is_binary(predictor.classes)
             else np.asarray(predictor.classes, dtype=object)[predicted]}
    for column, values in classification.probability_columns(probabilities, predictor.classes).items():
        added[PREDICTED + column] = values
    frame = frame.assign(**added)
    with atomic_path(output, kind="file") as tmp:
        frame.to_csv(tmp, index=False)
    return len(frame)
