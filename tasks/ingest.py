"""Stage 1, ingest: read what the source stage listed into rnnflow's canonical table.

``params.yaml`` ``ingest.dataset`` names a profile (:mod:`tasks.readers.profiles`); the profile's
reader turns the listed files into one table and says which task kind it is for.
``ingest.kind: language_model`` turns any text profile's documents into a corpus instead
(labels dropped). Writes ``data/ingested/reviews.parquet`` (the table; its Parquet schema
metadata carries the kind, the class names and whatever the later stages need to know about
the data) and ``metrics/ingest.json``.
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from tasks import kinds
from tasks.core.artifacts import (
    INGEST_SUMMARY,
    INGESTED,
    SOURCE_MANIFEST,
    read_manifest,
)
from tasks.core.common import (
    PipelineError,
    load_params,
    run_main,
    write_json,
    write_parquet,
)
from tasks.readers import profiles
from tasks.readers.datasets import Ingested
from tasks.readers.tables import read_file, read_source


def ingest(params: dict[str, Any], entries: list[dict[str, Any]] | None = None) -> tuple[pd.DataFrame, dict[str, Any], dict[str, Any]]:
    """Read the source into the canonical table; return the table, its metadata and a summary.

    ``entries`` are the source stage's manifest entries; without them the source is resolved here.
    """
    profile = profiles.get(params["dataset"])
    if entries is None:
        files = read_source(str(params["source"]), profile)
    else:
        files = [read_file(entry) for entry in entries]
    ingested: Ingested = profile.reader_function()(files, params)
    frame, metadata = ingested.frame, {"dataset": params["dataset"], "kind": profile.kind, **ingested.metadata}
    requested = params.get("kind") or "auto"
    if requested not in ("auto", profile.kind):
        frame, metadata = kinds.part(requested, "ingest").adopt(frame, metadata)
    summary = {
        "dataset": params["dataset"],
        "kind": metadata["kind"],
        "source": str(params["source"]),
        "files": len(files),
        "rows_read": ingested.rows_read,
        "rows": len(frame),
        **kinds.part(metadata["kind"], "ingest").ingest_summary(frame, metadata),
    }
    return frame, metadata, summary


def main() -> None:
    """Run the ingest stage with ``params.yaml`` ``ingest`` over the source stage's manifest."""
    params = load_params("ingest")
    listed = read_manifest()
    if listed.get("source") != str(params["source"]) or listed.get("dataset") != params["dataset"]:
        raise PipelineError(f"{SOURCE_MANIFEST} lists {listed.get('dataset')}:{listed.get('source')}, params.yaml says "
                            f"{params['dataset']}:{params['source']}; run the source stage first (dvc repro)")
    frame, metadata, summary = ingest(params, listed["files"])
    write_parquet(frame, INGESTED, metadata=metadata)
    write_json(INGEST_SUMMARY, summary)
    print(f"ingest: {summary['rows']} rows ({summary['kind']}) from {summary['source']} -> {INGESTED}")


if __name__ == "__main__":
    run_main(main)
