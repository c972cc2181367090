"""The classifiers' served model: the RNN, the baseline it may be mixed with and the decision,
as the model card records them.

A kind's ``Predictor`` (``tasks/kinds/<kind>/served.py``) is a :class:`Served`: it says how its
card is checked, how its cleaning options are read, how its network reads a batch and how its
baseline loads; loading the model, mixing and deciding are here. No training code: evaluate and
predict import this module (and the train stage, to score validation with a model in memory).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tasks.targets.labels import is_binary


def card_classes(card: dict[str, Any], model_dir: Path) -> list[str]:
    """The class names a classifier's card lists (a card without them is damaged)."""
    from tasks.core.common import damaged_model

    classes = card.get("classes")
    if not isinstance(classes, list) or len(classes) < 2:
        raise damaged_model(Path(model_dir) / "model.json", "a classifier's model card", "no list of classes")
    return classes


def classifier_card(model_dir: Path) -> dict[str, Any]:
    """The model card, its classes checked: what predict reads before it reads the input."""
    from tasks.core.artifacts import read_card

    card = read_card(model_dir)
    card_classes(card, model_dir)
    return card


class Served:
    """What a trained classifier answers: its RNN's probabilities (``rnn_probabilities``, per input
    type), mixed with its baseline's when the model card names an ensemble (a stack in logit space
    or an average: :func:`tasks.targets.classifier.stacking.mix`), decided at the card's threshold.

    A kind says what differs: ``CARD`` (what its card is called in a damaged card's error),
    :meth:`check_card`, :meth:`read_options` (its cleaning options from the card's ``clean``),
    :meth:`load_baseline` and :meth:`rnn_probabilities`.
    """

    CARD = "a classifier's model card"

    card: dict[str, Any]
    classes: list[str]
    threshold: float | None
    options: Any
    ensemble: dict[str, Any] | None
    model: Any
    baseline: Any

    def __init__(self, model_dir: Path) -> None:
        from tasks.core.common import check_model_archive, damaged_model, load_model_part

        card = classifier_card(model_dir)
        try:
            self.check_card(card)
            baseline = card.get("ensemble") and model_dir / card["ensemble"]["baseline"]
        except (KeyError, TypeError, ValueError) as error:
            raise damaged_model(Path(model_dir) / "model.json", self.CARD,
                                f"missing {error}" if isinstance(error, KeyError) else error) from error
        check_model_archive(model_dir / "model.keras", "a Keras model file")  # before TensorFlow loads
        from tasks.networks.model import load_model

        self._setup(load_model(str(model_dir / "model.keras")), card)
        if self.ensemble:
            self.baseline = load_model_part(baseline, "the baseline's arrays (.npz)", self.load_baseline)

    def _setup(self, model, card: dict[str, Any]) -> None:
        self.model, self.card = model, card
        self.classes, self.threshold = card["classes"], card["threshold"]
        self.options = self.read_options(card["clean"])
        self.ensemble = card.get("ensemble")

    def check_card(self, card: dict[str, Any]) -> None:
        """Raise KeyError (a missing key), TypeError or ValueError where the card is not this kind's."""
        raise NotImplementedError

    @staticmethod
    def read_options(clean: dict[str, Any]) -> Any:
        raise NotImplementedError

    @staticmethod
    def load_baseline(path: Path) -> Any:
        raise NotImplementedError

    def rnn_probabilities(self, cleaned: list) -> np.ndarray:
        raise NotImplementedError

    def joined(self, outputs: list[np.ndarray]) -> np.ndarray:
        """The network's outputs of every batch as probabilities: the positive class's (two
        classes) or one per class; none when there were no batches."""
        width = 1 if is_binary(self.classes) else len(self.classes)
        if not outputs:
            return np.zeros((0,) if width == 1 else (0, width), np.float32)
        result = np.concatenate(outputs)
        return result.ravel() if width == 1 else result

    def probabilities_of_clean(self, cleaned: list, rnn: np.ndarray | None = None) -> np.ndarray:
        """``rnn``: the RNN's probabilities of ``cleaned`` when the caller has them already."""
        rnn = self.rnn_probabilities(cleaned) if rnn is None else rnn
        if not self.ensemble or not len(cleaned):
            return rnn
        from tasks.targets.classifier.stacking import mix

        return mix(self.ensemble, rnn, self.baseline.probabilities(cleaned))
