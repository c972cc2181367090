"""Stage 2, validate: check the ingested table with Great Expectations (GX Core 1.x).

The expectation suite lives in the repository as a GX ExpectationSuite serialisation,
``tasks/expectations/reviews.json``; its thresholds are GX suite parameters
(``{"$PARAMETER": "min_chars"}``) filled from ``params.yaml`` ``validate``. Each
expectation's ``meta.scope`` says what a failure means:

- ``schema``: a required column is missing; the pipeline stops.
- ``row``: the rows GX reports as unexpected (``unexpected_index_list``) are moved to
  the quarantine with the expectation's ``meta.reason``; the pipeline goes on.
- ``table``: checked on the accepted rows (row count, both classes, class balance);
  a failure stops the pipeline.

A stop raises :class:`tasks.common.PipelineError` before anything is written. Otherwise
the stage writes ``data/validated/reviews.parquet`` (accepted rows),
``data/validated/quarantine.parquet`` (rejected rows plus ``reason``),
``reports/validation/summary.json``, GX Data Docs under ``reports/data_docs/`` and the
EDA plots under ``reports/eda/``, each atomically.
"""
from __future__ import annotations

import contextlib
import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.common import PipelineError, atomic_path, load_params, read_parquet, run_main, write_json, write_parquet

INPUT = Path("data/ingested/reviews.parquet")
# Found beside this module, so the stage also runs from a scratch directory (tests).
SUITE_FILE = Path(__file__).resolve().parent / "expectations" / "reviews.json"
ACCEPTED = Path("data/validated/reviews.parquet")
QUARANTINE = Path("data/validated/quarantine.parquet")
SUMMARY = Path("reports/validation/summary.json")
DATA_DOCS = Path("reports/data_docs")
EDA_DIR = Path("reports/eda")

SCOPES = ("schema", "row", "table")
PARAMETERS = ("min_chars", "max_chars", "min_class_fraction", "min_rows", "rating_min", "rating_max")
# COMPLETE gives every failing row's index; the partial lists shown in Data Docs stay short.
ROW_RESULT_FORMAT = {"result_format": "COMPLETE", "partial_unexpected_count": 20}
DATA_DOCS_SITE = "rnnflow"


# --------------------------------------------------------------------------- suite and parameters


def load_suite(path: str | Path = SUITE_FILE) -> dict[str, Any]:
    """Read the suite JSON and check the parts this stage relies on (scope, reason)."""
    path = Path(path)
    try:
        spec = json.loads(path.read_text())
    except FileNotFoundError as error:
        raise PipelineError(f"{path}: expectation suite not found") from error
    except json.JSONDecodeError as error:
        raise PipelineError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(spec, dict) or not spec.get("name") or not isinstance(spec.get("expectations"), list):
        raise PipelineError(f"{path}: expected an ExpectationSuite object with 'name' and 'expectations'")
    for number, expectation in enumerate(spec["expectations"], 1):
        where = f"{path}: expectation {number} ({expectation.get('type', '?')})"
        if not isinstance(expectation.get("type"), str) or not isinstance(expectation.get("kwargs"), dict):
            raise PipelineError(f"{where}: needs 'type' and 'kwargs'")
        meta = expectation.get("meta") or {}
        if meta.get("scope") not in SCOPES:
            raise PipelineError(f"{where}: meta.scope must be one of {SCOPES}")
        if meta["scope"] == "row" and not meta.get("reason"):
            raise PipelineError(f"{where}: row-scope expectations need meta.reason")
    return spec


