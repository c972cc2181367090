"""Series classification, train: the recurrent classifier, its decision and its card."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tasks.core.common import read_parquet
from tasks.inputs import series
from tasks.kinds.series_classification import BASELINE_FILE, read_features
from tasks.kinds.series_classification.predict import Predictor
from tasks.targets import classification


def train(params: dict[str, Any], tokenized_dir: Path, model_dir: Path, live_dir: Path, checkpoint_dir: Path) -> dict[str, Any]:
    """Fit the classifier over scaled, masked series; save it (scaler inside) and its card."""
    from tasks.core.artifacts import BASELINE_DIR, write_card
    from tasks.networks.model import build_series_classifier
    from tasks.networks.training import (
        configure_tensorflow,
        distribution,
        padding_fraction,
        ragged_dataset,
    )

    device = configure_tensorflow(params)
    scaler, meta = read_features(tokenized_dir)
    classes = meta["classes"]
    tables = {name: read_parquet(tokenized_dir / f"{name}.parquet", "tokenize") for name in ("train", "validation")}
    with distribution(params) as replicas:
        inputs = {name: (series.unpack(table["values"], meta["n_features"]), classification.label_array(table, classes))
                  for name, table in tables.items()}
        data = {name: ragged_dataset(*inputs[name], params["batch_size"] * replicas, params["seed"], shuffle=name == "train",
                                     pad_value=np.nan)
                for name in tables}

        def train_epoch(epoch: int):  # epoch k's order from (seed, k) alone: a resumed run reads the same batches
            return ragged_dataset(*inputs["train"], params["batch_size"] * replicas, params["seed"], shuffle=True,
                                  pad_value=np.nan, epoch=epoch)

        model = build_series_classifier(params, scaler, len(classes))
        summary = classification.fit_classifier(
            model, train_epoch, data["validation"], classification.label_array(tables["train"], classes), classes, params, live_dir,
            checkpoint_dir, "train.series_classification")
    model.save(model_dir / "model.keras")
    labels = tables["validation"]["label"].to_numpy().astype(int)
    validation = series.unpack(tables["validation"]["values"], meta["n_features"])
    rnn = Predictor.of(model, classes, meta["n_features"]).probabilities_of_clean(validation)
    combined, ensemble = classification.ensemble(params, labels, rnn, BASELINE_DIR, BASELINE_FILE, model_dir,
                                                 "train.series_classification")
    decision, rnn_threshold = classification.decide_served(labels, combined, rnn, ensemble is not None, classes, params,
                                                           "train.series_classification")
    summary.update(decision)
    write_card(model_dir, {
        "kind": meta["kind"],
        "classes": classes,
        "threshold": summary["threshold"],
        "rnn_threshold": rnn_threshold,
        "ensemble": ensemble,
        "n_features": meta["n_features"],
        "feature_names": meta.get("feature_names"),
        "clean": meta["clean"],
        "params": params,
    })
    return {**device, "replicas": replicas, **summary,
            "padding_fraction": round(padding_fraction(data["train"], lambda batch: np.isnan(batch).any(axis=-1)), 4)}
