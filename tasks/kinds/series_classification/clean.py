"""Series classification, clean: missing values, length rules, per-series normalisation, the split."""
from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

import numpy as np
import pandas as pd

from tasks.core.splits import Cleaned, require_classes, split_frame
from tasks.inputs import series


def clean(frame: pd.DataFrame, metadata: dict[str, Any], params: dict[str, Any]) -> Cleaned:
    """Missing values by policy, length rules, then the split: stratified by class unless the
    source has its own (its test series stay test; validation comes from its train series).
    ``normalise: auto`` is resolved on the train split (:func:`series.choose_normalisation`);
    what inference repeats (``meta["clean"]``) holds the resolved choice."""
    options = series.SeriesOptions.from_params(params)
    as_given = replace(options, normalise="none") if options.normalise == "auto" else options
    prepared = [series.prepare(item, as_given) for item in series.unpack(frame["values"], metadata["n_features"])]
    kept = np.asarray([item is not None for item in prepared])
    cleaned = frame[kept].reset_index(drop=True)
    cleaned["values"], cleaned["n_steps"] = series.pack([item for item in prepared if item is not None])
    splits = split_frame(cleaned, params, stratify=params.get("stratify", True))
    require_classes(splits)
    normalisation = {"chosen": options.normalise, "why": "set in params.yaml"}
    if options.normalise == "auto":
        train = series.unpack(splits["train"]["values"], metadata["n_features"])
        normalisation = series.choose_normalisation(train, splits["train"]["label"].to_numpy(), params["seed"])
        options = replace(options, normalise=normalisation["chosen"])
        if options.normalise == "series":
            for part in splits.values():
                part["values"], _ = series.pack([series.z_normalise(item) for item in
                                                 series.unpack(part["values"], metadata["n_features"])])
    classes = metadata["classes"]
    summary = {
        "rows_in": len(frame),
        "dropped_for_missing_values": int((~kept).sum()),
        "rows": {name: len(part) for name, part in splits.items()},
        "class_counts": {name: {classes[int(label)]: int(count) for label, count in part["label"].value_counts().sort_index().items()}
                         for name, part in splits.items()},
        "steps": {"min": int(cleaned["n_steps"].min()), "max": int(cleaned["n_steps"].max())},
        "normalise": normalisation,
    }
    return Cleaned(splits, summary, {"clean": asdict(options)})
