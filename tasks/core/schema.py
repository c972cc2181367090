"""The schema of ``params.yaml``: every section's keys, with their types, ranges and choices.

:func:`tasks.core.common.load_params` checks the whole file against it before it returns any section,
so a bad value anywhere stops the first stage DVC runs (the always-run ``source`` stage) before
any stage has changed anything, with one line per problem naming the dotted key, the value and
what is allowed::

    params.yaml: train.text_classification.epochs: must be an integer >= 1, not 0
    params.yaml: train.text_classification.epoch: unknown key; did you mean 'epochs'?

The schema describes what the code reads (``params[key]`` is a required key, ``params.get(key,
default)`` an optional one, ``default`` documenting the code's own); it never changes a value:
:func:`check` only reports. A section a stage splits by task kind (``clean``, ``tokenize``,
``baseline``, ``train``, ``evaluate``) has shared keys at its top level and one subsection per
kind, which may also override a shared key (:func:`tasks.kinds.settings` merges the two).

A section missing from the file is not an error here (the stage that reads it says so); an
unknown section, an unknown key, a missing required key or a bad value is. Standard library
only, cheap to import (every stage imports it on every run).
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Callable

FILE = "params.yaml"
# tasks/kinds.KINDS and tasks/profiles.PROFILES (name -> kind), kept here so that this module
# imports nothing of the project; tests/test_params_schema.py checks they match.
KINDS = ("text_classification", "language_model", "series_classification")
DATASETS = {
    "movie_reviews": "text_classification",
    "clothing_reviews": "text_classification",
    "imdb": "text_classification",
    "table": "text_classification",
    "brown": "language_model",
    "imdb_unsup": "language_model",
    "text_corpus": "language_model",
    "ts": "series_classification",
    "mnist_npz": "series_classification",
    "digits": "series_classification",
    "long_table": "series_classification",
}
# The validate keys each kind's expectation suite (tasks/checks/expectations/<kind>.json) reads.
SUITE_PARAMETERS = {
    "text_classification": ("max_chars", "min_chars", "min_class_count", "min_class_fraction", "min_rows",
                            "rating_max", "rating_min"),
    "language_model": ("min_chars", "min_corpus_tokens"),
    "series_classification": ("max_missing_share", "max_steps", "min_class_count", "min_class_fraction",
                              "min_rows", "min_steps"),
}
MISSING = object()  # a key with no default
INVALID = object()  # a value that failed its type check (cross-key checks skip it)


def show(value: Any, limit: int = 80) -> str:
    """A value as YAML would show it: null, true, 'text', [1, 2], {a: 1}."""
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, list):
        text = "[" + ", ".join(show(item, limit) for item in value) + "]"
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{key}: {show(item, limit)}" for key, item in value.items()) + "}"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _bare(value: Any) -> str:
    return value if isinstance(value, str) else show(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value  # not NaN


# --------------------------------------------------------------------------- value types


def _bounds(ge: Any, gt: Any, le: Any, lt: Any) -> str:
    low = ("[", ge) if ge is not None else ("(", gt) if gt is not None else None
    high = ("]", le) if le is not None else (")", lt) if lt is not None else None
    if low and high:
        return f" in {low[0]}{_bare(low[1])}, {_bare(high[1])}{high[0]}"
    if low:
        return f" {'>=' if low[0] == '[' else '>'} {_bare(low[1])}"
    if high:
        return f" {'<=' if high[0] == ']' else '<'} {_bare(high[1])}"
    return ""


def _within(value: Any, ge: Any, gt: Any, le: Any, lt: Any) -> bool:
    return ((ge is None or value >= ge) and (gt is None or value > gt)
            and (le is None or value <= le) and (lt is None or value < lt))


@dataclass(frozen=True)
class Int:
    """An integer (true/false are not), optionally bounded."""

    ge: int | None = None
    le: int | None = None

    def accepts(self, value: Any) -> bool:
        return _is_int(value) and _within(value, self.ge, None, self.le, None)

    def describe(self) -> str:
        return "an integer" + _bounds(self.ge, None, self.le, None)


@dataclass(frozen=True)
class Number:
    """An integer or a float (true/false are not), optionally bounded, open or closed."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def accepts(self, value: Any) -> bool:
        return _is_number(value) and _within(value, self.ge, self.gt, self.le, self.lt)

    def describe(self) -> str:
        return "a number" + _bounds(self.ge, self.gt, self.le, self.lt)


