"""Language model, validate: the documents Great Expectations checks and the EDA figures."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

SUITE = "language_model"


def checked_table(frame: pd.DataFrame, metadata: dict[str, Any]) -> pd.DataFrame:
    """The documents plus their whitespace word count (the corpus-size check sums it)."""
    return frame.assign(n_words=frame["text"].astype("string").fillna("").str.split().str.len().astype("int64"))


def write_eda(frame: pd.DataFrame, metadata: dict[str, Any], folder: Path) -> list[Path]:
    from tasks.checks.eda import write_corpus_plots

    return write_corpus_plots(frame, folder)
