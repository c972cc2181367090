"""Series classification, ingest: the kind's view of an ingested table."""
from __future__ import annotations

from typing import Any

import pandas as pd

from tasks.core.common import PipelineError
from tasks.targets.labels import labelled_summary


def adopt(frame: pd.DataFrame, metadata: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
    raise PipelineError(f"ingest.kind series_classification: the {metadata.get('dataset')} profile's data "
                        f"({metadata.get('kind')}) holds no numeric series")


def ingest_summary(frame: pd.DataFrame, metadata: dict[str, Any]) -> dict[str, Any]:
    return labelled_summary(frame, metadata, n_features=metadata["n_features"],
                            steps={"min": int(frame["n_steps"].min()), "max": int(frame["n_steps"].max())},
                            source_split=frame["split"].value_counts().to_dict() if "split" in frame else None)
