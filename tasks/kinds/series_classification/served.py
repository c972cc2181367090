"""Series classification, the served model: what train scores validation with, evaluate scores
and predict answers with."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from tasks.core.common import PipelineError
from tasks.inputs import series
from tasks.targets.classifier.served import Served


def baseline_models() -> dict[str, Any]:
    """The series baselines by the name params and the saved file give them."""
    from tasks.baselines.minirocket import MiniRocketRidge

    return {"summary_logistic": series.SummaryLogistic, "minirocket": MiniRocketRidge}


def save_baseline(model, name: str, path: Path) -> None:
    """A baseline's arrays and its name, in an ``.npz`` without pickle."""
    np.savez(path, baseline_model=np.asarray(name), **model.arrays())


def load_baseline(path: Path):
    with np.load(path, allow_pickle=False) as stored:
        name = str(stored["baseline_model"])
        if name not in baseline_models():
            raise ValueError(f"an unknown baseline model {name!r}")
        return baseline_models()[name].from_arrays(stored)


class Predictor(Served):
    """The trained series model with its cleaning options (and the baseline it is averaged with,
    when ensembled): series in, class probabilities out."""

    CARD = "a series classifier's model card"

    def check_card(self, card: dict[str, Any]) -> None:
        missing = [key for key in ("n_features", "threshold", "clean") if key not in card]
        if missing:
            raise KeyError(missing[0])
        self.read_options(card["clean"])

    @staticmethod
    def read_options(clean: dict[str, Any]) -> series.SeriesOptions:
        return series.SeriesOptions(**clean)

    @staticmethod
    def load_baseline(path: Path):
        return load_baseline(path)

    @classmethod
    def of(cls, model, classes: list[str], n_features: int) -> "Predictor":
        """A predictor around a model in memory (the train stage's, before its card exists)."""
        predictor = cls.__new__(cls)
        predictor._setup(model, {"classes": classes, "threshold": None, "n_features": n_features,
                                 "clean": asdict(series.SeriesOptions())})
        return predictor

    def rnn_probabilities(self, items: list[np.ndarray], batch_size: int = 256) -> np.ndarray:
        """The recurrent network's class probabilities (two classes: the positive one) of cleaned
        series, padded with NaN in batches."""
        outputs = []
        for start in range(0, len(items), batch_size):
            batch = items[start : start + batch_size]
            padded = np.full((len(batch), max(len(item) for item in batch), self.card["n_features"]), np.nan, np.float32)
            for row, item in enumerate(batch):
                padded[row, : len(item)] = item
            outputs.append(np.asarray(self.model(padded, training=False)))
        return self.joined(outputs)

    def probabilities(self, raw: list[np.ndarray]) -> np.ndarray:
        """Class probabilities of raw series (the training cleaning applied; a series the
        ``drop`` policy would leave out is interpolated instead: every input gets an answer)."""
        options = self.options if self.options.missing != "drop" else series.SeriesOptions(
            **{**asdict(self.options), "missing": "interpolate"})
        if any(item.shape[1] != self.card["n_features"] for item in raw):
            raise PipelineError(f"the model reads series of {self.card['n_features']} features; the input has "
                                f"{sorted({item.shape[1] for item in raw})}")
        return self.probabilities_of_clean([series.prepare(item, options) for item in raw])
