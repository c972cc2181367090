"""Language model, ingest: any text table becomes a corpus."""
from __future__ import annotations

from typing import Any

import pandas as pd

from tasks.core.common import PipelineError


def adopt(frame: pd.DataFrame, metadata: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Any text table becomes a corpus: its texts are the documents, labels are dropped."""
    if "text" not in frame:
        raise PipelineError(f"ingest.kind language_model: the {metadata.get('dataset')} profile's data has no text")
    dropped = {"label", "rating"}
    corpus = frame[[column for column in frame.columns if column not in dropped]]
    kept = {key: value for key, value in metadata.items() if key not in ("classes", "rating_scale")}
    return corpus, {**kept, "kind": "language_model"}


def ingest_summary(frame: pd.DataFrame, metadata: dict[str, Any]) -> dict[str, Any]:
    words = frame["text"].astype("string").fillna("").str.split().str.len()
    return {"rows_without_text": int(frame["text"].isna().sum()), "words": int(words.sum()),
            "tokenized": bool(metadata.get("tokenized")), "split_protocol": metadata.get("split")}
