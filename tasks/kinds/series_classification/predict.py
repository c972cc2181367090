"""Series classification, predict: score a .ts file or long table with the served model."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.core.common import PipelineError
from tasks.kinds.series_classification.served import Predictor
from tasks.targets.classifier.predict import write_answers
from tasks.targets.classifier.served import classifier_card


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


def predict_file(source: Path, output: Path, model_dir: Path, id_column: str | None = None,
                 order_column: str | None = None, **_: Any) -> int:
    """Score every series of a ``.ts`` file (or a long table); write each one's ``id``, its
    ``actual`` class (a ``.ts`` file's, when it has them), the ``predicted_label`` and each
    class's probability (``predicted_probability...``). The input is read before the model loads."""
    card = classifier_card(model_dir)
    ids, raw, labels = read_series_file(source, id_column, order_column, card.get("feature_names") or [])
    predictor = Predictor(model_dir)
    probabilities = predictor.probabilities([np.asarray(item, np.float32) for item in raw])
    frame = pd.DataFrame({"id": ids})
    if labels is not None:
        frame["actual"] = labels
    return write_answers(frame, predictor, probabilities, output)