@dataclass(frozen=True)
class Bool:
    def accepts(self, value: Any) -> bool:
        return isinstance(value, bool)

    def describe(self) -> str:
        return "true or false"


@dataclass(frozen=True)
class Str:
    """A non-empty string."""

    what: str = "a non-empty string"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and value.strip() != ""

    def describe(self) -> str:
        return self.what


@dataclass(frozen=True)
class Choice:
    """One of a few values, of the same type (the string 'true' is not true)."""

    options: tuple[Any, ...]

    def accepts(self, value: Any) -> bool:
        return any(type(value) is type(option) and value == option for option in self.options)

    def describe(self) -> str:
        if len(self.options) == 1:
            return _bare(self.options[0])
        return "one of " + " | ".join(_bare(option) for option in self.options)


@dataclass(frozen=True)
class Null:
    def accepts(self, value: Any) -> bool:
        return value is None

    def describe(self) -> str:
        return "null"


NULL = Null()


@dataclass(frozen=True)
class Either:
    """Any of ``options``."""

    options: tuple[Any, ...]
    what: str | None = None

    def accepts(self, value: Any) -> bool:
        return any(option.accepts(value) for option in self.options)

    def describe(self) -> str:
        return self.what or " or ".join(option.describe() for option in self.options)


@dataclass(frozen=True)
class ListOf:
    """A list whose items all fit ``item``; ``what`` names them in messages."""

    item: Any
    what: str
    min_len: int = 0
    max_len: int | None = None
    order: str | None = None  # "increasing" (strictly) or "nondecreasing"
    distinct: bool = False
    describe_as: str | None = None

    def accepts(self, value: Any) -> bool:
        if not isinstance(value, list) or len(value) < self.min_len or (self.max_len is not None and len(value) > self.max_len):
            return False
        if not all(self.item.accepts(item) for item in value):
            return False
        pairs = list(zip(value, value[1:]))
        if self.order == "increasing" and not all(a < b for a, b in pairs):
            return False
        if self.order == "nondecreasing" and not all(a <= b for a, b in pairs):
            return False
        return not self.distinct or len({str(item) for item in value}) == len(value)

    def describe(self) -> str:
        if self.describe_as:
            return self.describe_as
        size = "a non-empty list of" if self.min_len == 1 else f"a list of at least {self.min_len}" if self.min_len else "a list of"
        return f"{size} {'distinct ' if self.distinct else ''}{self.what}"


@dataclass(frozen=True)
class MapOf:
    """A mapping of non-empty string keys to values that fit ``value``."""

    value: Any
    what: str

    def accepts(self, value: Any) -> bool:
        return isinstance(value, dict) and all(isinstance(key, str) and key and self.value.accepts(item)
                                               for key, item in value.items())

    def describe(self) -> str:
        return f"a mapping of {self.what}"


# --------------------------------------------------------------------------- keys and sections


@dataclass(frozen=True)
class Key:
    """One key of a section: its type, whether the code needs it, the code's default when absent."""

    type: Any
    required: bool = False
    default: Any = MISSING
    note: str = ""  # why the range is what it is, shown in messages

    def describe(self) -> str:
        return self.type.describe() + (f" ({self.note})" if self.note else "")


Check = Callable[[dict[str, Any], Callable[[str], str]], list[str]]


@dataclass(frozen=True)
class Section:
    """A mapping of known keys; ``checks`` relate keys to each other (values with defaults
    filled in and :data:`INVALID` for values that failed their own check; ``name`` gives a
    key's dotted name)."""

    keys: dict[str, Key | "Section"]
    checks: tuple[Check, ...] = ()
    nullable: bool = False  # null reads as "all defaults"

    @property
    def required(self) -> bool:
        return any(isinstance(key, Key) and key.required for key in self.keys.values())

    def describe(self) -> str:
        return f"a mapping of settings ({_some(list(self.keys))})" + (" or null" if self.nullable else "")


def _some(names: list[str], limit: int = 6) -> str:
    return ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _unknown(where: str, key: Any, known: list[str], elsewhere: dict[str, list[str]] | None = None) -> str:
    name = f"{where}.{key}" if where else str(key)
    match = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
    if match:
        return f"{FILE}: {name}: unknown key; did you mean '{match[0]}'?"
    places = (elsewhere or {}).get(str(key))
    if places:
        return f"{FILE}: {name}: unknown key at this level; {_and(places)} read it"
    return f"{FILE}: {name}: unknown key; known keys: {', '.join(known) or 'none'}"


