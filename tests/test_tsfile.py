"""The ``.ts`` reader: written-out files for each corner case and each error, and the real JapaneseVowels files."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED
from tasks.core.common import PipelineError
from tasks.readers.tsfile import parse_ts, read_ts

SEQUENCES = SHARED / "data" / "sequences"
NAN = np.nan

# Two dimensions, labels a and b; @data is line 9, so the first series is line 10.
PAIRS_HEADER = """\
# Two dimensions, labels a and b.
@problemName Pairs
@timeStamps false
@missing false
@univariate false
@dimensions 2
@equalLength false
@classLabel true a b
@data
"""


def pairs(*series_lines: str, header: str = PAIRS_HEADER) -> str:
    return header + "".join(line + "\n" for line in series_lines)


def assert_series(actual: np.ndarray, expected: list[list[float]]) -> None:
    """Exact values (NaN equal to NaN), float64, shape (steps, dimensions)."""
    assert actual.dtype == np.float64
    np.testing.assert_array_equal(actual, np.array(expected, dtype=np.float64))


def test_univariate_equal_length():
    data = parse_ts(
        """\
# A univariate problem.
@problemName Tiny
@timeStamps false
@missing false
@univariate true
@equalLength true
@seriesLength 3
@classLabel true 1 2
@data
1.5,2,-3e-1:1
4,5.25,6:2
"""
    )
    assert len(data.series) == 2
    assert_series(data.series[0], [[1.5], [2.0], [-0.3]])
    assert_series(data.series[1], [[4.0], [5.25], [6.0]])
    assert data.labels == ["1", "2"]
    assert data.header == {
        "problemName": "Tiny",
        "timeStamps": False,
        "missing": False,
        "univariate": True,
        "dimensions": None,
        "equalLength": True,
        "seriesLength": 3,
        "classLabel": ["1", "2"],
        "targetLabel": None,
    }


def test_multivariate_series_of_different_lengths():
    data = parse_ts(pairs("1,2,3:4,5,6:a", "7,8:9,10:b"))
    assert_series(data.series[0], [[1, 4], [2, 5], [3, 6]])
    assert_series(data.series[1], [[7, 9], [8, 10]])
    assert data.labels == ["a", "b"]
    assert data.header["dimensions"] == 2


def test_dimensions_of_unequal_length_are_padded_with_nan_at_the_end():
    # Padding is not a missing value: allowed although @missing is false.
    data = parse_ts(pairs("1,2,3:4:a", "5:6,7:b"))
    assert_series(data.series[0], [[1, 4], [2, NAN], [3, NAN]])
    assert_series(data.series[1], [[5, 6], [NAN, 7]])


def test_string_class_labels():
    data = parse_ts(
        """\
@problemName Gait
@timeStamps false
@univariate true
@classLabel true walk run
@data
0.1,0.2:walk
0.9,1.1,1.3:run
0.2:walk
"""
    )
    assert data.labels == ["walk", "run", "walk"]
    assert data.header["classLabel"] == ["walk", "run"]
    assert [series.shape for series in data.series] == [(2, 1), (3, 1), (1, 1)]


def test_missing_values_become_nan():
    text = pairs("?,2,NaN:nan,5,?:a", "1:?:b").replace("@missing false", "@missing true")
    data = parse_ts(text)
    assert_series(data.series[0], [[NAN, NAN], [2, 5], [NAN, NAN]])
    assert_series(data.series[1], [[1, NAN]])


def test_comments_blank_lines_whitespace_and_crlf_are_ignored():
    text = """\
# comment before the header

@problemName Spaced
# comment inside the header
   @timeStamps false
@univariate false
@classLabel true a b

@data
# comment among the series
 1 , 2 : 3 , 4 : a

5,6:7,8:b
"""
    data = parse_ts(text.replace("\n", "\r\n"))
    assert_series(data.series[0], [[1, 3], [2, 4]])
    assert_series(data.series[1], [[5, 7], [6, 8]])
    assert data.labels == ["a", "b"]


def test_header_keywords_are_case_insensitive_but_names_and_labels_keep_their_case():
    text = """\
