"""Text classification, ingest: the kind's view of an ingested table."""
from __future__ import annotations

from typing import Any

import pandas as pd

from tasks.core.common import PipelineError
from tasks.targets import classification


def adopt(frame: pd.DataFrame, metadata: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
    raise PipelineError(f"ingest.kind text_classification: the {metadata.get('dataset')} profile's data "
                        f"({metadata.get('kind')}) has no text classes to learn")


def ingest_summary(frame: pd.DataFrame, metadata: dict[str, Any]) -> dict[str, Any]:
    classes = metadata["classes"]
    return {
        "rows_without_text": int(frame["text"].isna().sum()),
        "classes": classes,
        "rating_scale": metadata.get("rating_scale"),
        "labels": classification.label_counts(frame, classes),
    }
