"""Series classification, train: the recurrent classifier, its decision and its card."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tasks.inputs import series
from tasks.kinds.series_classification import BASELINE_FILE, read_features
from tasks.kinds.series_classification.served import Predictor
from tasks.targets.classifier import train as fitting

WHERE = "train.series_classification"


def train(params: dict[str, Any], tokenized_dir: Path, model_dir: Path, live_dir: Path, checkpoint_dir: Path) -> dict[str, Any]:
    """Fit the classifier over scaled, masked series (padded with NaN): sized by the number of
    training series (:func:`tasks.networks.model.series_capacity`), long series downsampled to
    ``downsample_to`` steps (:func:`tasks.networks.model.downsample_stride`), a convolutional
    branch beside the recurrent layers for long series (:func:`tasks.networks.model.uses_conv_branch`),
    its epochs within the compute budget (:func:`tasks.networks.model.series_epochs`); save it
    (scaler inside) and its card."""
    from tasks.networks.model import (
        build_series_classifier,
        downsample_stride,
        series_capacity,
        series_epochs,
        uses_conv_branch,
    )

    scaler, meta = read_features(tokenized_dir)
    classes, n_features = meta["classes"], meta["n_features"]
    sized = series_capacity(params, meta["train_rows"])
    stride = downsample_stride(meta["max_steps"], params.get("downsample_to", 100))
    epochs = series_epochs(params, meta["train_rows"], -(-meta["max_steps"] // stride))
    conv = uses_conv_branch(params, meta["max_steps"])
    fitted = fitting.fit({**params, "epochs": epochs}, tokenized_dir, classes, WHERE, live_dir, checkpoint_dir,
                         lambda table: series.unpack(table["values"], n_features),
                         lambda: (build_series_classifier(sized, scaler, len(classes), stride, conv), None, None), pad_value=np.nan)
    fitted.model.save(model_dir / "model.keras")
    validation = series.unpack(fitted.tables["validation"]["values"], n_features)
    rnn = Predictor.of(fitted.model, classes, n_features).probabilities_of_clean(validation)
    summary, _ = fitting.serve(params, meta, fitted, rnn, model_dir, BASELINE_FILE, WHERE, {
        "n_features": n_features, "feature_names": meta.get("feature_names")})
    return {**summary, "layers": sized["layers"], "units": sized["units"], "downsample_stride": stride, "conv_branch": conv,
            "max_epochs": epochs,
            "padding_fraction": round(fitted.padding_fraction, 4)}
