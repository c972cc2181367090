"""Reader for the UEA/UCR time-series archive's ``.ts`` format (as written by sktime and aeon).

Our own reader because sktime and aeon would pull heavy dependencies for one parser, and
because theirs report bad input loosely. This one is strict: every problem raises
:class:`~tasks.core.common.PipelineError` with one line, ``SOURCE: line N: what is wrong``.

The format (semantics of sktime's ``load_from_tsfile``): ``#`` comment lines; header lines
``@problemName NAME``, ``@timeStamps``, ``@missing``, ``@univariate``, ``@equalLength``,
``@targetLabel`` (``true``/``false``), ``@dimensions N``, ``@seriesLength N``,
``@classLabel true L1 L2 ...`` or ``@classLabel false``; then ``@data`` and one series a line:
dimensions separated by ``:``, values by ``,``, the label after the last ``:``. As in sktime,
``@problemName``, ``@timeStamps``, ``@univariate`` and ``@classLabel`` (or, for regression,
``@targetLabel``) are required; the other tags are optional and, when absent, are ``None`` in
:attr:`TsData.header` and not checked.

Decisions where the format or sktime leaves room:

* Missing values, ``?`` or ``NaN`` (any case), become NaN. Under ``@missing false`` they are an
  error (sktime accepts them): later stages trust that header to skip imputation.
* Time-stamped data (``@timeStamps true``) is not supported and rejected at that header line:
  a series here is a plain (steps, dimensions) array, with no place for time stamps.
* The dimensions of one series may differ in length (the format allows it for unequal-length
  data): the shorter ones are padded at the end with NaN to the longest, whatever ``@missing``
  says. ``@equalLength true`` forbids it, and ``@seriesLength N``, when given, requires N values
  in every dimension of every series.
* Rejected although sktime reads them: empty dimensions, infinite values, labels not declared
  by ``@classLabel`` (compared exactly: labels and the problem name keep their case; header
  keywords and ``true``/``false`` do not), duplicate or unknown header tags, ``@classLabel`` and
  ``@targetLabel`` both true.
* ``@targetLabel true`` (regression): the value after the last ``:`` is the target; it must be
  a number and is kept as its text in :attr:`TsData.labels`.

Speed: a first pass checks each line's structure in Python (labels, dimensions, lengths: a
few string operations a line); then all lines with as many values are converted by one
``np.loadtxt`` call, C code with no Python object per value. A line is re-read value by value
only to name a bad value. Measured with ``read_ts`` on 60,000 series x 28 steps x 28 dimensions
(47 million values): 5 s of CPU for 0-255 integers (160 MB of text, 1.3 GB peak memory) and
7 s for six-decimal values (440 MB, 2.1 GB), ``np.loadtxt`` being 60% of it, on a 2-vCPU
AMD EPYC VM shared with other jobs where ``float("0.123456")`` takes 120-150 ns (about three
times a current desktop's). ``np.fromstring`` or ``float`` per value took twice as long.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from tasks.core.common import PipelineError

MISSING_MARK = "?"
HEADER_TAGS = (
    "problemName",
    "timeStamps",
    "missing",
    "univariate",
    "dimensions",
    "equalLength",
    "seriesLength",
    "classLabel",
    "targetLabel",
)
REQUIRED_TAGS = ("problemName", "timeStamps", "univariate")
COUNT_TAGS = ("dimensions", "seriesLength")
TAG_BY_KEYWORD = {tag.lower(): tag for tag in HEADER_TAGS}
EXCERPT_CHARS = 40
NO_LABEL = "no label after the last ':' (each series ends with ':LABEL')"


@dataclass
class TsData:
    """One ``.ts`` file: its series, their labels and its header."""

    series: list[np.ndarray]  # one float64 array per series, shape (steps, dimensions); NaN for missing
    labels: list[str] | None  # class labels (or regression targets) as text; None when the file has none
    header: dict[str, Any]  # every tag of HEADER_TAGS; classLabel is the declared labels or None


def read_ts(path: str | Path) -> TsData:
    """Read a ``.ts`` file as UTF-8 (a BOM is allowed) and parse it; see :func:`parse_ts`."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise PipelineError(f"{path}: cannot read ({error.strerror})") from error
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line_number = raw.count(b"\n", 0, error.start) + 1
        raise PipelineError(
            f"{path}: line {line_number}: not UTF-8 text (byte 0x{raw[error.start]:02x}); not a .ts file?"
        ) from None
    del raw  # a large file's bytes need not stay in memory while its text is parsed
    return parse_ts(text, source=str(path))


