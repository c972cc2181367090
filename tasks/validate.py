"""Stage 2, validate: check the ingested table with Great Expectations (GX Core 1.x).

Each task kind has its expectation suite in the repository as a GX ExpectationSuite
serialisation, ``tasks/checks/expectations/<kind>.json``; its thresholds are GX suite parameters
(``{"$PARAMETER": "min_chars"}``) filled from ``params.yaml`` ``validate`` (plus
``label_values``, the class indices, from the ingested table's metadata). GX checks the
kind's view of the data (the kind's ``validate`` part, ``checked_table``: the table itself
for text, one summary row per series for numeric sequences). Each expectation's
``meta.scope`` says what a failure means:

- ``schema``: a required column is missing; the pipeline stops.
- ``row``: the rows GX reports as unexpected (``unexpected_index_list``) are moved to
  the quarantine with the expectation's ``meta.reason``; the pipeline goes on.
- ``table``: checked on the accepted rows (row count, corpus size); a failure stops the
  pipeline.
- ``classes``: checked on a table of the accepted rows per class (``class``, ``count``,
  ``share``): class counts and balance; a failure stops the pipeline naming the classes.

A stop raises :class:`tasks.core.common.PipelineError` before anything is written. Otherwise
the stage writes ``data/validated/reviews.parquet`` (accepted rows),
``data/validated/quarantine.parquet`` (rejected rows plus ``reason``),
``reports/validation/summary.json``, GX Data Docs under ``reports/data_docs/`` and the
EDA plots under ``reports/eda/``, each atomically.

Drift: the accepted rows are also compared with a small profile of the last accepted data,
``reports/validation/reference_profile.json``: class balance (positive-rate difference),
length (population stability index over the reference's length deciles), vocabulary
(the share of this data's top-N lowercase words that are among the reference's top-N) and
categorical metadata (the share of rows with a value the reference never had), against the
thresholds in ``params.yaml`` ``validate.drift``. A ``warn`` is printed and recorded in the
summary's ``drift`` section; a ``fail`` stops the stage like a table-level failure (nothing
written). Data with other columns than the reference (another source) is not compared. On
success the profile of this run's accepted rows becomes the next reference. The profile is
a persistent DVC output (DVC does not delete it before the stage runs), so it survives
between runs; delete it to accept a deliberate change of data.

Where the parts live: the suites and running them in :mod:`tasks.checks.suite`, the drift
profile and comparison in :mod:`tasks.checks.drift`, the GX context and Data Docs in
:mod:`tasks.checks.datadocs`, the EDA plots in :mod:`tasks.checks.eda` (through the kind's
``write_eda``), every path in :mod:`tasks.core.artifacts`. This module reads the inputs,
calls the checks and writes the outputs.
"""
from __future__ import annotations

import contextlib
import sys
import time
from typing import Any

import pandas as pd

from tasks import kinds
from tasks.checks.datadocs import build_data_docs
from tasks.checks.drift import compare_with_reference, data_profile, drift_lines, drift_params, read_reference
from tasks.checks.suite import SUITE_DIR, Validation, load_suite, resolve_rating_range, validate_frame
from tasks.core.artifacts import (
    DATA_DOCS,
    EDA_DIR,
    INGESTED,
    QUARANTINE,
    REFERENCE_PROFILE,
    VALIDATED,
    VALIDATION_SUMMARY,
)
from tasks.core.common import (
    PipelineError,
    atomic_path,
    load_params,
    read_parquet,
    read_table_metadata,
    run_main,
    write_json,
    write_parquet,
)


def write_outputs(validation: Validation, kind, metadata: dict[str, Any], profile: dict[str, Any] | None = None) -> None:
    """Write every output; the directories move into place only once all of them are complete.

    ``validation`` holds the rows of the ingested table (not of the kind's checked view);
    the accepted table keeps the ingested table's metadata. ``profile`` (the drift reference
    for the next run) is written last, after the summary.
    """
    with contextlib.ExitStack() as stack:
        docs_tmp = stack.enter_context(atomic_path(DATA_DOCS, kind="dir"))
        build_data_docs(validation.context, docs_tmp)
        eda_tmp = stack.enter_context(atomic_path(EDA_DIR, kind="dir"))
        kind.write_eda(validation.accepted, metadata, eda_tmp)
        write_parquet(validation.accepted, VALIDATED, metadata=metadata)
        write_parquet(validation.quarantine, QUARANTINE)
        write_json(VALIDATION_SUMMARY, validation.summary)
        if profile is not None:
            write_json(REFERENCE_PROFILE, profile)


def main() -> None:
    """Run the validate stage with ``params.yaml`` ``validate``."""
    params = load_params("validate")
    settings = drift_params(params)
    frame = read_parquet(INGESTED, "the ingest stage (python -m tasks.ingest)")
    metadata = read_table_metadata(INGESTED)
    kind = kinds.part(kinds.kind_of(metadata), "validate")
    suite = load_suite(SUITE_DIR / f"{kind.SUITE}.json")
    checked = kind.checked_table(frame, metadata).reset_index(drop=True)
    ratings = pd.to_numeric(checked["rating"], errors="coerce").astype(float) if "rating" in checked else None
    if ratings is not None:  # a table's ratings may be integers, text or missing: numbers or NaN (quarantined)
        checked["rating"] = ratings
    params = resolve_rating_range(params, metadata.get("rating_scale"), ratings)
    classes = metadata.get("classes")
    started = time.perf_counter()
    validation = validate_frame(checked, params, suite, classes)
    drift = compare_with_reference(validation.accepted, read_reference(REFERENCE_PROFILE), settings, classes)
    validation.summary["drift"] = drift
    failures = drift_lines(drift, "fail")
    if failures:
        raise PipelineError(
            f"validate: the accepted rows drifted from the last accepted data ({REFERENCE_PROFILE}): "
            + "; ".join(failures)
            + f". Nothing was written. If this change is intended, delete {REFERENCE_PROFILE} and run again "
            "(or relax params.yaml validate.drift)."
        )
    for line in drift_lines(drift, "warn"):
        print(f"validate: warning: {line}", file=sys.stderr)
    if drift["status"] == "not compared":
        print(f"validate: warning: drift {drift['note']}", file=sys.stderr)
    profile = data_profile(validation.accepted, settings, classes)
    bad = (validation.reasons != "").to_numpy()
    frame = frame.reset_index(drop=True)
    validation.accepted = frame[~bad].reset_index(drop=True)
    validation.quarantine = frame[bad].assign(reason=validation.reasons[bad].to_numpy()).reset_index(drop=True)
    write_outputs(validation, kind, metadata, profile)
    summary = validation.summary
    reasons = ", ".join(f"{reason}: {count}" for reason, count in summary["quarantine_reasons"].items())
    print(f"validate: {summary['rows_accepted']} of {summary['rows_in']} rows accepted -> {VALIDATED}; "
          f"{summary['rows_quarantined']} quarantined{f' ({reasons})' if reasons else ''} -> {QUARANTINE}; "
          f"drift: {drift['status']} [{time.perf_counter() - started:.1f}s]")


if __name__ == "__main__":
    run_main(main)