def _hint(value: Any, kind: Any) -> str:
    options = kind.options if isinstance(kind, Choice) else ()
    if isinstance(value, str) and any(not isinstance(option, str) and show(option) == value for option in options):
        return " (write it without quotes)"
    kinds = kind.options if isinstance(kind, Either) else (kind,)
    if isinstance(value, str) and any(isinstance(option, ListOf) for option in kinds):
        return f" (a list: write [{value}])"
    if isinstance(value, str) and any(isinstance(option, (Int, Number)) for option in kinds):
        try:
            float(value)
        except ValueError:
            return ""
        return " (text, not a number: write it without quotes; YAML reads 1e-3 as text, 1.0e-3 as a number)"
    return ""


def _bad(name: str, key: Key, value: Any) -> str:
    return f"{FILE}: {name}: must be {key.describe()}, not {show(value)}{_hint(value, key.type)}"


def _missing(name: str, key: Key | Section) -> str:
    return f"{FILE}: {name}: missing; required: {key.describe()}"


def _value_problems(name: str, key: Key | Section, value: Any) -> list[str]:
    """What is wrong with one value (a plain value or a nested section)."""
    if isinstance(key, Section):
        if value is None and key.nullable:
            return []
        if not isinstance(value, dict):
            return [f"{FILE}: {name}: must be {key.describe()}, not {show(value)}"]
        return section_problems(key, value, name)
    return [] if key.type.accepts(value) else [_bad(name, key, value)]


def _values(keys: dict[str, Any], given: dict[str, Any], valid: set[str]) -> dict[str, Any]:
    """Defaults, overridden by the given values (:data:`INVALID` where a value failed its check)."""
    values = {name: key.default for name, key in keys.items() if isinstance(key, Key) and key.default is not MISSING}
    values.update({name: value if name in valid else INVALID for name, value in given.items()})
    return values


def _entry_problems(given: dict[str, Any], where: str, key_of: Callable[[str], Any],
                    unknown: Callable[[Any], str]) -> tuple[list[str], set[str]]:
    """Each entry of ``given`` checked against the key ``key_of`` finds for its name (None: an
    unknown key, reported by ``unknown``); the problems and the names whose value is valid."""
    problems: list[str] = []
    valid: set[str] = set()
    for name, value in given.items():
        key = key_of(name) if isinstance(name, str) else None
        if key is None:
            problems.append(unknown(name))
            continue
        found = _value_problems(f"{where}.{name}", key, value)
        problems += found
        if not found:
            valid.add(name)
    return problems, valid


def section_problems(section: Section, given: dict[str, Any], where: str) -> list[str]:
    """Every problem of one mapping: unknown keys, bad values, missing required keys, cross-key checks."""
    problems, valid = _entry_problems(given, where, section.keys.get, lambda name: _unknown(where, name, list(section.keys)))
    for name, key in section.keys.items():
        if isinstance(key, Key) and key.required and name not in given:
            problems.append(_missing(f"{where}.{name}", key))
    values = _values(section.keys, {k: v for k, v in given.items() if k in section.keys}, valid)
    for check in section.checks:
        problems += check(values, lambda key: f"{where}.{key}")
    return problems


@dataclass(frozen=True)
class Staged:
    """A stage's section split by task kind: ``shared`` keys at the top, a subsection per kind.

    A kind's subsection may override a shared key; required keys and cross-key checks apply to
    each kind's merged settings. A kind's subsection is required when it has required keys.
    """

    shared: Section
    kinds: dict[str, Section]

    def describe(self) -> str:
        return f"a mapping of settings ({_some([*self.shared.keys, *self.kinds])})"


