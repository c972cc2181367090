"""Stage 2, validate: check the ingested table with Great Expectations (GX Core 1.x).

Each task kind has its expectation suite in the repository as a GX ExpectationSuite
serialisation, ``tasks/checks/expectations/<kind>.json``; its thresholds are GX suite parameters
(``{"$PARAMETER": "min_chars"}``) filled from ``params.yaml`` ``validate`` (plus
``label_values``, the class indices, from the ingested table's metadata). GX checks the
kind's view of the data (:func:`tasks.kinds.text_classification.checked_table`: the table
itself for text, one summary row per series for numeric sequences). Each expectation's
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
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks import kinds
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

INPUT = Path("data/ingested/reviews.parquet")
# Found beside this module, so the stage also runs from a scratch directory (tests).
SUITE_DIR = Path(__file__).resolve().parent / "checks" / "expectations"
SUITE_FILE = SUITE_DIR / "text_classification.json"
ACCEPTED = Path("data/validated/reviews.parquet")
QUARANTINE = Path("data/validated/quarantine.parquet")
SUMMARY = Path("reports/validation/summary.json")
DATA_DOCS = Path("reports/data_docs")
EDA_DIR = Path("reports/eda")
REFERENCE = Path("reports/validation/reference_profile.json")

SCOPES = ("schema", "row", "table", "classes")
PARAMETER_NAME = re.compile(r"[A-Za-z_]\w*")
# Parameters the stage fills in from the data rather than params.yaml.
DATA_PARAMETERS = ("label_values",)
# COMPLETE gives every failing row's index; the partial lists shown in Data Docs stay short.
ROW_RESULT_FORMAT = {"result_format": "COMPLETE", "partial_unexpected_count": 20}
DATA_DOCS_SITE = "rnnflow"

# Drift thresholds when params.yaml has no validate.drift (or leaves a key out). "warn"/"fail":
# a value beyond them warns or stops; null switches that level off. For vocabulary_overlap_min
# (and only it) lower is worse.
DRIFT_DEFAULTS: dict[str, Any] = {
    "class_share_delta": {"warn": 0.1, "fail": 0.25},
    "length_psi": {"warn": 0.1, "fail": 0.25},
    "vocabulary_overlap_min": {"warn": 0.8, "fail": 0.6},
    "new_category_share": {"warn": 0.01, "fail": 0.2},
    "vocabulary_top_n": 200,
    "categorical_columns": ["department", "class_name", "division"],
}
DRIFT_CHECKS = ("class_share_delta", "length_psi", "vocabulary_overlap_min", "new_category_share")
LOWER_IS_WORSE = {"vocabulary_overlap_min"}
PROFILE_VERSION = 2
LENGTH_BINS = 10
MAX_CATEGORIES = 500  # a column with more distinct values is not treated as categorical
WORD = re.compile(r"\w+")


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
    the GX context in the result holds the validation results for :func:`build_data_docs`.
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


# --------------------------------------------------------------------------- drift


def drift_params(params: dict[str, Any]) -> dict[str, Any]:
    """``params.yaml`` ``validate.drift`` over :data:`DRIFT_DEFAULTS`, checked."""
    given = params.get("drift") or {}
    if not isinstance(given, dict):
        raise PipelineError("params.yaml: validate.drift must be a mapping")
    unknown = sorted(set(given) - set(DRIFT_DEFAULTS))
    if unknown:
        raise PipelineError(f"params.yaml: validate.drift has unknown key(s) {unknown}; known: {sorted(DRIFT_DEFAULTS)}")
    settings: dict[str, Any] = {}
    for key in DRIFT_CHECKS:
        value = given.get(key, DRIFT_DEFAULTS[key])
        if not isinstance(value, dict) or set(value) - {"warn", "fail"}:
            raise PipelineError(f"params.yaml: validate.drift.{key} must be {{warn: NUMBER|null, fail: NUMBER|null}}")
        levels = {**DRIFT_DEFAULTS[key], **value}
        for level, limit in levels.items():
            if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, float))):
                raise PipelineError(f"params.yaml: validate.drift.{key}.{level} must be a number or null, got {limit!r}")
        warn, fail = levels["warn"], levels["fail"]
        if warn is not None and fail is not None and (warn < fail if key in LOWER_IS_WORSE else warn > fail):
            raise PipelineError(f"params.yaml: validate.drift.{key}: warn ({warn}) must come before fail ({fail})")
        settings[key] = levels
    top_n = given.get("vocabulary_top_n", DRIFT_DEFAULTS["vocabulary_top_n"])
    if isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1:
        raise PipelineError(f"params.yaml: validate.drift.vocabulary_top_n must be a positive integer, got {top_n!r}")
    settings["vocabulary_top_n"] = top_n
    columns = given.get("categorical_columns", DRIFT_DEFAULTS["categorical_columns"]) or []
    if not isinstance(columns, list) or not all(isinstance(column, str) for column in columns):
        raise PipelineError("params.yaml: validate.drift.categorical_columns must be a list of column names")
    settings["categorical_columns"] = columns
    return settings


def _word_counts(texts: pd.Series) -> Counter:
    """Lowercase word counts over all texts (regex word characters): the vocabulary comparison's split."""
    counts: Counter = Counter()
    for text in texts.astype("string").fillna(""):
        counts.update(WORD.findall(text.lower()))
    return counts


