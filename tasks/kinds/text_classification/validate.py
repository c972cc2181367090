"""Text classification, validate: what Great Expectations checks and the EDA figures."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

SUITE = "text_classification"


def checked_table(frame: pd.DataFrame, metadata: dict[str, Any]) -> pd.DataFrame:
    return frame


def write_eda(frame: pd.DataFrame, metadata: dict[str, Any], folder: Path) -> list[Path]:
    from tasks.checks.eda import write_eda_plots

    return write_eda_plots(frame, folder, metadata["classes"])