def suite_parameters(params: dict[str, Any]) -> dict[str, Any]:
    """The GX suite parameter values from ``params.yaml`` ``validate``, checked."""
    missing = [name for name in PARAMETERS if params.get(name) is None]
    if missing:
        raise PipelineError(f"params.yaml: validate is missing {', '.join(missing)}")
    values = {}
    for name in PARAMETERS:
        value = params[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PipelineError(f"params.yaml: validate.{name} must be a number, got {value!r}")
        values[name] = value
    if not 0 <= values["min_chars"] <= values["max_chars"]:
        raise PipelineError("params.yaml: validate needs 0 <= min_chars <= max_chars")
    if values["rating_min"] > values["rating_max"]:
        raise PipelineError("params.yaml: validate needs rating_min <= rating_max")
    if not 0 <= values["min_class_fraction"] <= 0.5:
        raise PipelineError("params.yaml: validate.min_class_fraction must be between 0 and 0.5")
    if values["min_rows"] < 0:
        raise PipelineError("params.yaml: validate.min_rows must be >= 0")
    return values


# --------------------------------------------------------------------------- GX plumbing


def gx_context():
    """An in-memory GX context: no gx/ folder, no analytics, no progress bars."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    return gx.get_context(project_config=config, mode="ephemeral")


def _exception_message(result) -> str | None:
    """GX's exception text for a result that raised, else None.

    ``exception_info`` is either ``{"raised_exception": ...}`` or, when a metric failed,
    a dict of such dicts keyed by metric id.
    """
    info = result.exception_info or {}
    candidates = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    for candidate in candidates:
        if candidate.get("raised_exception"):
            return str(candidate.get("exception_message") or "unknown error").splitlines()[0]
    return None


@dataclass
class _Run:
    """One GX validation run: the specs it ran and GX's results, in suite order."""

    scope: str
    specs: list[dict[str, Any]]
    results: list[Any]


def _run_scope(context, batch_definition, suite_name: str, scope: str, specs: list[dict[str, Any]],
               frame: pd.DataFrame, parameters: dict[str, Any], result_format: Any) -> _Run:
    """Validate ``frame`` against ``specs`` as one stored GX suite and validation definition."""
    import great_expectations as gx
    from great_expectations.exceptions import GreatExpectationsError

    configs = [{key: spec[key] for key in ("type", "kwargs", "meta", "notes") if key in spec} for spec in specs]
    suite = gx.ExpectationSuite(name=f"{suite_name}.{scope}", expectations=configs)
    if len(suite.expectations) != len(configs):  # GX logs and drops invalid configurations
        raise PipelineError(f"{SUITE_FILE}: GX rejected {len(configs) - len(suite.expectations)} "
                            f"'{scope}' expectation(s) as invalid (see the log above)")
    suite = context.suites.add(suite)
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{suite_name}.{scope}", data=batch_definition, suite=suite)
    )
    try:
        outcome = definition.run(batch_parameters={"dataframe": frame}, expectation_parameters=parameters,
                                 result_format=result_format)
    except GreatExpectationsError as error:
        raise PipelineError(f"validate: GX could not run the '{scope}' expectations: {error}") from error
    # GX reorders results (errored ones first): put them back in suite order by expectation id.
    by_id = {result.expectation_config.id: result for result in outcome.results}
    results = [by_id[expectation.id] for expectation in suite.expectations]
    for spec, result in zip(specs, results):
        message = _exception_message(result)
        if message:
            raise PipelineError(f"validate: {spec['type']}{_for(spec)} raised an error in GX: {message}")
    return _Run(scope, specs, results)


def _for(spec: dict[str, Any]) -> str:
    column = spec["kwargs"].get("column")
    return f" for column '{column}'" if column else " for the table"


# --------------------------------------------------------------------------- decisions


