"""The expectation suites and running them with Great Expectations (GX Core 1.x).

Contract: :func:`load_suite` reads a kind's suite, ``expectations/<kind>.json`` beside this
module, and checks that every expectation has a ``meta.scope`` (one of :data:`SCOPES`) and,
for ``row`` scope, a ``meta.reason``. :func:`suite_parameters` fills the suite's
``{"$PARAMETER": ...}`` values from ``params.yaml`` ``validate`` (and :data:`DATA_PARAMETERS`
from the data), checked. :func:`validate_frame` runs the suite on a table, one GX validation
per scope (``schema`` and ``table``/``classes`` failures raise
:class:`tasks.core.common.PipelineError`; ``row`` failures become per-row quarantine reasons,
:func:`row_reasons`) and returns a :class:`Validation`: accepted and quarantined rows, the
summary and the GX context that holds the results (for :mod:`tasks.checks.datadocs`). It
writes nothing. GX is imported only when a suite runs.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.checks.datadocs import gx_context
from tasks.core.artifacts import DATA_DOCS
from tasks.core.common import PipelineError

# Found beside this module, so the stage also runs from a scratch directory (tests).
SUITE_DIR = Path(__file__).resolve().parent / "expectations"
SUITE_FILE = SUITE_DIR / "text_classification.json"

SCOPES = ("schema", "row", "table", "classes")
PARAMETER_NAME = re.compile(r"[A-Za-z_]\w*")
# Parameters the stage fills in from the data rather than params.yaml.
DATA_PARAMETERS = ("label_values",)
# COMPLETE gives every failing row's index; the partial lists shown in Data Docs stay short.
ROW_RESULT_FORMAT = {"result_format": "COMPLETE", "partial_unexpected_count": 20}


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


def resolve_rating_range(params: dict[str, Any], scale: list[float] | None, ratings: pd.Series | None) -> dict[str, Any]:
    """``rating_min``/``rating_max`` of ``auto`` become the scale the ingest profile declared.

    Without a declared scale (a generic table), ``auto`` accepts any rating seen: only the
    missing and non-numeric ratings are quarantined then.
    """
    resolved = dict(params)
    for position, name in enumerate(("rating_min", "rating_max")):
        if resolved.get(name) == "auto":
            if scale:
                resolved[name] = scale[position]
            elif ratings is not None and ratings.notna().any():
                resolved[name] = ratings.min() if position == 0 else ratings.max()
            else:
                resolved[name] = 0
        if isinstance(resolved.get(name), (int, float, np.number)):
            resolved[name] = float(resolved[name])  # GX compares bounds and the (float) column of one type
    return resolved


def referenced_parameters(suite: dict[str, Any]) -> list[str]:
    """The names the suite's ``{"$PARAMETER": ...}`` values use (``1 - min_class_fraction`` uses one)."""
    names: set[str] = set()

    def visit(value: Any) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("$PARAMETER"), str):
                names.update(PARAMETER_NAME.findall(value["$PARAMETER"]))
            for item in value.values():
                visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)

    visit([expectation["kwargs"] for expectation in suite["expectations"]])
    return sorted(names)


