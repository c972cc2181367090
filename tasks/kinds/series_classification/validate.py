"""Series classification, validate: one checked row per series and the EDA figures."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from tasks.inputs import series

SUITE = "series_classification"


def checked_table(frame: pd.DataFrame, metadata: dict[str, Any]) -> pd.DataFrame:
    """One summary row per series (what Great Expectations checks): length and missing share."""
    items = series.unpack(frame["values"], metadata["n_features"])
    summary = pd.DataFrame({
        "id": frame["id"],
        "label": frame["label"],
        "n_steps": frame["n_steps"].astype("int64"),
        "missing_share": [series.missing_share(item) for item in items],
    })
    if "split" in frame:
        summary["split"] = frame["split"]
    return summary


def write_eda(frame: pd.DataFrame, metadata: dict[str, Any], folder: Path) -> list[Path]:
    from tasks.checks.eda import write_series_plots

    return write_series_plots(frame, series.unpack(frame["values"], metadata["n_features"]), metadata["classes"], folder)