def staged_problems(staged: Staged, given: dict[str, Any], where: str) -> list[str]:
    shared_keys = staged.shared.keys
    readers: dict[str, list[str]] = {}
    for kind, section in staged.kinds.items():
        for name in section.keys:
            readers.setdefault(name, []).append(f"{where}.{kind}")
    problems, valid = _entry_problems({name: value for name, value in given.items() if name not in staged.kinds}, where,
                                      shared_keys.get, lambda name: _unknown(where, name, [*shared_keys, *staged.kinds], readers))
    shared = {name: value for name, value in given.items() if name in shared_keys}
    present = [kind for kind in staged.kinds if isinstance(given.get(kind), dict)]
    for kind, section in staged.kinds.items():
        own = given.get(kind)
        prefix = f"{where}.{kind}"
        if own is None:
            if section.required:
                problems.append(_missing(prefix, section))
            continue
        if not isinstance(own, dict):
            problems.append(f"{FILE}: {prefix}: must be {section.describe()}, not {show(own)}")
            continue
        def unknown(name: Any, prefix: str = prefix, section: Section = section) -> str:
            others = {str(name): [place for place in readers.get(str(name), []) if place != prefix]}
            return _unknown(prefix, name, list(section.keys), others)

        found, own_valid = _entry_problems(own, prefix, lambda name, section=section: section.keys.get(name, shared_keys.get(name)),
                                           unknown)
        problems += found
        for name, key in section.keys.items():
            if isinstance(key, Key) and key.required and name not in own:
                problems.append(_missing(f"{prefix}.{name}", key))
        for name, key in shared_keys.items():
            if isinstance(key, Key) and key.required and name not in own and name not in given:
                problems.append(_missing(f"{where}.{name}", key))
        keys = {**shared_keys, **section.keys}
        merged = {**shared, **{k: v for k, v in own.items() if k in keys}}
        values = _values(keys, merged, {k for k in merged if (k in own_valid if k in own else k in valid)})

        def name_of(key: str, own: dict = own, prefix: str = prefix) -> str:
            return f"{prefix}.{key}" if key in own else f"{where}.{key}"

        for check in (*staged.shared.checks, *section.checks):
            problems += check(values, name_of)
    if not present:
        for name, key in shared_keys.items():
            if isinstance(key, Key) and key.required and name not in given:
                problems.append(_missing(f"{where}.{name}", key))
        values = _values(shared_keys, shared, valid)
        for check in staged.shared.checks:
            problems += check(values, lambda key: f"{where}.{key}")
    return problems


# --------------------------------------------------------------------------- cross-key checks


def _ok(*values: Any) -> bool:
    return all(value is not INVALID and value is not MISSING for value in values)


def at_most(low: str, high: str) -> Check:
    """``low <= high`` when both are numbers."""

    def check(values: dict[str, Any], name: Callable[[str], str]) -> list[str]:
        a, b = values.get(low, MISSING), values.get(high, MISSING)
        if _ok(a, b) and _is_number(a) and _is_number(b) and a > b:
            return [f"{FILE}: {name(high)}: must be >= {name(low)} ({show(a)}), not {show(b)}"]
        return []

    return check


def fractions_below_one(values: dict[str, Any], name: Callable[[str], str]) -> list[str]:
    validation, test = values.get("validation_fraction", MISSING), values.get("test_fraction", MISSING)
    if _ok(validation, test) and validation + test >= 1:
        return [f"{FILE}: {name('test_fraction')}: {name('validation_fraction')} + {name('test_fraction')} must be "
                f"below 1 (the rest is the train split), not {show(validation)} + {show(test)}"]
    return []


def levels_in_order(lower_is_worse: bool) -> Check:
    """A drift check's warn level comes before its fail level."""

    def check(values: dict[str, Any], name: Callable[[str], str]) -> list[str]:
        warn, fail = values.get("warn", MISSING), values.get("fail", MISSING)
        if _ok(warn, fail) and warn is not None and fail is not None and (warn < fail if lower_is_worse else warn > fail):
            relation = ">=" if lower_is_worse else "<="
            return [f"{FILE}: {name('warn')}: must be {relation} {name('fail')} ({show(fail)}; a warning comes before "
                    f"a failure), not {show(warn)}"]
        return []

    return check


def needs_when(key: str, setting: Any, needed: tuple[str, ...]) -> Check:
    """``needed`` keys are required when ``key`` is ``setting``."""

    def check(values: dict[str, Any], name: Callable[[str], str]) -> list[str]:
        if values.get(key, MISSING) != setting or values.get(key) is INVALID:
            return []
        return [f"{FILE}: {name(other)}: missing; {name(key)} {_bare(setting)} needs it"
                for other in needed if values.get(other, MISSING) is MISSING]

    return check


