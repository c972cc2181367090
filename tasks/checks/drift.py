"""Drift: the accepted rows against a small profile of the last accepted data.

Contract: :func:`drift_params` checks ``params.yaml`` ``validate.drift`` over
:data:`DRIFT_DEFAULTS`. :func:`data_profile` makes the reference profile of a table (small,
deterministic JSON: class shares, length deciles, top-N vocabulary, categorical values);
:func:`read_reference` reads the stored one (None before the first run).
:func:`compare_with_reference` returns the summary's ``drift`` section: per check its value,
thresholds, status (``ok``/``warn``/``fail``) and message, using the population stability
index (:func:`population_stability`) for lengths; :func:`drift_lines` renders the checks at
one level as lines. Pure functions on DataFrames and dicts: nothing is written here, and
Great Expectations is never imported.
"""
from __future__ import annotations

import json
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.core.artifacts import REFERENCE_PROFILE
from tasks.core.common import PipelineError

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


def read_reference(path: Path = REFERENCE_PROFILE) -> dict[str, Any] | None:
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
        return {"status": "no reference yet", "reference": str(REFERENCE_PROFILE),
                "note": "first accepted data: nothing to compare with; this run becomes the reference"}
    base = {"reference": str(REFERENCE_PROFILE), "reference_rows": reference.get("rows"), "rows": len(frame)}
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
