"""Text classification, the served model: what evaluate scores and predict answers with."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tasks.inputs import vocabulary
from tasks.inputs.textclean import CleanOptions
from tasks.targets.classifier.served import Served


class Predictor(Served):
    """The trained text model with its cleaning, threshold and (optionally) the baseline it is
    averaged with: text in, class probabilities out."""

    CARD = "a text classifier's model card"

    def check_card(self, card: dict[str, Any]) -> None:
        self.read_options(card["clean"])
        if "threshold" not in card:
            raise KeyError("threshold")

    @staticmethod
    def read_options(clean: dict[str, Any]) -> CleanOptions:
        return CleanOptions.from_params(clean)

    @staticmethod
    def load_baseline(path: Path):
        from tasks.baselines.tfidf import TfidfLogistic

        return TfidfLogistic.load(path)

    def rnn_probabilities(self, cleaned: list[str], batch_size: int = 256) -> np.ndarray:
        """The recurrent network's own probabilities of cleaned texts (two classes: the positive one)."""
        import tensorflow as tf

        if not cleaned:
            return self.joined([])
        # A text that cleans to nothing becomes one OOV step: cuDNN rejects all-padding sequences.
        cleaned = [text or vocabulary.OOV_TOKEN for text in cleaned]
        if getattr(self, "_forward", None) is None:
            # One traced graph (texts in, a fixed max_len inside), kept for the predictor's life and
            # relaxed to any batch size: an eager call would step the recurrent loop in Python, and
            # predict_on_batch pays Keras' per-call set-up (about twice the latency of a served request).
            self._forward = tf.function(lambda texts: self.model(texts, training=False), reduce_retracing=True)
        batches = tf.data.Dataset.from_tensor_slices(tf.constant(cleaned, dtype=tf.string)).batch(batch_size)
        return self.joined([np.asarray(self._forward(batch)) for batch in batches])

    def probabilities(self, texts: list[str]) -> np.ndarray:
        """Class probabilities for raw texts."""
        from tasks.inputs.textclean import clean_texts

        return self.probabilities_of_clean(clean_texts(texts, self.options))