def ingest_profile_needs(values: dict[str, Any], name: Callable[[str], str]) -> list[str]:
    """The keys a profile reads without a default, for the profile ``dataset`` names."""
    dataset, problems = values.get("dataset", MISSING), []

    def column(key: str) -> None:
        value = values.get(key, MISSING)
        if value is MISSING or value is None:
            problems.append(f"{FILE}: {name(key)}: the {dataset} profile needs a column name here, "
                            f"not {'nothing' if value is MISSING else 'null'}")

    if dataset == "table":
        column("label_column")
        if values.get("text_columns", MISSING) is MISSING:
            problems.append(f"{FILE}: {name('text_columns')}: missing; the table profile needs a non-empty list of column names")
    elif dataset == "long_table":
        for key in ("label_column", "id_column", "order_column"):
            column(key)
        features = values.get("feature_columns", MISSING)
        if features is MISSING or features == []:
            problems.append(f"{FILE}: {name('feature_columns')}: the long_table profile needs a non-empty list of the "
                            f"numeric columns of each step, not {'nothing' if features is MISSING else '[]'}")
    elif dataset == "clothing_reviews":
        for key in ("positive_above", "negative_below"):
            if values.get(key, MISSING) is MISSING:
                problems.append(f"{FILE}: {name(key)}: missing; the clothing_reviews profile needs a rating (a number)")
        problems += at_most("negative_below", "positive_above")(values, name)
    return problems


# --------------------------------------------------------------------------- the sections

POSITIVE = Number(gt=0)
FRACTION = Number(gt=0, lt=1)
SHARE = Number(ge=0, le=1)
DROPOUT = Number(ge=0, lt=1)
COUNT = Int(ge=1)
SEED = Int(ge=0)
AUTO = Choice(("auto",))
MIXED_PRECISION = Choice(("auto", True, False))
COLUMN = Either((Str(), NULL), "a column name or null")
COLUMNS = ListOf(Str(), "column names")
VOCAB_SIZE = Key(Either((Int(ge=3), NULL)), required=True,
                 note="ids 0 and 1 are padding and the OOV token [UNK]; null: no cap")
C_VALUES = Key(ListOf(POSITIVE, "positive numbers (C)", min_len=1), required=True)
BUCKETS = Key(ListOf(Number(), "bucket edges", min_len=2, order="increasing",
                     describe_as="a list of at least 2 increasing numbers (bucket edges)"), required=True)

INGEST = Section({
    "dataset": Key(Choice(tuple(DATASETS)), required=True),
    "source": Key(Str("auto, or a file, folder, glob or http(s) URL"), required=True),
    "test_source": Key(Either((Str("a file, folder, glob or http(s) URL"), NULL)), default=None),
    "url_max_mb": Key(POSITIVE, default=2048),
    "url_timeout_s": Key(POSITIVE, default=30),
    "positive_above": Key(Number()),
    "negative_below": Key(Number()),
    "text_columns": Key(ListOf(Str(), "column names", min_len=1)),
    "label_column": Key(COLUMN),
    "id_column": Key(COLUMN, default=None),
    "order_column": Key(COLUMN, default=None),
    "feature_columns": Key(COLUMNS, default=[]),
    "classes": Key(Either((NULL, ListOf(Either((Str(), Int())), "class names", min_len=2, distinct=True))), default=None),
    "kind": Key(Either((Choice(("auto", *KINDS)), NULL)), default="auto"),
    "paragraphs": Key(Bool(), default=False),
}, checks=(ingest_profile_needs,))


def _levels(warn: float, fail: float, kind: Number, lower_is_worse: bool = False) -> Section:
    level = Either((kind, NULL))
    return Section({"warn": Key(level, default=warn), "fail": Key(level, default=fail)},
                   checks=(levels_in_order(lower_is_worse),))


DRIFT = Section({  # defaults: tasks/checks/drift.py DRIFT_DEFAULTS
    "class_share_delta": _levels(0.1, 0.25, SHARE),
    "length_psi": _levels(0.1, 0.25, Number(ge=0)),
    "vocabulary_overlap_min": _levels(0.8, 0.6, SHARE, lower_is_worse=True),
    "new_category_share": _levels(0.01, 0.2, SHARE),
    "vocabulary_top_n": Key(COUNT, default=200),
    "categorical_columns": Key(Either((COLUMNS, NULL)), default=["department", "class_name", "division"]),
}, nullable=True)