@PROBLEMNAME Vowels Of Japan
@TimeStamps FALSE
@MISSING True
@Univariate false
@DIMENSIONS 2
@EqualLength TRUE
@SeriesLength 2
@classlabel TRUE Walk run
@DATA
1,2:3,4:Walk
5,6:7,8:run
"""
    data = parse_ts(text)
    assert data.header["problemName"] == "Vowels Of Japan"
    assert data.header["missing"] is True and data.header["equalLength"] is True
    assert data.header["dimensions"] == 2 and data.header["seriesLength"] == 2
    assert data.labels == ["Walk", "run"]
    with pytest.raises(PipelineError, match=r"line 10: class label 'walk' is not among the declared @classLabel values Walk run$"):
        parse_ts(text.replace(":Walk", ":walk"))


def test_file_without_class_labels_and_without_optional_tags():
    data = parse_ts(
        """\
@problemName Unlabelled
@timeStamps false
@univariate false
@classLabel false
@data
1,2:3,4:5,6
7:8:9
"""
    )
    assert data.labels is None
    assert data.header["classLabel"] is None
    assert data.header["dimensions"] is None and data.header["missing"] is None and data.header["equalLength"] is None
    assert_series(data.series[0], [[1, 3, 5], [2, 4, 6]])
    assert_series(data.series[1], [[7, 8, 9]])


def test_regression_targets_are_kept_as_text():
    text = """\