def suite_parameters(params: dict[str, Any], suite: dict[str, Any], data: dict[str, Any] | None = None) -> dict[str, Any]:
    """The values of the suite's parameters: ``data`` (from the ingested table) and ``params.yaml`` ``validate``, checked."""
    data = data or {}
    wanted = [name for name in referenced_parameters(suite) if name not in DATA_PARAMETERS]
    missing = [name for name in wanted if params.get(name) is None]
    if missing:
        raise PipelineError(f"params.yaml: validate is missing {', '.join(missing)}")
    values = {name: data[name] for name in referenced_parameters(suite) if name in DATA_PARAMETERS and name in data}
    for name in wanted:
        value = params[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PipelineError(f"params.yaml: validate.{name} must be a number, got {value!r}")
        values[name] = value
    for low, high in (("min_chars", "max_chars"), ("rating_min", "rating_max"), ("min_steps", "max_steps")):
        if low in values and high in values and values[low] > values[high]:
            raise PipelineError(f"params.yaml: validate needs {low} <= {high}")
    for name, low, high in (("min_class_fraction", 0, 0.5), ("max_missing_share", 0, 1)):
        if name in values and not low <= values[name] <= high:
            raise PipelineError(f"params.yaml: validate.{name} must be between {low} and {high}")
    negative = [name for name in values if name not in DATA_PARAMETERS and name.startswith("min_") and values[name] < 0]
    if negative:
        raise PipelineError(f"params.yaml: validate.{negative[0]} must be >= 0")
    return values


def class_table(frame: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    """Accepted rows per class (every class listed, 0 when absent): what ``classes`` checks see."""
    counts = frame["label"].value_counts()
    count = [int(counts.get(index, 0)) for index in range(len(classes))]
    total = max(sum(count), 1)
    return pd.DataFrame({"class": classes, "count": count, "share": [value / total for value in count]})


# --------------------------------------------------------------------------- running GX


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
        raise PipelineError(f"{SUITE_DIR / (suite_name + '.json')}: GX rejected {len(configs) - len(suite.expectations)} "
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
    shown = {name: _display(value) for name, value in parameters.items()}  # bounds as a reader writes them: 1, not 1.0
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
            reasons[index].append(spec["meta"]["reason"].format(value=value, **shown))
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
                reasons[index].append(spec["meta"]["reason"].format(value=_display(frame.at[index, column]), **shown))
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


def _class_failure(spec: dict[str, Any], result, counts: pd.DataFrame, parameters: dict[str, Any]) -> str:
    """A failed class-level check with the classes that broke it (count and share each)."""
    line = _table_failure(spec, result)
    column = spec["kwargs"].get("column")
    low = result.expectation_config.kwargs.get("min_value")
    high = result.expectation_config.kwargs.get("max_value")
    if column in counts and (low is not None or high is not None):
        values = counts[column]
        bad = counts[(values < low if low is not None else False) | (values > high if high is not None else False)]
        shown = ", ".join(f"'{row['class']}' {int(row['count'])} rows ({100 * row['share']:.1f}%)" for _, row in bad.head(10).iterrows())
        if shown:
            line += f"; classes: {shown}"
    return line


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
    reasons: pd.Series = field(repr=False, default=None)  # per input row: '' accepted, else why not


def validate_frame(frame: pd.DataFrame, params: dict[str, Any], suite: dict[str, Any] | None = None,
                   classes: list[str] | None = None) -> Validation:
    """Validate a table (the kind's checked view); split it into accepted and quarantined rows.

    ``params`` is ``params.yaml`` ``validate``; ``suite`` the parsed suite JSON (default:
    :data:`SUITE_FILE`); ``classes`` the class names when the rows carry a ``label`` index.
    Raises :class:`PipelineError` on a schema, table or class-level failure. Writes nothing:
    the GX context in the result holds the validation results for
    :func:`tasks.checks.datadocs.build_data_docs`.
    """
    suite = suite if suite is not None else load_suite()
    classes = classes if classes is not None else ["negative", "positive"] if "label" in frame else []
    parameters = suite_parameters(params, suite, {"label_values": list(range(len(classes)))})
    frame = frame.reset_index(drop=True)
    specs = {scope: [e for e in suite["expectations"] if e["meta"]["scope"] == scope] for scope in SCOPES}

    context = gx_context()
    source = context.data_sources.add_pandas("rnnflow")
    ingested = source.add_dataframe_asset("ingested").add_batch_definition_whole_dataframe("whole table")
    accepted_batch = source.add_dataframe_asset("accepted").add_batch_definition_whole_dataframe("whole table")
    classes_batch = source.add_dataframe_asset("classes").add_batch_definition_whole_dataframe("whole table")
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
    if specs["classes"]:
        counts = class_table(accepted, classes)
        class_run = _run_scope(context, classes_batch, suite["name"], "classes", specs["classes"], counts, parameters, "SUMMARY")
        runs.append(class_run)
        failures += [_class_failure(spec, result, counts, parameters)
                     for spec, result in zip(class_run.specs, class_run.results) if not result.success]
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
    return Validation(accepted, quarantine, summary, context, reasons)