RATING = Either((AUTO, Number()), "auto or a number")
VALIDATE = Section({  # required per kind: SUITE_PARAMETERS (checked with ingest's kind)
    "min_chars": Key(Int(ge=0)),
    "max_chars": Key(COUNT),
    "min_class_fraction": Key(Number(ge=0, le=0.5)),
    "min_class_count": Key(Int(ge=0)),
    "min_rows": Key(Int(ge=0)),
    "min_corpus_tokens": Key(Int(ge=0)),
    "min_steps": Key(Int(ge=0)),
    "max_steps": Key(COUNT),
    "max_missing_share": Key(SHARE),
    "rating_min": Key(RATING),
    "rating_max": Key(RATING),
    "drift": DRIFT,
}, checks=(at_most("min_chars", "max_chars"), at_most("min_steps", "max_steps"), at_most("rating_min", "rating_max")))

CLEAN = Staged(
    Section({
        "validation_fraction": Key(FRACTION, required=True),
        "test_fraction": Key(FRACTION, required=True),
        "seed": Key(SEED, required=True),
        "workers": Key(Int(ge=0), default=0, note="0: one per core"),
    }, checks=(fractions_below_one,)),
    {
        "text_classification": Section({  # defaults: tasks/inputs/textclean.py CleanOptions
            "strip_markup": Key(Bool(), default=True),
            "lowercase": Key(Bool(), default=True),
            "lemmatize": Key(Bool(), default=True),
            "remove_stopwords": Key(Bool(), default=True),
            "keep_stopwords": Key(Either((ListOf(Str(), "words"), NULL)), default=[]),
            "remove_punctuation": Key(Bool(), default=True),
            "max_tokens": Key(COUNT, default=2000),
        }),
        "series_classification": Section({  # defaults: tasks/inputs/series.py SeriesOptions
            "missing": Key(Choice(("interpolate", "fill", "drop")), default="interpolate"),
            "fill_value": Key(Number(), default=0.0),
            "max_steps": Key(Either((COUNT, NULL)), default=None),
            "resample_to": Key(Either((COUNT, NULL)), default=None),
            "normalise": Key(Choice(("none", "series", "auto")), default="none"),
            "stratify": Key(Bool(), default=True),
        }),
        "language_model": Section({  # defaults: tasks/inputs/textclean.py CorpusOptions
            "lowercase": Key(Bool(), default=True),
            "strip_markup": Key(Bool(), default=True),
            "end_of": Key(Choice(("sentence", "document")), default="sentence"),
            "split": Key(Choice(("auto", "document", "contiguous")), default="auto"),
        }),
    },
)

TOKENIZE = Staged(Section({}), {
    "text_classification": Section({
        "vocab_size": VOCAB_SIZE,
        "min_count": Key(COUNT, required=True),
        "max_len": Key(Either((COUNT, AUTO), "an integer >= 1 or auto"), required=True),
        "length_percentile": Key(Number(gt=0, le=100), required=True),
    }),
    "language_model": Section({
        "vocab_size": VOCAB_SIZE,
        "min_count": Key(COUNT, required=True),
    }),
    "series_classification": Section({}),
})

BASELINE = Staged(Section({}), {
    "text_classification": Section({
        "weighting": Key(Choice(("tfidf", "nb")), default="tfidf"),
        "ngram_range": Key(ListOf(COUNT, "integers", min_len=2, max_len=2, order="nondecreasing",
                                  describe_as="[a, b] with integers 1 <= a <= b"), required=True),
        "min_df": Key(COUNT, required=True),
        "max_features": Key(Either((COUNT, NULL)), required=True),
        "C": C_VALUES,
    }),
    "series_classification": Section({  # tasks/kinds/series_classification/baseline.py
        "models": Key(ListOf(Choice(("summary_logistic", "minirocket")), "baseline models", min_len=1, distinct=True),
                      default=["summary_logistic", "minirocket"]),
        "folds": Key(Int(ge=2), default=5),
        "C": C_VALUES,
        "shape_steps": Key(Int(ge=0), required=True, note="0: summaries only"),
        "minirocket_features": Key(Int(ge=84), default=10000),
        "minirocket_max_steps": Key(Int(ge=9), default=1024),
    }),
    "language_model": Section({
        "order": Key(COUNT, required=True),
        "discount": Key(Either((Choice(("modified", "auto")), Number(gt=0, le=1))), required=True),
    }),
})

