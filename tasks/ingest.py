"""Stage 1, ingest: read what the source stage listed into rnnflow's canonical table.

``params.yaml`` ``ingest.dataset`` names a profile (:mod:`tasks.readers.profiles`); the profile's
reader turns the listed files into one table and says which task kind it is for.
``ingest.kind: language_model`` turns any text profile's documents into a corpus instead
(labels dropped). ``ingest.test_source`` (a user's own test set, read with the same profile in
the same reader call) marks its rows ``split: test`` and the main source's ``split: train``:
the clean stage keeps them apart, so no fitted vocabulary, model or threshold sees a test row.
Writes ``data/ingested/reviews.parquet`` (the table; its Parquet schema metadata carries the kind, the class names and whatever the later stages need to know about
the data) and ``metrics/ingest.json``.
"""
from __future__ import annotations

from dataclasses import replace
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
from tasks.readers import profiles, sources
from tasks.readers.datasets import Ingested
from tasks.readers.tables import read_file, read_source


def ingest(params: dict[str, Any], entries: list[dict[str, Any]] | None = None,
           test_entries: list[dict[str, Any]] | None = None) -> tuple[pd.DataFrame, dict[str, Any], dict[str, Any]]:
    """Read the source into the canonical table; return the table, its metadata and a summary.

    ``entries`` (and ``test_entries``, for ``ingest.test_source``) are the source stage's manifest
    entries; without them the sources are resolved here.
    """
    profile = profiles.get(params["dataset"])
    test_source = params.get("test_source")
    if entries is None:
        files = read_source(str(params["source"]), profile)
        if test_source is not None:
            matched = [file.source for file in files]
            test_entries = [{"url": item} if sources.is_url(item) else {"path": item}
                            for item in sources.test_files(params, profile, matched)]
    else:
        files = [read_file(entry) for entry in entries]
    if test_source is not None:
        # One reader call over both (class names are found across all files), each file marked.
        files = [replace(file, split="train") for file in files] + [replace(read_file(entry), split="test")
                                                                    for entry in test_entries or []]
    ingested: Ingested = profile.reader_function()(files, params)
    if test_source is not None and "split" not in ingested.frame:
        raise PipelineError(f"params.yaml: ingest.test_source: the {params['dataset']} profile cannot keep a test source "
                            "apart; leave ingest.test_source null")
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
        **({"test_source": str(test_source), "test_files": len(test_entries or []),
            "test_source_rows": int((frame["split"] == "test").sum())} if test_source is not None else {}),
        **kinds.part(metadata["kind"], "ingest").ingest_summary(frame, metadata),
    }
    return frame, metadata, summary


def main() -> None:
    """Run the ingest stage with ``params.yaml`` ``ingest`` over the source stage's manifest."""
    params = load_params("ingest")
    listed = read_manifest()
    test_source = None if params.get("test_source") is None else str(params["test_source"])
    if (listed.get("source") != str(params["source"]) or listed.get("dataset") != params["dataset"]
            or listed.get("test_source") != test_source):
        raise PipelineError(f"{SOURCE_MANIFEST} lists {listed.get('dataset')}:{listed.get('source')} "
                            f"(test_source {listed.get('test_source')}), params.yaml says {params['dataset']}:{params['source']} "
                            f"(test_source {test_source}); run the source stage first (dvc repro)")
    frame, metadata, summary = ingest(params, listed["files"], listed.get("test_files"))
    write_parquet(frame, INGESTED, metadata=metadata)
    write_json(INGEST_SUMMARY, summary)
    print(f"ingest: {summary['rows']} rows ({summary['kind']}) from {summary['source']} -> {INGESTED}")


if __name__ == "__main__":
    run_main(main)