def parse_ts(text: str, source: str = "<string>") -> TsData:
    """Parse the text of a ``.ts`` file; ``source`` names it in error messages."""
    nul = text.find("\x00")
    if nul >= 0:
        raise _error(source, text.count("\n", 0, nul) + 1, "NUL byte: binary or corrupt file, not a .ts file")
    text = text.removeprefix("\ufeff")
    if not text or text.isspace():
        raise _error(source, 1, "the file is empty")
    lines = text.split("\n")
    header, data_line = _read_header(lines, source)
    series, labels = _read_series(lines, data_line, header, source)
    return TsData(series=series, labels=labels, header=header)


def _error(source: str, line_number: int, problem: str) -> PipelineError:
    return PipelineError(f"{source}: line {line_number}: {problem}")


def _excerpt(text: str) -> str:
    """``text`` quoted, shortened so that one error stays one readable line."""
    return repr(text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "...")


def _read_header(lines: list[str], source: str) -> tuple[dict[str, Any], int]:
    """The header tags up to ``@data``, and the (1-based) number of the ``@data`` line."""
    header: dict[str, Any] = dict.fromkeys(HEADER_TAGS)
    tag_lines: dict[str, int] = {}
    for index, raw_line in enumerate(lines):
        line, line_number = raw_line.strip(), index + 1
        if not line or line.startswith("#"):
            continue
        if not line.startswith("@"):
            problem = f"expected a @tag header line or a # comment before @data, got {_excerpt(line)}"
            raise _error(source, line_number, problem)
        parts = line[1:].split(maxsplit=1)
        keyword = parts[0].lower() if parts else ""
        value = parts[1] if len(parts) == 2 else ""
        if keyword == "data":
            if value:
                raise _error(source, line_number, f"@data takes no value, got {_excerpt(value)}")
            _check_header_complete(header, tag_lines, source, line_number)
            return header, line_number
        tag = TAG_BY_KEYWORD.get(keyword)
        if tag is None:
            raise _error(source, line_number, f"unknown header tag {_excerpt('@' + keyword)}")
        if tag in tag_lines:
            raise _error(source, line_number, f"@{tag} given twice (first on line {tag_lines[tag]})")
        header[tag] = _parse_tag_value(tag, value, source, line_number)
        tag_lines[tag] = line_number
    last_line = max(index + 1 for index, line in enumerate(lines) if line.strip())
    raise _error(source, last_line, "no @data line: the file ends in its header")


def _parse_tag_value(tag: str, value: str, source: str, line_number: int) -> Any:
    """The value of one header tag, checked against what the format allows for it."""
    if tag == "problemName":
        if not value:
            raise _error(source, line_number, "@problemName needs a name")
        return value
    if tag == "classLabel":
        flag, *declared = value.split() or [""]
        if flag.lower() == "false" and not declared:
            return None
        if flag.lower() != "true" or not declared:
            raise _error(source, line_number, f"@classLabel must be 'true L1 L2 ...' or 'false', got {_excerpt(value)}")
        repeated = sorted({label for label in declared if declared.count(label) > 1})
        if repeated:
            raise _error(source, line_number, f"@classLabel declares {', '.join(map(repr, repeated))} more than once")
        return declared
    if tag in COUNT_TAGS:
        if not (value.isascii() and value.isdigit() and int(value) > 0):
            raise _error(source, line_number, f"@{tag} must be a positive whole number, got {_excerpt(value)}")
        return int(value)
    if value.lower() not in ("true", "false"):
        raise _error(source, line_number, f"@{tag} must be true or false, got {_excerpt(value)}")
    if tag == "timeStamps" and value.lower() == "true":
        raise _error(source, line_number, "@timeStamps true: time-stamped data is not supported")
    return value.lower() == "true"


def _check_header_complete(header: dict[str, Any], tag_lines: dict[str, int], source: str, data_line: int) -> None:
    """At ``@data``: the tags sktime requires are there and do not contradict each other."""
    missing = [f"@{tag}" for tag in REQUIRED_TAGS if tag not in tag_lines]
    if "classLabel" not in tag_lines and "targetLabel" not in tag_lines:
        missing.append("@classLabel (or @targetLabel)")
    if missing:
        raise _error(source, data_line, f"@data before the required header tag(s) {', '.join(missing)}")
    if header["classLabel"] is not None and header["targetLabel"]:
        problem = "@classLabel true and @targetLabel true: a file has class labels or regression targets, not both"
        raise _error(source, data_line, problem)
    if header["univariate"] and header["dimensions"] not in (None, 1):
        problem = f"@univariate true contradicts @dimensions {header['dimensions']} (line {tag_lines['dimensions']})"
        raise _error(source, data_line, problem)


