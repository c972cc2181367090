"""Series classification, predict: the served model and scoring a .ts file or long table."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.core.common import PipelineError, atomic_path
from tasks.inputs import series
from tasks.kinds.series_classification import PREDICTED
from tasks.targets import classification


class Predictor(classification.Served):
    """The trained series model with its cleaning options (and the baseline it is averaged with,
    when ensembled): series in, class probabilities out."""

    def __init__(self, model_dir: Path) -> None:
        from tasks.core.artifacts import read_card
        from tasks.core.common import (
            check_model_archive,
            damaged_model,
            load_model_part,
        )

        card = read_card(model_dir)
        card_classes(card, model_dir)
        try:
            missing = [key for key in ("n_features", "threshold", "clean") if key not in card]
            if missing:
                raise KeyError(missing[0])
            series.SeriesOptions(**card["clean"])
            baseline = card.get("ensemble") and model_dir / card["ensemble"]["baseline"]
        except (KeyError, TypeError, ValueError) as error:
            raise damaged_model(Path(model_dir) / "model.json", "a series classifier's model card",
                                f"missing {error}" if isinstance(error, KeyError) else error) from error
        check_model_archive(model_dir / "model.keras", "a Keras model file")  # before TensorFlow loads
        from tasks.networks.model import load_model

        self._setup(load_model(str(model_dir / "model.keras")), card)
        if self.ensemble:
            self.baseline = load_model_part(baseline, "the baseline's arrays (.npz)", series.SummaryLogistic.load)

    @classmethod
    def of(cls, model, classes: list[str], n_features: int) -> "Predictor":
        """A predictor around a model in memory (the train stage's, before its card exists)."""
        predictor = cls.__new__(cls)
        predictor._setup(model, {"classes": classes, "threshold": None, "n_features": n_features,
                                 "clean": asdict(series.SeriesOptions())})
        return predictor

    def _setup(self, model, card: dict[str, Any]) -> None:
        self.model, self.card = model, card
        self.classes, self.threshold = card["classes"], card["threshold"]
        self.options = series.SeriesOptions(**card["clean"])
        self.ensemble = card.get("ensemble")

    def rnn_probabilities(self, items: list[np.ndarray], batch_size: int = 256) -> np.ndarray:
        """The recurrent network's class probabilities (two classes: the positive one) of cleaned
        series, padded with NaN in batches."""
        width = 1 if classification.is_binary(self.classes) else len(self.classes)
        outputs = []
        for start in range(0, len(items), batch_size):
            batch = items[start : start + batch_size]
            padded = np.full((len(batch), max(len(item) for item in batch), self.card["n_features"]), np.nan, np.float32)
            for row, item in enumerate(batch):
                padded[row, : len(item)] = item
            outputs.append(np.asarray(self.model(padded, training=False)))
        if not outputs:
            return np.zeros((0,) if width == 1 else (0, width), np.float32)
        result = np.concatenate(outputs)
        return result.ravel() if width == 1 else result

    def probabilities(self, raw: list[np.ndarray]) -> np.ndarray:
        """Class probabilities of raw series (the training cleaning applied; a series the
        ``drop`` policy would leave out is interpolated instead: every input gets an answer)."""
        options = self.options if self.options.missing != "drop" else series.SeriesOptions(
            **{**asdict(self.options), "missing": "interpolate"})
        if any(item.shape[1] != self.card["n_features"] for item in raw):
            raise PipelineError(f"the model reads series of {self.card['n_features']} features; the input has "
                                f"{sorted({item.shape[1] for item in raw})}")
        return self.probabilities_of_clean([series.prepare(item, options) for item in raw])


def read_series_file(source: Path, id_column: str | None, order_column: str | None,
                     features: list[str]) -> tuple[list[str], list[np.ndarray], list[str] | None]:
    """Ids, raw series and labels (a ``.ts`` file's, when it has them) of a ``.ts`` file or a long table."""
    if str(source).lower().endswith(".ts"):
        from tasks.readers.tsfile import read_ts

        data = read_ts(source)
        ids = [f"{Path(source).name}:{number}" for number in range(1, len(data.series) + 1)]
        return ids, data.series, data.labels
    from tasks.readers.sequences import long_series
    from tasks.readers.tables import read_one_table

    if not id_column or not order_column:
        raise PipelineError(f"{source}: a long table needs --id-column and --order-column (which rows make a series, "
                            "in which order)")
    grouped = long_series(read_one_table(source), id_column, order_column, features, str(source))
    return [key for key, _ in grouped], [group[features].to_numpy(dtype=np.float32) for _, group in grouped], None


def card_classes(card: dict[str, Any], model_dir: Path) -> list[str]:
    """The class names a classifier's card lists (a card without them is damaged)."""
    from tasks.core.common import damaged_model

    classes = card.get("classes")
    if not isinstance(classes, list) or len(classes) < 2:
        raise damaged_model(Path(model_dir) / "model.json", "a classifier's model card", "no list of classes")
    return classes


def predict_file(source: Path, output: Path, model_dir: Path, id_column: str | None = None,
                 order_column: str | None = None, **_: Any) -> int:
    """Score every series of a ``.ts`` file (or a long table); write each one's ``id``, its
    ``actual`` class (a ``.ts`` file's, when it has them), the ``predicted_label`` and each
    class's probability (``predicted_probability...``). The input is read before the model loads."""
    from tasks.core.artifacts import read_card

    card = read_card(model_dir)
    card_classes(card, model_dir)
    ids, raw, labels = read_series_file(source, id_column, order_column, card.get("feature_names") or [])
    predictor = Predictor(model_dir)
    probabilities = predictor.probabilities([np.asarray(item, np.float32) for item in raw])
    frame = pd.DataFrame({"id": ids})
    if labels is not None:
        frame["actual"] = labels
    predicted = classification.predictions(probabilities, predictor.threshold)
    frame[f"{PREDICTED}label"] = np.asarray(predictor.classes, dtype=object)[predicted]
    for column, values in classification.probability_columns(probabilities, predictor.classes).items():
        frame[PREDICTED + column] = values
    with atomic_path(output, kind="file") as tmp:
        frame.to_csv(tmp, index=False)
    return len(frame)