def _display(value: Any) -> str:
    """A cell value as a reason shows it: 7.0 -> 7."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "item"):
        return _display(value.item())
    return str(value)


def row_reasons(frame: pd.DataFrame, run: _Run, parameters: dict[str, Any]) -> pd.Series:
    """Each row's quarantine reasons from GX's unexpected indices ('' for an accepted row).

    One reason per column (the first failing check in suite order, so an empty text is
    "text is empty", not also "too short"), joined with '; '. For ``meta.keep: first``
    (duplicate ids) the first flagged row per value that passes every other check stays.
    """
    reasons: list[list[str]] = [[] for _ in range(len(frame))]
    failed_columns: list[set[str]] = [set() for _ in range(len(frame))]
    keep_first: list[tuple[dict[str, Any], list[int]]] = []
    for spec, result in zip(run.specs, run.results):
        indices = [int(index) for index in result.result.get("unexpected_index_list") or []]
        if spec["meta"].get("keep") == "first":
            keep_first.append((spec, indices))
            continue
        column = spec["kwargs"].get("column", "")
        for index in indices:
            if column in failed_columns[index]:
                continue
            failed_columns[index].add(column)
            value = _display(frame.at[index, column]) if column in frame else ""
            reasons[index].append(spec["meta"]["reason"].format(value=value, **parameters))
    for spec, indices in keep_first:
        if not indices:
            continue
        column = spec["kwargs"]["column"]
        flagged = pd.DataFrame({"value": frame[column].iloc[indices].to_numpy(),
                                "dirty": [bool(reasons[index]) for index in indices]}, index=indices)
        # Per value: the first clean row stays; with no clean row, the first row (already quarantined).
        kept = set(flagged.sort_values("dirty", kind="stable").drop_duplicates("value").index)
        for index in indices:
            if index not in kept:
                reasons[index].append(spec["meta"]["reason"].format(value=_display(frame.at[index, column]),
                                                                    **parameters))
    return pd.Series(["; ".join(row) for row in reasons], index=frame.index, dtype="string")


def _table_failure(spec: dict[str, Any], result) -> str:
    """One line for a failed table-level expectation: what GX observed against what was expected."""
    observed = result.result.get("observed_value")
    if observed is None:  # e.g. distinct_values_to_contain_set reports missing_count / partial_missing_list
        details = {key: value for key, value in result.result.items() if value is not None}
        observed_text = ", ".join(f"{key}={_display(value)}" for key, value in details.items()) or "nothing"
    else:
        observed_text = _display(observed)
    kwargs = {key: value for key, value in result.expectation_config.kwargs.items()
              if key not in ("column", "batch_id") and value is not None}
    expected = ", ".join(f"{key}={_display(value)}" for key, value in kwargs.items())
    why = spec["meta"].get("description")
    return (f"{spec['type']} failed{_for(spec)}: observed {observed_text}"
            + (f", expected {expected}" if expected else "")
            + (f" ({why})" if why else ""))


def _expectation_rows(run: _Run) -> list[dict[str, Any]]:
    rows = []
    for spec, result in zip(run.specs, run.results):
        row = {
            "expectation": spec["type"],
            "column": spec["kwargs"].get("column"),
            "scope": run.scope,
            "success": bool(result.success),
            "unexpected_count": result.result.get("unexpected_count"),
        }
        if "observed_value" in result.result:
            observed = result.result["observed_value"]
            row["observed_value"] = observed.item() if hasattr(observed, "item") else observed
        rows.append(row)
    return rows


@dataclass
class Validation:
    """The outcome of :func:`validate_frame`: the split table, the summary and the GX context."""

    accepted: pd.DataFrame
    quarantine: pd.DataFrame
    summary: dict[str, Any]
    context: Any = field(repr=False)


def validate_frame(frame: pd.DataFrame, params: dict[str, Any], suite: dict[str, Any] | None = None) -> Validation:
    """Validate the canonical table; split it into accepted and quarantined rows.

    ``params`` is ``params.yaml`` ``validate``; ``suite`` the parsed suite JSON (default:
    :data:`SUITE_FILE`). Raises :class:`PipelineError` on a schema or table-level failure.
    Writes nothing: the GX context in the result holds the validation results for
    :func:`build_data_docs`.
    """
    suite = suite if suite is not None else load_suite()
    parameters = suite_parameters(params)
    frame = frame.reset_index(drop=True)
    specs = {scope: [e for e in suite["expectations"] if e["meta"]["scope"] == scope] for scope in SCOPES}

    context = gx_context()
    source = context.data_sources.add_pandas("rnnflow")
    ingested = source.add_dataframe_asset("ingested").add_batch_definition_whole_dataframe("whole table")
    accepted_batch = source.add_dataframe_asset("accepted").add_batch_definition_whole_dataframe("whole table")
    runs: list[_Run] = []

    runs.append(_run_scope(context, ingested, suite["name"], "schema", specs["schema"], frame, parameters, "SUMMARY"))
    failures = [f"{spec['type']} failed{_for(spec)} (columns found: {', '.join(map(str, frame.columns))})"
                for spec, result in zip(runs[0].specs, runs[0].results) if not result.success]
    if failures:
        raise PipelineError("validate: " + "; ".join(failures))

    present = [spec for spec in specs["row"]
               if not (spec["meta"].get("optional_column") and spec["kwargs"].get("column") not in frame)]
    row_run = _run_scope(context, ingested, suite["name"], "row", present, frame, parameters, ROW_RESULT_FORMAT)
    runs.append(row_run)
    reasons = row_reasons(frame, row_run, parameters)
    bad = (reasons != "").to_numpy()
    accepted = frame[~bad].reset_index(drop=True)
    quarantine = frame[bad].assign(reason=reasons[bad]).reset_index(drop=True)

    present = [spec for spec in specs["table"]
               if not (spec["meta"].get("optional_column") and spec["kwargs"].get("column") not in frame)]
    table_run = _run_scope(context, accepted_batch, suite["name"], "table", present, accepted, parameters, "SUMMARY")
    runs.append(table_run)
    failures = [_table_failure(spec, result) for spec, result in zip(table_run.specs, table_run.results)
                if not result.success]
    if failures:
        raise PipelineError(f"validate: {len(accepted)} of {len(frame)} rows accepted; " + "; ".join(failures))

    reason_counts = Counter(reason for joined in quarantine["reason"] for reason in str(joined).split("; "))
    summary = {
        "success": all(bool(result.success) for run in runs for result in run.results),
        "expectations": [row for run in runs for row in _expectation_rows(run)],
        "rows_in": len(frame),
        "rows_accepted": len(accepted),
        "rows_quarantined": len(quarantine),
        "quarantine_reasons": dict(sorted(reason_counts.items(), key=lambda item: (-item[1], item[0]))),
        "parameters": parameters,
        "suite": suite["name"],
        "data_docs": str(DATA_DOCS / "index.html"),
    }
    return Validation(accepted, quarantine, summary, context)


# --------------------------------------------------------------------------- outputs


def build_data_docs(context, out_dir: str | Path) -> Path:
    """Render the context's suites and validation results as GX Data Docs into ``out_dir``."""
    out_dir = Path(out_dir).resolve()
    context.add_data_docs_site(
        DATA_DOCS_SITE,
        {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(out_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    context.build_data_docs(site_names=[DATA_DOCS_SITE])
    index = out_dir / "index.html"
    if not index.exists():
        raise PipelineError(f"validate: GX Data Docs did not produce {index}")
    return index


def write_outputs(validation: Validation) -> None:
    """Write every output; the directories move into place only once all of them are complete."""
    from tasks.eda import write_eda_plots

    with contextlib.ExitStack() as stack:
        docs_tmp = stack.enter_context(atomic_path(DATA_DOCS))
        build_data_docs(validation.context, docs_tmp)
        eda_tmp = stack.enter_context(atomic_path(EDA_DIR))
        write_eda_plots(validation.accepted, eda_tmp)
        write_parquet(validation.accepted, ACCEPTED)
        write_parquet(validation.quarantine, QUARANTINE)
        write_json(SUMMARY, validation.summary)


def main() -> None:
    """Run the validate stage with ``params.yaml`` ``validate``."""
    params = load_params("validate")
    suite = load_suite()
    frame = read_parquet(INPUT, "the ingest stage (python -m tasks.ingest)")
    started = time.perf_counter()
    validation = validate_frame(frame, params, suite)
    write_outputs(validation)
    summary = validation.summary
    reasons = ", ".join(f"{reason}: {count}" for reason, count in summary["quarantine_reasons"].items())
    print(f"validate: {summary['rows_accepted']} of {summary['rows_in']} rows accepted -> {ACCEPTED}; "
          f"{summary['rows_quarantined']} quarantined{f' ({reasons})' if reasons else ''} -> {QUARANTINE} "
          f"[{time.perf_counter() - started:.1f}s]")


if __name__ == "__main__":
    run_main(main)