@problemName Rain
@timeStamps false
@univariate true
@targetLabel true
@data
1,2,3:0.5
4,5:-2
"""
    data = parse_ts(text)
    assert data.labels == ["0.5", "-2"]
    assert data.header["targetLabel"] is True and data.header["classLabel"] is None
    with pytest.raises(PipelineError, match=r"line 7: target value 'heavy' is not a finite number"):
        parse_ts(text.replace(":-2", ":heavy"))
    with pytest.raises(PipelineError, match=r"line 7: no label after the last ':'"):
        parse_ts(text.replace("4,5:-2", "4"))


def header_with(old: str, new: str) -> str:
    return PAIRS_HEADER.replace(old, new)


UNIVARIATE_HEADER = header_with("@univariate false\n@dimensions 2", "@univariate true")  # first series: line 9
NO_LABEL = "no label after the last ':'"

# id: (text, the line the error must name, what it must say)
MALFORMED = {
    "empty": ("", 1, "the file is empty"),
    "only-whitespace": (" \n\n\t\n", 1, "the file is empty"),
    "no-data-line": (header_with("@data\n", ""), 8, "no @data line"),
    "no-series": (PAIRS_HEADER + "# nothing here\n\n", 9, "no series after @data"),
    "dimensions-vs-header": (pairs("1,2:3,4:a", "1,2:a"), 11, "series has 1 dimension(s) but @dimensions is 2"),
    "dimensions-vs-first-series": (
        pairs("1:2:3:a", "1:2:a", header=header_with("@dimensions 2\n", "")),
        10,
        "series has 2 dimension(s) but the first series (line 9) has 3",
    ),
    "dimensions-vs-univariate": (pairs("1:2:a", header=UNIVARIATE_HEADER), 9, "series has 2 dimension(s) but @univariate is true"),
    "undeclared-label": (
        pairs("1,2:3,4:a", "1,2:3,4:c"), 11, "class label 'c' is not among the declared @classLabel values a b"
    ),
    "label-missing": (pairs("1,2:3,4:a", "1,2:3,4"), 11, NO_LABEL),
    "label-empty": (pairs("1,2:3,4:"), 10, NO_LABEL),
    "label-missing-univariate": (pairs("1,2,3", header=UNIVARIATE_HEADER), 9, NO_LABEL),
    "only-a-label": (pairs("b", header=UNIVARIATE_HEADER), 9, NO_LABEL),
    "non-numeric": (pairs("1,2:3,4:a", "1,2:3,abc:b"), 11, "dimension 2 has a non-numeric value 'abc'"),
    "hexadecimal": (pairs("1,2:0x10,4:a"), 10, "dimension 2 has a non-numeric value '0x10'"),
    "empty-value": (pairs("1,,2:3:a"), 10, "dimension 1 has an empty value at position 2"),
    "empty-dimension": (pairs("1,2::a"), 10, "dimension 2 is empty"),
    "missing-mark": (pairs("1,?:3,4:a"), 10, "dimension 1 has a missing value '?' but @missing is false"),
    "missing-nan": (pairs("1,2:3,4:a", "1,2:NaN,4:b"), 11, "dimension 2 has a missing value 'NaN' but @missing is false"),
    "infinite": (pairs("1,2:3,-inf:a"), 10, "dimension 2 has an infinite value '-inf'"),
    "overflow": (pairs("1e999,2:3,4:a"), 10, "dimension 1 has an infinite value '1e999'"),
    "equal-length-contradicted": (
        pairs("1,2:3,4:a", "1,2,3:4,5,6:b", header=header_with("@equalLength false", "@equalLength true")),
        11,
        "dimension 1 has 3 value(s) but @equalLength is true and the first series (line 10) has 2",
    ),
    "equal-length-ragged-dimensions": (
        pairs("1,2:3:a", header=header_with("@equalLength false", "@equalLength true")),
        10,
        "dimension 2 has 1 value(s) but @equalLength is true",
    ),
    "series-length-contradicted": (
        pairs("1,2,3:4,5:a", header=header_with("@data", "@seriesLength 3\n@data")),
        11,
        "dimension 2 has 2 value(s) but @seriesLength is 3",
    ),
    "bad-boolean": (header_with("@missing false", "@missing maybe"), 4, "@missing must be true or false, got 'maybe'"),
    "bad-count": (header_with("@dimensions 2", "@dimensions two"), 6, "@dimensions must be a positive whole number"),
    "zero-count": (header_with("@dimensions 2", "@dimensions 0"), 6, "@dimensions must be a positive whole number"),
    "no-problem-name": (header_with("@problemName Pairs", "@problemName"), 2, "@problemName needs a name"),
    "labels-not-listed": (header_with("true a b", "true"), 8, "@classLabel must be 'true L1 L2 ...' or 'false'"),
    "labels-after-false": (header_with("true a b", "false a b"), 8, "@classLabel must be 'true L1 L2 ...' or 'false'"),
    "label-twice": (header_with("true a b", "true a b a"), 8, "@classLabel declares 'a' more than once"),
    "unknown-tag": (header_with("@data", "@colour blue\n@data"), 9, "unknown header tag '@colour'"),
    "tag-twice": (header_with("@data", "@MISSING true\n@data"), 9, "@missing given twice (first on line 4)"),
    "required-tag-absent": (header_with("@timeStamps false\n", ""), 8, "@data before the required header tag(s) @timeStamps"),
    "labels-tag-absent": (header_with("@classLabel true a b\n", ""), 8, "required header tag(s) @classLabel (or @targetLabel)"),
    "univariate-vs-dimensions": (
        header_with("@univariate false", "@univariate true"), 9, "@univariate true contradicts @dimensions 2 (line 6)"
    ),
    "labels-and-targets": (header_with("@data", "@targetLabel true\n@data"), 10, "@classLabel true and @targetLabel true"),
    "data-with-value": (header_with("@data", "@data now"), 9, "@data takes no value"),
    "series-before-header": ("1,2:3,4:a\n" + PAIRS_HEADER, 1, "expected a @tag header line or a # comment before @data"),
    "header-after-data": (pairs("1,2:3,4:a", "@missing true"), 11, "header line '@missing true' after @data"),
    "time-stamps": (
        header_with("@timeStamps false", "@timeStamps true"), 3, "@timeStamps true: time-stamped data is not supported"
    ),
    "nul-byte": ("@problemName x\n@timeStamps \x00false\n", 2, "NUL byte"),
}


@pytest.mark.parametrize(("text", "line", "problem"), MALFORMED.values(), ids=list(MALFORMED))
def test_malformed_input_names_the_line(text: str, line: int, problem: str):
    with pytest.raises(PipelineError) as raised:
        parse_ts(text, source="bad.ts")
    message = str(raised.value)
    assert message.startswith(f"bad.ts: line {line}: "), message
    assert problem in message
    assert "\n" not in message


def test_the_first_bad_value_of_the_file_is_reported():
    # Lines 10 and 12 hold four values, line 11 three: the bulk parse groups 10 with 12, yet
    # the error must name line 11, the first bad line of the file.
    text = pairs("1,2:3,4:a", "1,x:3:b", "1,2:3,y:a")
    with pytest.raises(PipelineError, match=r"^<string>: line 11: dimension 1 has a non-numeric value 'x'$"):
        parse_ts(text)


def test_a_bad_value_deep_in_a_large_group_is_found():
    good = ["1,2:3,4:a"] * 500
    with pytest.raises(PipelineError, match=r"line 410: dimension 1 has a non-numeric value '2\.0\.0'"):
        parse_ts(pairs(*good[:400], "1,2.0.0:3,4:b", *good[400:]))


def test_parsing_is_vectorised():
    # 2,000 series x 28 steps x 28 dimensions (1.6 million values): about 0.2 s here; one
    # Python-level conversion per value would take well over the bound.
    rng = np.random.default_rng(0)
    row = ":".join(",".join(f"{value:.4f}" for value in dimension) for dimension in rng.random((28, 28)))
    text = pairs(*[f"{row}:a"] * 2000).replace("@dimensions 2", "@dimensions 28")
    started = time.perf_counter()
    data = parse_ts(text)
    elapsed = time.perf_counter() - started
    assert len(data.series) == 2000 and data.series[-1].shape == (28, 28)
    assert elapsed < 3.0, f"{elapsed:.1f} s"


def test_read_ts_reads_utf8_with_a_bom(tmp_path: Path):
    path = tmp_path / "bom.ts"
    path.write_bytes("\ufeff".encode() + pairs("1,2:3,4:a").replace("Pairs", "Paarë").encode())
    data = read_ts(path)
    assert data.header["problemName"] == "Paarë"
    assert_series(data.series[0], [[1, 3], [2, 4]])


def test_read_ts_names_the_file_and_the_line_of_bytes_that_are_not_utf8(tmp_path: Path):
    path = tmp_path / "latin1.ts"
    path.write_bytes(pairs("1,2:3,4:a").replace("Pairs", "Paarë").encode("latin-1"))
    with pytest.raises(PipelineError, match=rf"^{path}: line 2: not UTF-8 text \(byte 0xeb\)"):
        read_ts(path)


def test_read_ts_names_a_file_it_cannot_read(tmp_path: Path):
    with pytest.raises(PipelineError, match=r"absent\.ts: cannot read"):
        read_ts(tmp_path / "absent.ts")


def naive_series(path: Path) -> list[np.ndarray]:
    """An independent reading of a labelled file without missing values: float() per value."""
    lines = path.read_text().splitlines()
    data = lines[lines.index("@data") + 1 :]
    return [
        np.array([[float(value) for value in dimension.split(",")] for dimension in line.split(":")[:-1]]).T
        for line in data
    ]


@pytest.mark.skipif(not SEQUENCES.is_dir(), reason="../shared/data/sequences (JapaneseVowels) not present")
@pytest.mark.parametrize(("name", "count"), [("JapaneseVowels_TRAIN.ts", 270), ("JapaneseVowels_TEST.ts", 370)])
def test_japanese_vowels(name: str, count: int):
    path = SEQUENCES / name
    data = read_ts(path)
    assert len(data.series) == len(data.labels) == count
    assert all(series.shape[1] == 12 and 7 <= series.shape[0] <= 29 for series in data.series)
    assert not any(np.isnan(series).any() for series in data.series)
    assert set(data.labels) == {str(label) for label in range(1, 10)}
    assert data.header["classLabel"] == [str(label) for label in range(1, 10)]
    assert data.header["dimensions"] == 12 and data.header["equalLength"] is False
    expected = naive_series(path)
    assert all(np.array_equal(mine, theirs) for mine, theirs in zip(data.series, expected, strict=True))


@pytest.mark.skipif(not SEQUENCES.is_dir(), reason="../shared/data/sequences (JapaneseVowels) not present")
def test_japanese_vowels_known_values():
    train, test = read_ts(SEQUENCES / "JapaneseVowels_TRAIN.ts"), read_ts(SEQUENCES / "JapaneseVowels_TEST.ts")
    assert train.series[0][0, 0] == 1.860936
    lengths = [series.shape[0] for series in train.series + test.series]
    assert min(lengths) == 7 and max(lengths) == 29
