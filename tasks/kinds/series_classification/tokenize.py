"""Series classification, tokenize: the per-feature scaling statistics."""
from __future__ import annotations

from typing import Any

import pandas as pd

from tasks.inputs import series
from tasks.kinds.series_classification import META_FILE, SCALER_FILE


def featurize(splits: dict[str, pd.DataFrame], clean_meta: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Per-feature scaling statistics of the train split (a versioned artifact the model embeds)."""
    train = series.unpack(splits["train"]["values"], clean_meta["n_features"])
    scaler = series.fit_scaler(train)
    meta = {
        **{key: clean_meta[key] for key in ("kind", "classes", "clean", "dataset", "n_features", "feature_names")
           if key in clean_meta},
        "train_rows": len(train),
        "max_steps": int(splits["train"]["n_steps"].max()),
    }
    columns = ["id", "label", "values", "n_steps"]
    return {SCALER_FILE: scaler, META_FILE: meta,
            **{f"{name}.parquet": part[columns].astype({"label": "int16"}) for name, part in splits.items()}}