def _read_series(
    lines: list[str], data_line: int, header: dict[str, Any], source: str
) -> tuple[list[np.ndarray], list[str] | None]:
    """Every series after ``@data`` (line number ``data_line``) as (steps, dimensions) arrays.

    The structure of every line (labels, dimensions, lengths) is checked first, in file order,
    and the values are converted afterwards, in bulk (see :func:`_parse_values`): a structural
    error is reported before a bad value on an earlier line.
    """
    declared_labels = header["classLabel"]
    has_labels = declared_labels is not None or bool(header["targetLabel"])
    expected_dimensions = header["dimensions"] or (1 if header["univariate"] else None)
    dimensions_origin = f"@dimensions is {header['dimensions']}" if header["dimensions"] else "@univariate is true"
    required_length = header["seriesLength"]
    length_origin = f"@seriesLength is {required_length}"
    rows: list[_SeriesLine] = []
    labels: list[str] = []
    for index in range(data_line, len(lines)):
        line, line_number = lines[index].strip(), index + 1
        if not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            raise _error(source, line_number, f"header line {_excerpt(line)} after @data")
        if has_labels:
            *dimensions, label = line.split(":")
            label = _checked_label(label.strip(), len(dimensions), declared_labels, expected_dimensions, source, line_number)
            labels.append(label)
            values_text = line[: line.rindex(":")]
        else:
            dimensions = line.split(":")
            values_text = line
        if expected_dimensions is None:
            expected_dimensions = len(dimensions)
            dimensions_origin = f"the first series (line {line_number}) has {expected_dimensions}"
        elif len(dimensions) != expected_dimensions:
            raise _error(source, line_number, f"series has {len(dimensions)} dimension(s) but {dimensions_origin}")
        lengths = [dimension.count(",") + 1 for dimension in dimensions]
        if header["equalLength"] and required_length is None:
            required_length = lengths[0]
            length_origin = f"@equalLength is true and the first series (line {line_number}) has {required_length}"
        if required_length is not None:
            for number, length in enumerate(lengths, start=1):
                if length != required_length:
                    raise _error(source, line_number, f"dimension {number} has {length} value(s) but {length_origin}")
        rows.append(_SeriesLine(line_number, line, lengths, _as_loadtxt_row(values_text)))
    if not rows:
        raise _error(source, data_line, "no series after @data")
    values = _parse_values(rows, header["missing"] is False, source)
    series = [_to_steps_by_dimensions(flat, row.lengths) for flat, row in zip(values, rows)]
    return series, (labels if has_labels else None)


def _checked_label(
    label: str,
    dimension_count: int,
    declared_labels: list[str] | None,
    expected_dimensions: int | None,
    source: str,
    line_number: int,
) -> str:
    """The text after a series' last ':': a label declared by @classLabel, or a number under @targetLabel."""
    if not dimension_count:
        raise _error(source, line_number, NO_LABEL)
    if declared_labels is not None:
        if label in declared_labels:
            return label
        declared = " ".join(declared_labels)
        problem = f"class label {_excerpt(label)} is not among the declared @classLabel values {declared}"
    else:
        target = _parse_value(label)
        if target is not None and np.isfinite(target):
            return label
        problem = f"target value {_excerpt(label)} is not a finite number"
    if not label or dimension_count + 1 == expected_dimensions:
        problem = NO_LABEL
    raise _error(source, line_number, problem)


class _SeriesLine(NamedTuple):
    """One series' line, its structure checked, its values not yet converted."""

    line_number: int
    text: str  # as in the file: dimensions split by ':', values by ',', then the label if any
    lengths: list[int]  # values per dimension
    loadtxt_row: str  # the values alone as one np.loadtxt row: ',' between all of them, 'nan' for '?'


