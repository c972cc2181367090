"""Tests for stage 2, validate: real Great Expectations on tiny frames, no mocks."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tasks import validate
from tasks.checks import suite
from tasks.core import artifacts
from tasks.core.common import PipelineError, run_main, write_parquet
from tasks.checks.eda import write_eda_plots

CLASSES = ["negative", "positive"]
METADATA = {"kind": "text_classification", "classes": CLASSES}
PARAMS = {
    "min_chars": 3,
    "max_chars": 200,
    "min_class_fraction": 0.2,
    "min_class_count": 2,
    "min_rows": 6,
    "rating_min": 1,
    "rating_max": 5,
}


def make_frame(rows: int = 10, rating: bool = True, metadata: bool = True) -> pd.DataFrame:
    """A valid canonical table: alternating labels, ratings that agree with them."""
    labels = [index % 2 for index in range(rows)]
    frame = pd.DataFrame(
        {
            "id": pd.Series([f"r{index}" for index in range(rows)], dtype="string"),
            "text": pd.Series([f"review number {index} is {'good' if label else 'bad'}"
                               for index, label in enumerate(labels)], dtype="string"),
            "label": pd.Series(labels, dtype="Int16"),
        }
    )
    if rating:
        frame["rating"] = [5.0 if label else 1.0 for label in labels]
    if metadata:
        frame["age"] = [20.0 + index for index in range(rows)]
        frame["recommended"] = [float(label) for label in labels]
        frame["department"] = pd.Series(["Tops"] * rows, dtype="string")
    return frame


# --------------------------------------------------------------------------- pure function


def test_suite_file_is_a_gx_suite():
    import great_expectations as gx

    spec = suite.load_suite()
    gx_suite = gx.ExpectationSuite(**spec)
    assert len(gx_suite.expectations) == len(spec["expectations"])
    assert {e["meta"]["scope"] for e in spec["expectations"]} == set(suite.SCOPES)


def test_valid_frame_passes():
    frame = make_frame()
    result = suite.validate_frame(frame, PARAMS)
    assert result.summary["success"] is True
    assert result.summary["rows_in"] == result.summary["rows_accepted"] == 10
    assert result.summary["rows_quarantined"] == 0 and result.summary["quarantine_reasons"] == {}
    pd.testing.assert_frame_equal(result.accepted, frame)
    assert list(result.quarantine.columns) == [*frame.columns, "reason"]
    types = {(e["expectation"], e["column"]) for e in result.summary["expectations"]}
    assert ("expect_column_values_to_be_between", "rating") in types
    assert ("expect_column_min_to_be_between", "share") in types
    assert all(e["success"] for e in result.summary["expectations"])


def test_row_problems_are_quarantined_with_their_reason():
    frame = make_frame(20)
    frame.loc[0, "text"] = pd.NA
    frame.loc[1, "text"] = ""
    frame.loc[2, "text"] = "   "
    frame.loc[3, "text"] = "ab"
    frame.loc[4, "text"] = "x" * 201
    frame.loc[5, "label"] = pd.NA
    frame.loc[6, "label"] = 2
    frame.loc[7, "rating"] = 7.0
    frame.loc[8, "rating"] = float("nan")
    frame.loc[9, "id"] = "r10"  # same id as row 10: row 9 comes first and is kept
    frame.loc[11, "id"] = pd.NA
    result = suite.validate_frame(frame, PARAMS)

    assert result.quarantine["reason"].tolist() == [
        "text is missing",
        "text is empty",
        "text is empty",
        "text length outside [3, 200] chars",
        "text length outside [3, 200] chars",
        "label is missing",
        "label 2 is not one of the classes",
        "rating 7 outside [1, 5]",
        "rating is missing",
        "duplicate id",
        "id is missing",
    ]
    assert result.quarantine["id"].tolist()[:10] == [*(f"r{i}" for i in range(9)), "r10"]
    assert result.accepted["id"].tolist() == ["r10", *[f"r{i}" for i in range(12, 20)]]
    # The kept duplicate is the first occurrence (old row 9, text of review 9).
    assert result.accepted.loc[0, "text"] == "review number 9 is good"
    assert result.summary["rows_quarantined"] == 11 and result.summary["rows_accepted"] == 9
    assert result.summary["quarantine_reasons"]["text is empty"] == 2
    assert result.summary["success"] is False
    unexpected = {(e["expectation"], e["column"]): e["unexpected_count"] for e in result.summary["expectations"]}
    assert unexpected[("expect_column_values_to_be_unique", "id")] == 2  # GX flags both rows
    assert unexpected[("expect_column_values_to_match_regex", "text")] == 2


def test_duplicate_keeps_the_first_clean_row_and_reasons_are_per_column():
    frame = make_frame(12)
    frame.loc[1, "id"] = "r0"
    frame.loc[0, "text"] = ""  # the first r0 is bad anyway: the second one stays
    frame.loc[2, "id"] = "r0"  # a third r0 after the kept one goes
    result = suite.validate_frame(frame, PARAMS)
    reasons = result.quarantine[["text", "reason"]].values.tolist()
    # The bad first r0 is also a duplicate of the kept one; its text reason comes first.
    assert reasons == [["", "text is empty; duplicate id"], ["review number 2 is bad", "duplicate id"]]
    assert result.summary["quarantine_reasons"] == {"duplicate id": 2, "text is empty": 1}
    assert result.accepted.loc[0, "text"] == "review number 1 is good"


def test_rating_checks_are_skipped_without_a_rating_column():
    result = suite.validate_frame(make_frame(rating=False, metadata=False), PARAMS)
    assert result.summary["rows_accepted"] == 10
    assert not [e for e in result.summary["expectations"] if e["column"] == "rating"]


def test_thresholds_come_from_params():
    frame = make_frame()
    frame.loc[0, "text"] = "a rather longer review, 35 chars.."
    frame.loc[frame["label"] == 0, "rating"] = 2.0
    frame.loc[2, "rating"] = 1.0
    assert suite.validate_frame(frame, PARAMS).summary["rows_quarantined"] == 0
    result = suite.validate_frame(frame, {**PARAMS, "max_chars": 30, "rating_min": 2})
    assert result.quarantine["reason"].tolist() == [
        "text length outside [3, 30] chars", "rating 1 outside [2, 5]"]


@pytest.mark.parametrize("bad", [{"min_rows": None}, {"min_chars": "three"}, {"min_class_fraction": 0.7}])
def test_bad_params_are_reported(bad):
    with pytest.raises(PipelineError, match="params.yaml: validate"):
        suite.validate_frame(make_frame(), {**PARAMS, **bad})


# --------------------------------------------------------------------------- table-level failures


def _drop_text(frame):
    return frame.drop(columns="text")


def _too_few_rows(frame):
    frame.loc[: len(frame) - 5, "text"] = ""  # 4 rows left < min_rows 6
    return frame


def _one_class(frame):
    frame["label"] = pd.Series([1] * len(frame), dtype="Int16")
    frame["rating"] = 5.0
    return frame


def _rare_class(frame):
    frame["label"] = pd.Series([0, 0] + [1] * (len(frame) - 2), dtype="Int16")  # 2 of 10 rows: share 0.2 >= 0.2
    return pd.concat([frame, frame.iloc[2:].assign(id=frame["id"].iloc[2:] + "b")], ignore_index=True)  # 2 of 18 < 0.2


TABLE_FAILURES = [
    (_drop_text, "expect_column_to_exist failed for column 'text'"),
    (_too_few_rows, "expect_table_row_count_to_be_between failed for the table"),
    (_one_class, "expect_column_min_to_be_between failed for column 'count'.*classes: 'negative' 0 rows"),
    (_rare_class, "expect_column_min_to_be_between failed for column 'share'.*classes: 'negative' 2 rows \\(11.1%\\)"),
]


def _run_stage(tmp_path: Path, frame: pd.DataFrame, params: dict = PARAMS) -> None:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"validate": params}))
    write_parquet(frame, tmp_path / artifacts.INGESTED, metadata=METADATA)
    validate.main()


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for folder in ("data/validated", "reports")
        for path in sorted((root / folder).rglob("*"))
        if path.is_file()
    }


@pytest.mark.parametrize("breaker,message", TABLE_FAILURES, ids=[f.__name__ for f, _ in TABLE_FAILURES])
def test_table_failure_stops_and_writes_nothing(tmp_path, monkeypatch, breaker, message):
    monkeypatch.chdir(tmp_path)
    _run_stage(tmp_path, make_frame())
    before = _snapshot(tmp_path)
    assert "data/validated/reviews.parquet" in before and "reports/data_docs/index.html" in before

    with pytest.raises(PipelineError, match=message):
        _run_stage(tmp_path, breaker(make_frame()))
    assert _snapshot(tmp_path) == before
    assert not [p for p in tmp_path.rglob(".*") if p.name != ".gitignore"]  # no temporaries left


def test_table_failure_exits_non_zero(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"validate": PARAMS}))
    write_parquet(_rare_class(make_frame()), tmp_path / artifacts.INGESTED, metadata=METADATA)
    with pytest.raises(SystemExit) as exit_info:
        run_main(validate.main)
    assert exit_info.value.code != 0
    assert "expect_column_min_to_be_between failed for column 'share'" in capsys.readouterr().err
    assert not (tmp_path / "data/validated").exists() and not (tmp_path / "reports").exists()


# --------------------------------------------------------------------------- outputs


def test_stage_writes_outputs_data_docs_and_eda(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    frame = make_frame(12)
    frame.loc[0, "text"] = ""
    _run_stage(tmp_path, frame)

    accepted = pd.read_parquet(artifacts.VALIDATED)
    quarantine = pd.read_parquet(artifacts.QUARANTINE)
    assert len(accepted) == 11 and quarantine["reason"].tolist() == ["text is empty"]
    summary = json.loads(artifacts.VALIDATION_SUMMARY.read_text())
    assert summary["rows_in"] == 12 and summary["rows_accepted"] == 11 and summary["rows_quarantined"] == 1
    assert summary["quarantine_reasons"] == {"text is empty": 1}
    assert summary["data_docs"] == "reports/data_docs/index.html"
    assert {"expectation", "column", "success", "unexpected_count"} <= set(summary["expectations"][0])

    index = Path(summary["data_docs"])
    assert index.is_file() and "text_classification.row" in index.read_text()
    assert list(Path("reports/data_docs/validations").rglob("*.html"))

    eda = Path("reports/eda")
    for name in ("class_counts", "text_length_histogram", "rating_counts", "recommended_counts", "age_histogram"):
        assert (eda / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (eda / "class_counts.csv").read_text().splitlines() == ["label,count", "negative,5", "positive,6"]
    assert not (tmp_path / "gx").exists() and not (tmp_path / "great_expectations").exists()


def test_eda_plots_only_for_columns_present(tmp_path):
    written = write_eda_plots(make_frame(rating=False, metadata=False), tmp_path / "eda", CLASSES)
    assert sorted(path.name for path in written) == [
        "class_counts.csv", "class_counts.png", "text_length_histogram.png"]


@pytest.mark.parametrize("numbers,text", [([5, 1], None), (["5", "1"], "n/a")], ids=["integers", "text"])
def test_a_generic_table_rating_column_of_any_type_validates(tmp_path, monkeypatch, numbers, text):
    """A table's own rating column (the clothing CSV read with the table profile: integers) with
    rating bounds auto; a non-numeric rating is quarantined, never a GX type error."""
    monkeypatch.chdir(tmp_path)
    frame = make_frame(12)
    frame["rating"] = pd.Series([numbers[index % 2] for index in range(12)], dtype=object)
    if text:
        frame.loc[[0, 1], "rating"] = text
    _run_stage(tmp_path, frame, {**PARAMS, "rating_min": "auto", "rating_max": "auto"})
    assert len(pd.read_parquet(artifacts.QUARANTINE)) == (2 if text else 0)