def _top_words(counts: Counter, n: int) -> list[str]:
    """The ``n`` most frequent words, ties broken alphabetically (deterministic)."""
    return [word for word, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:n]]


def _lengths(frame: pd.DataFrame) -> tuple[pd.Series, str]:
    """Each row's length and its unit: characters of text, or steps of a series summary."""
    if "text" in frame:
        return frame["text"].astype("string").fillna("").str.len().astype("float64"), "characters"
    return frame["n_steps"].astype("float64"), "steps"


def class_shares(frame: pd.DataFrame, classes: list[str]) -> dict[str, float]:
    """Each class's share of the rows, by class name."""
    shares = frame["label"].value_counts(normalize=True)
    return {name: round(float(shares.get(index, 0.0)), 6) for index, name in enumerate(classes)}


def _length_shares(lengths: pd.Series, edges: list[float]) -> list[float]:
    """The share of texts per length bin: below the first edge, between edges, from the last one."""
    import numpy as np

    bins = np.searchsorted(np.asarray(edges, dtype=float), lengths.to_numpy(), side="right")
    counts = np.bincount(bins, minlength=len(edges) + 1)
    return [float(count) / max(len(lengths), 1) for count in counts]


def _categorical(frame: pd.DataFrame, columns: list[str]) -> dict[str, list[str]]:
    """Each present categorical column's distinct values (columns with too many are left out)."""
    categories = {}
    for column in columns:
        if column in frame:
            values = frame[column].dropna().astype(str).unique()
            if len(values) <= MAX_CATEGORIES:
                categories[column] = sorted(values)
    return categories


def data_profile(frame: pd.DataFrame, settings: dict[str, Any], classes: list[str] | None = None) -> dict[str, Any]:
    """The reference profile of accepted rows: small, deterministic JSON (no timestamps).

    Class shares where rows have a ``label``, the vocabulary where they have ``text``.
    """
    import numpy as np

    lengths, unit = _lengths(frame)
    counts = _word_counts(frame["text"]) if "text" in frame else Counter()
    top = _top_words(counts, settings["vocabulary_top_n"])
    total = sum(counts.values())
    edges = sorted({float(edge) for edge in np.quantile(lengths, np.linspace(0, 1, LENGTH_BINS + 1)[1:-1])}) if len(lengths) else []
    return {
        "version": PROFILE_VERSION,
        "rows": len(frame),
        "columns": sorted(map(str, frame.columns)),
        "class_shares": class_shares(frame, classes) if classes and len(frame) else None,
        "length": {
            "unit": unit,
            "median": float(lengths.median()) if len(lengths) else None,
            "p90": float(lengths.quantile(0.9)) if len(lengths) else None,
            "edges": edges,
            "shares": [round(share, 6) for share in _length_shares(lengths, edges)],
        },
        "vocabulary": {
            "top_n": settings["vocabulary_top_n"],
            "share_in_top_n": round(sum(counts[word] for word in top) / total, 6) if total else None,
            "words": top,
        },
        "categories": _categorical(frame, settings["categorical_columns"]),
    }