def _parse_values(rows: list[_SeriesLine], forbid_missing: bool, source: str) -> list[np.ndarray]:
    """The values of every series, flat, dimension after dimension.

    Lines with as many values are converted together by one ``np.loadtxt`` call (a C parser,
    two to three times as fast as ``float`` or ``np.fromstring`` per value). The lines of a group
    that fails, and lines holding a value not allowed, are re-read one by one in file order, so
    that the error names the first bad value of the file.
    """
    groups: dict[int, list[int]] = {}
    for index, row in enumerate(rows):
        groups.setdefault(sum(row.lengths), []).append(index)
    values: list[np.ndarray] = [np.empty(0)] * len(rows)
    suspects: list[int] = []
    for total, indices in groups.items():
        matrix = _load_rows([rows[index].loadtxt_row for index in indices])
        if matrix is None or matrix.shape != (len(indices), total):
            suspects.extend(indices)
            continue
        not_allowed = ~np.isfinite(matrix) if forbid_missing else np.isinf(matrix)
        suspects.extend(indices[position] for position in np.flatnonzero(not_allowed.any(axis=1)))
        for position, index in enumerate(indices):
            values[index] = matrix[position]
    for index in sorted(suspects):
        values[index] = _parse_line(rows[index], forbid_missing, source)
    return values


def _as_loadtxt_row(values_text: str) -> str:
    """A series' values (without label) as a ``np.loadtxt`` row: ``,`` between all, ``nan`` for ``?``."""
    row = values_text.replace(":", ",")
    return row.replace(MISSING_MARK, "nan") if MISSING_MARK in row else row


def _load_rows(rows: list[str]) -> np.ndarray | None:
    """``rows`` parsed by ``np.loadtxt`` as a 2-D array; None if a value is not a number.

    Warnings are errors here: ``np.loadtxt`` warns about, and skips, empty rows.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            return np.loadtxt(rows, delimiter=",", comments=None, ndmin=2)
    except (ValueError, UserWarning):
        return None


def _parse_value(token: str) -> float | None:
    """``token`` as one number, accepted exactly as in a whole row (decimal, nan, inf); None if it is not one."""
    parsed = _load_rows([token])
    return float(parsed[0, 0]) if parsed is not None and parsed.size == 1 else None


def _parse_line(row: _SeriesLine, forbid_missing: bool, source: str) -> np.ndarray:
    """One series' values on their own; raises naming the first value that is bad or not allowed."""
    dimensions = row.text.split(":")[: len(row.lengths)]
    parsed = _load_rows([row.loadtxt_row])
    if parsed is None or parsed.size != sum(row.lengths):
        parsed = np.concatenate(
            [
                _parse_dimension(dimension, number, source, row.line_number)
                for number, dimension in enumerate(dimensions, start=1)
            ]
        )
    values = parsed.ravel()
    not_allowed = ~np.isfinite(values) if forbid_missing else np.isinf(values)
    if not_allowed.any():
        first = int(np.argmax(not_allowed))
        ends = np.cumsum(row.lengths)
        dimension_index = int(np.searchsorted(ends, first, side="right"))
        position = first - (int(ends[dimension_index - 1]) if dimension_index else 0)
        token = _excerpt(dimensions[dimension_index].split(",")[position].strip())
        if np.isinf(values[first]):
            problem = f"an infinite value {token}"
        else:
            problem = f"a missing value {token} but @missing is false"
        raise _error(source, row.line_number, f"dimension {dimension_index + 1} has {problem}")
    return values


def _parse_dimension(dimension: str, number: int, source: str, line_number: int) -> np.ndarray:
    """One dimension's values parsed one by one, raising on the first that is not a number."""
    if not dimension.strip():
        raise _error(source, line_number, f"dimension {number} is empty")
    values = []
    for position, token in enumerate(dimension.split(","), start=1):
        token = token.strip()
        value = np.nan if token == MISSING_MARK else _parse_value(token)
        if value is None:
            problem = f"a non-numeric value {_excerpt(token)}" if token else f"an empty value at position {position}"
            raise _error(source, line_number, f"dimension {number} has {problem}")
        values.append(value)
    return np.array(values)


def _to_steps_by_dimensions(values: np.ndarray, lengths: list[int]) -> np.ndarray:
    """The flat values of one series as a (steps, dimensions) array, short dimensions NaN-padded at the end."""
    steps = max(lengths)
    if min(lengths) == steps:
        return np.ascontiguousarray(values.reshape(len(lengths), steps).T)
    padded = np.full((steps, len(lengths)), np.nan)
    start = 0
    for column, length in enumerate(lengths):
        padded[:length, column] = values[start : start + length]
        start += length
    return padded