# A recurrent language model (tasks/networks/lm.py), trained by pretrain and by train.language_model.
LANGUAGE_MODEL = {
    "model": Key(Choice(("lstm", "gru")), required=True),
    "layers": Key(COUNT, required=True),
    "units": Key(COUNT, required=True),
    "embedding_dim": Key(COUNT, required=True),
    "dropout": Key(DROPOUT, required=True),
    "tied": Key(Bool(), required=True),
    "sequence_length": Key(COUNT, required=True),
    "batch_size": Key(COUNT, required=True),
    "sampled_softmax": Key(Either((COUNT, NULL)), default=None, note="null: the exact softmax"),
    "learning_rate": Key(POSITIVE, required=True),
    "learning_rate_decay": Key(Number(gt=0, le=1), default=0.5),
    "clipnorm": Key(Either((POSITIVE, NULL)), default=None),
    "epochs": Key(COUNT, required=True),
    # tasks/networks/lm.py stops before an epoch once `patience` epochs did not improve: 0 would train none.
    "early_stopping_patience": Key(COUNT, required=True),
}

PRETRAIN = Section({
    "source": Key(Either((ListOf(Str(), "corpora (files, folders, globs, URLs or train)"), NULL)), default=[]),
    "max_tokens": Key(Either((COUNT, NULL)), default=None),
    "validation_fraction": Key(FRACTION, required=True),
    **LANGUAGE_MODEL,
    "seed": Key(SEED, required=True),
    "mixed_precision": Key(MIXED_PRECISION, default="auto"),
})

# A classifier over sequences (tasks/networks/model.py and fit.py, tasks/targets/classifier/), text or series.
CLASSIFIER = {
    "model": Key(Choice(("simple_rnn", "lstm", "gru")), required=True),
    "bidirectional": Key(Bool(), required=True),
    "layers": Key(COUNT, required=True),
    "units": Key(COUNT, required=True),
    "dropout": Key(DROPOUT, required=True),
    "pooling": Key(Choice(("last", "max", "mean")), required=True),
    "optimizer": Key(Choice(("adam", "rmsprop")), required=True),
    "learning_rate": Key(POSITIVE, required=True),
    "clipnorm": Key(Either((POSITIVE, NULL)), default=None),
    "batch_size": Key(COUNT, required=True),
    "epochs": Key(COUNT, required=True),
    "early_stopping_patience": Key(Int(ge=0), required=True),
    "early_stopping_monitor": Key(Choice(("auto", "loss", "auc")), default="auto"),
    "class_weight": Key(Choice(("balanced", "none")), default="none"),
    "ensemble": Key(Choice(("none", "baseline")), default="none"),
    "ensemble_weight": Key(Either((AUTO, Number(ge=0, le=1)), "auto or a number from 0 to 1"), default="auto"),
    "threshold_objective": Key(Choice(("macro_f1", "accuracy")), default="macro_f1"),
}

TRAIN = Staged(
    Section({
        "seed": Key(SEED, required=True),
        "mixed_precision": Key(MIXED_PRECISION, default="auto"),
        "distribute": Key(Choice(("auto", "off")), default="auto"),
    }),
    {
        "text_classification": Section({
            **CLASSIFIER,
            "embedding_dim": Key(COUNT, required=True),
            "init": Key(Choice(("scratch", "pretrained")), default="scratch"),
            "freeze_epochs": Key(Int(ge=0)),
            "finetune_learning_rate": Key(POSITIVE),
        }, checks=(needs_when("init", "pretrained", ("freeze_epochs", "finetune_learning_rate")),)),
        "series_classification": Section({  # tasks/networks/model.py series_capacity, downsample_stride, series_epochs
            **CLASSIFIER,
            "capacity": Key(Choice(("auto", "fixed")), default="auto"),
            "downsample_to": Key(Either((Int(ge=2), NULL), "an integer of 2 or more, or null"), default=100),
            "conv_branch": Key(Either((AUTO, Bool()), "auto, true or false"), default="auto"),
            "max_series_steps": Key(Either((Int(ge=1), NULL), "a positive integer, or null"), default=None),
        }),
        "language_model": Section(dict(LANGUAGE_MODEL)),
    },
)

EVALUATE = Staged(Section({}), {
    "text_classification": Section({
        "worst_examples": Key(Int(ge=0), required=True),
        "length_buckets": BUCKETS,
        "slice_columns": Key(COLUMNS, required=True),
    }),
    "series_classification": Section({
        "worst_examples": Key(Int(ge=0), required=True),
        "length_buckets": BUCKETS,
    }),
    "language_model": Section({
        "prompts": Key(ListOf(Str(), "prompts"), required=True),
        "words": Key(COUNT, required=True),
        "temperature": Key(POSITIVE, required=True),
        "top_k": Key(Either((COUNT, NULL)), required=True),
        "seed": Key(SEED, required=True),
    }),
})