def read_reference(path: Path = REFERENCE) -> dict[str, Any] | None:
    """The last accepted data's profile, or None before the first successful run."""
    try:
        reference = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise PipelineError(f"{path}: drift reference profile is not valid JSON ({error}); "
                            "delete it to make this run the new reference") from error
    if not isinstance(reference, dict):
        raise PipelineError(f"{path}: drift reference profile is not a JSON object; delete it to start a new one")
    return reference


def population_stability(actual: list[float], expected: list[float], floor: float = 1e-4) -> float:
    """PSI = sum((a - e) * ln(a / e)) over bins; empty bins count as ``floor``."""
    total = 0.0
    for a, e in zip(actual, expected):
        a, e = max(a, floor), max(e, floor)
        total += (a - e) * math.log(a / e)
    return total


def _judge(name: str, value: float | None, limits: dict[str, Any]) -> str:
    if value is None:
        return "ok"
    lower = name in LOWER_IS_WORSE
    for level in ("fail", "warn"):
        limit = limits.get(level)
        if limit is not None and (value < limit if lower else value > limit):
            return level
    return "ok"


def _percent(value: float | None) -> str:
    return "?" if value is None else f"{100 * value:.1f}%"


def compare_with_reference(frame: pd.DataFrame, reference: dict[str, Any] | None,
                           settings: dict[str, Any], classes: list[str] | None = None) -> dict[str, Any]:
    """The summary's ``drift`` section: each check's value, thresholds, status and message."""
    if reference is None:
        return {"status": "no reference yet", "reference": str(REFERENCE),
                "note": "first accepted data: nothing to compare with; this run becomes the reference"}
    base = {"reference": str(REFERENCE), "reference_rows": reference.get("rows"), "rows": len(frame)}
    if reference.get("version") != PROFILE_VERSION:
        return {**base, "status": "not compared",
                "note": f"reference profile version {reference.get('version')!r}, expected {PROFILE_VERSION}; "
                        "this run becomes the reference"}
    columns = sorted(map(str, frame.columns))
    if reference.get("columns") != columns:
        return {**base, "status": "not compared",
                "note": f"the reference has columns {reference.get('columns')}, this data {columns} "
                        "(another source?); this run becomes the reference"}
    if not len(frame):
        return {**base, "status": "not compared", "note": "no accepted rows"}

    checks: dict[str, dict[str, Any]] = {}

    def add(name: str, value: float | None, message: str, **details: Any) -> None:
        limits = settings[name]
        value = None if value is None else round(float(value), 6)
        checks[name] = {"value": value, "warn": limits["warn"], "fail": limits["fail"],
                        "status": _judge(name, value, limits), "message": message, **details}

    reference_shares = reference.get("class_shares")
    if reference_shares and classes:
        shares = class_shares(frame, classes)
        worst = max(set(shares) | set(reference_shares),
                    key=lambda name: (abs(shares.get(name, 0.0) - reference_shares.get(name, 0.0)), name))
        now, before = shares.get(worst, 0.0), reference_shares.get(worst, 0.0)
        add("class_share_delta", abs(now - before),
            f"class '{worst}' is {_percent(now)} of the rows, reference {_percent(before)}",
            class_shares=shares, reference_class_shares=reference_shares)

    length = reference.get("length") or {}
    if length.get("shares"):
        lengths, unit = _lengths(frame)
        psi = population_stability(_length_shares(lengths, length.get("edges") or []), length["shares"])
        median, p90 = float(lengths.median()), float(lengths.quantile(0.9))
        add("length_psi", psi,
            f"length median {median:.0f} {unit} (reference {length.get('median', 0):.0f}), "
            f"p90 {p90:.0f} (reference {length.get('p90', 0):.0f})",
            median=median, reference_median=length.get("median"), p90=p90, reference_p90=length.get("p90"))

    vocabulary = reference.get("vocabulary") or {}
    if vocabulary.get("words") and "text" in frame:
        counts = _word_counts(frame["text"])
        known = set(vocabulary["words"])
        top = _top_words(counts, int(vocabulary.get("top_n") or settings["vocabulary_top_n"]))
        total = sum(counts.values())
        token_share = sum(count for word, count in counts.items() if word in known) / total if total else 0.0
        overlap = len([word for word in top if word in known]) / len(top) if top else 1.0
        unseen = [word for word in top if word not in known][:10]
        add("vocabulary_overlap_min", overlap,
            f"{_percent(overlap)} of this data's top {len(top)} words are among the reference's top "
            f"{len(known)}" + (f" (not: {', '.join(unseen)})" if unseen else ""),
            token_share=round(token_share, 6), reference_token_share=vocabulary.get("share_in_top_n"),
            unseen_top_words=unseen)

    shares = {}
    for column, values in (reference.get("categories") or {}).items():
        if column in frame:
            present = frame[column].dropna().astype(str)
            new = present[~present.isin(set(values))]
            if len(present):
                shares[column] = {"share": round(len(new) / len(present), 6),
                                  "new_values": dict(new.value_counts().head(10).astype(int).items())}
    if shares:
        worst = max(shares, key=lambda column: shares[column]["share"])
        new_values = ", ".join(shares[worst]["new_values"]) or "none"
        add("new_category_share", shares[worst]["share"],
            f"{_percent(shares[worst]['share'])} of '{worst}' values are new (e.g. {new_values})",
            columns=shares)

    statuses = {check["status"] for check in checks.values()}
    status = "fail" if "fail" in statuses else "warn" if "warn" in statuses else "ok"
    return {**base, "status": status, "checks": checks}


