"""Text classification, ingest: the kind's view of an ingested table."""
from __future__ import annotations

from typing import Any

import pandas as pd

from tasks.core.common import PipelineError
from tasks.targets.labels import labelled_summary


def adopt(frame: pd.DataFrame, metadata: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
    raise PipelineError(f"ingest.kind text_classification: the {metadata.get('dataset')} profile's data "
                        f"({metadata.get('kind')}) has no text classes to learn")


def ingest_summary(frame: pd.DataFrame, metadata: dict[str, Any]) -> dict[str, Any]:
    return labelled_summary(frame, metadata, rows_without_text=int(frame["text"].isna().sum()),
                            rating_scale=metadata.get("rating_scale"))