PROMOTE = Section({  # defaults: flows/promote.py DEFAULTS
    "metric": Key(Str("a metric name (a key of metrics/evaluate.json)"), default="macro_f1"),
    "min_improvement": Key(Number(ge=0), default=0.0),
    "floors": Key(Either((MapOf(Number(), "metric names to minimums"), NULL)), default={"roc_auc": 0.5}),
}, nullable=True)

SCHEMA: dict[str, Section | Staged] = {
    "ingest": INGEST,
    "validate": VALIDATE,
    "clean": CLEAN,
    "tokenize": TOKENIZE,
    "baseline": BASELINE,
    "pretrain": PRETRAIN,
    "train": TRAIN,
    "evaluate": EVALUATE,
    "promote": PROMOTE,
}


# --------------------------------------------------------------------------- the whole file


def task_kind(params: dict[str, Any]) -> str | None:
    """The task kind ``ingest`` makes (``ingest.kind``, else its profile's), None when unknown."""
    ingest = params.get("ingest")
    if not isinstance(ingest, dict):
        return None
    requested = ingest.get("kind") or "auto"
    if requested in KINDS:
        return requested
    return DATASETS.get(ingest.get("dataset")) if isinstance(ingest.get("dataset"), str) else None


def cross_section_problems(params: dict[str, Any]) -> list[str]:
    """What one section's value means for another's, for the task kind ingest makes."""
    kind, problems = task_kind(params), []
    if kind is None:
        return problems
    validate = params.get("validate")
    if isinstance(validate, dict):
        problems += [f"{FILE}: validate.{name}: missing; the {kind} checks need it ({VALIDATE.keys[name].describe()})"
                     for name in SUITE_PARAMETERS[kind] if name not in validate]
    pretrain, train = params.get("pretrain"), params.get("train")
    sources = pretrain.get("source") if isinstance(pretrain, dict) else None
    if isinstance(sources, list) and sources and kind != "text_classification":
        problems.append(f"{FILE}: pretrain.source: must be [] for {kind} data (pretraining is for text classifiers), "
                        f"not {show(sources)}")
    text = train.get("text_classification") if isinstance(train, dict) else None
    if kind == "text_classification" and isinstance(text, dict) and text.get("init") == "pretrained" \
            and isinstance(sources, (list, type(None))) and not sources:
        problems.append(f"{FILE}: train.text_classification.init: pretrained needs a pretraining corpus, but "
                        "pretrain.source is empty (set it, e.g. [train]; or init: scratch)")
    return problems


def problems(params: Any) -> list[str]:
    """Every problem of a parsed ``params.yaml``, one line each (empty: it is valid)."""
    if params is None:
        params = {}
    if not isinstance(params, dict):
        return [f"{FILE}: must be a mapping of sections ({', '.join(SCHEMA)}), not {show(params)}"]
    found: list[str] = []
    for name, value in params.items():
        schema = SCHEMA.get(name) if isinstance(name, str) else None
        if schema is None:
            match = difflib.get_close_matches(str(name), list(SCHEMA), n=1, cutoff=0.6)
            found.append(f"{FILE}: {name}: unknown section; " + (f"did you mean '{match[0]}'?" if match
                                                                  else f"known: {', '.join(SCHEMA)}"))
        elif value is None and isinstance(schema, Section) and schema.nullable:
            continue
        elif not isinstance(value, dict):
            found.append(f"{FILE}: {name}: must be {schema.describe()}, not {show(value)}")
        elif isinstance(schema, Staged):
            found += staged_problems(schema, value, name)
        else:
            found += section_problems(schema, value, name)
    found += cross_section_problems(params)
    return list(dict.fromkeys(found))  # a shared key's problem is seen once per kind: report it once


def check(params: Any, error: type[Exception] = ValueError) -> None:
    """Raise ``error`` (a :class:`tasks.core.common.PipelineError` from ``load_params``) listing every
    problem, one line, ``; ``-separated, when ``params`` does not fit the schema; ``.problems``
    holds them one by one."""
    found = problems(params)
    if found:
        exception = error("; ".join(found))
        exception.problems = found
        raise exception