def drift_lines(drift: dict[str, Any], level: str) -> list[str]:
    """One line per check at ``level``: name, value against the limit, and what was seen."""
    lines = []
    for name, check in (drift.get("checks") or {}).items():
        if check["status"] == level:
            sign = "<" if name in LOWER_IS_WORSE else ">"
            lines.append(f"drift check '{name}' {check['value']:.4g} {sign} {level} threshold "
                         f"{check[level]} ({check['message']})")
    return lines


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
        write_parquet(validation.accepted, ACCEPTED, metadata=metadata)
        write_parquet(validation.quarantine, QUARANTINE)
        write_json(SUMMARY, validation.summary)
        if profile is not None:
            write_json(REFERENCE, profile)


def main() -> None:
    """Run the validate stage with ``params.yaml`` ``validate``."""
    params = load_params("validate")
    settings = drift_params(params)
    frame = read_parquet(INPUT, "the ingest stage (python -m tasks.ingest)")
    metadata = read_table_metadata(INPUT)
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
    drift = compare_with_reference(validation.accepted, read_reference(REFERENCE), settings, classes)
    validation.summary["drift"] = drift
    failures = drift_lines(drift, "fail")
    if failures:
        raise PipelineError(
            f"validate: the accepted rows drifted from the last accepted data ({REFERENCE}): "
            + "; ".join(failures)
            + f". Nothing was written. If this change is intended, delete {REFERENCE} and run again "
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
    print(f"validate: {summary['rows_accepted']} of {summary['rows_in']} rows accepted -> {ACCEPTED}; "
          f"{summary['rows_quarantined']} quarantined{f' ({reasons})' if reasons else ''} -> {QUARANTINE}; "
          f"drift: {drift['status']} [{time.perf_counter() - started:.1f}s]")


if __name__ == "__main__":
    run_main(main)
