"""Drift checks in the validate stage: the accepted rows against the last accepted data's profile.

Pure functions on small frames, then the stage itself (real GX) in a scratch directory. The
DVC side (the reference survives between `dvc repro` runs; a drift failure changes nothing)
is in tests/test_reliability.py, on its trained project.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import synthetic_reviews
from tasks import validate
from tasks.checks import drift as drift_checks
from tasks.core import artifacts
from tasks.core.common import PipelineError, write_parquet

SETTINGS = drift_checks.drift_params({})
STAGE_PARAMS = {"min_chars": 3, "max_chars": 100000, "min_class_fraction": 0.02, "min_class_count": 5, "min_rows": 20,
                "rating_min": 1, "rating_max": 5}
CLASSES = ["negative", "positive"]


def reviews(rows: int = 400, seed: int = 0, positive_rate: float = 0.7, department: str | None = "Tops") -> pd.DataFrame:
    frame = synthetic_reviews(rows, seed, positive_rate).astype({"id": "string", "text": "string"})
    frame["label"] = frame["label"].astype("Int16")
    if department:
        frame["department"] = pd.Series([department if i % 3 else "Dresses" for i in range(rows)], dtype="string")
    return frame


def compare(reference: pd.DataFrame, incoming: pd.DataFrame, settings: dict = SETTINGS) -> dict:
    return drift_checks.compare_with_reference(incoming, drift_checks.data_profile(reference, settings, CLASSES), settings, CLASSES)


# --------------------------------------------------------------------------- pure functions


def test_profile_is_small_deterministic_json():
    frame = reviews()
    profile = drift_checks.data_profile(frame, SETTINGS, CLASSES)
    assert profile == drift_checks.data_profile(frame.copy(), SETTINGS, CLASSES)
    assert json.loads(json.dumps(profile)) == profile
    assert profile["rows"] == 400 and profile["columns"] == ["department", "id", "label", "text"]
    assert abs(profile["class_shares"]["positive"] - frame["label"].mean()) < 1e-6
    assert abs(sum(profile["length"]["shares"]) - 1) < 1e-6
    assert len(profile["length"]["shares"]) == len(profile["length"]["edges"]) + 1
    assert profile["categories"] == {"department": ["Dresses", "Tops"]}
    assert "love" in profile["vocabulary"]["words"] and len(json.dumps(profile)) < 20_000


def test_no_reference_yet():
    drift = drift_checks.compare_with_reference(reviews(), None, SETTINGS)
    assert drift["status"] == "no reference yet"
    assert drift_checks.drift_lines(drift, "fail") == drift_checks.drift_lines(drift, "warn") == []


def test_same_kind_of_data_passes():
    drift = compare(reviews(seed=0), reviews(seed=1))
    assert drift["status"] == "ok", drift
    checks = drift["checks"]
    assert set(checks) == set(drift_checks.DRIFT_CHECKS)
    assert checks["class_share_delta"]["value"] < 0.1
    assert checks["length_psi"]["value"] < 0.1
    assert checks["vocabulary_overlap_min"]["value"] == 1.0
    assert checks["new_category_share"]["value"] == 0.0
    identical = compare(reviews(), reviews())
    assert identical["checks"]["length_psi"]["value"] == 0 and identical["checks"]["class_share_delta"]["value"] == 0


def test_class_balance_shift_fails_with_values():
    drift = compare(reviews(positive_rate=0.7), reviews(seed=1, positive_rate=0.2))
    check = drift["checks"]["class_share_delta"]
    assert drift["status"] == "fail" and check["status"] == "fail" and check["value"] > 0.25
    [line] = drift_checks.drift_lines(drift, "fail")
    assert line.startswith("drift check 'class_share_delta'") and "fail threshold 0.25" in line
    assert re.search(r"\(class 'positive' is \d+\.\d% of the rows, reference \d+\.\d%\)$", line), line


def test_length_shift_fails():
    longer = reviews(seed=1)
    longer["text"] = longer["text"] + " " + longer["text"] + " " + longer["text"]
    drift = compare(reviews(), longer)
    check = drift["checks"]["length_psi"]
    assert check["status"] == "fail" and check["value"] > 1
    assert check["median"] > 2 * check["reference_median"]


def test_vocabulary_shift_fails_and_names_new_words():
    other = reviews(seed=1)
    other["text"] = [f"zebra{i % 40} quokka{i % 17} " + text for i, text in enumerate(other["text"])]
    drift = compare(reviews(), other)
    check = drift["checks"]["vocabulary_overlap_min"]
    assert check["status"] == "fail" and check["value"] < 0.6, check
    assert any(word.startswith(("zebra", "quokka")) for word in check["unseen_top_words"])


def test_new_categories_warn_then_fail():
    few_new = reviews(seed=1)
    few_new.loc[:9, "department"] = "Jackets"  # 10 of 400 rows: 2.5%
    drift = compare(reviews(), few_new)
    check = drift["checks"]["new_category_share"]
    assert drift["status"] == "warn" and check["status"] == "warn"
    assert check["columns"]["department"]["new_values"] == {"Jackets": 10}
    many_new = reviews(seed=1, department="Intimates")
    assert compare(reviews(), many_new)["checks"]["new_category_share"]["status"] == "fail"


def test_different_columns_are_not_compared():
    drift = compare(reviews(department=None), reviews(seed=1))
    assert drift["status"] == "not compared" and "another source" in drift["note"]
    assert drift_checks.drift_lines(drift, "fail") == []


def test_null_thresholds_switch_a_level_off():
    settings = drift_checks.drift_params({"drift": {"class_share_delta": {"fail": None}}})
    assert settings["class_share_delta"] == {"warn": 0.1, "fail": None}
    drift = compare(reviews(positive_rate=0.7), reviews(seed=1, positive_rate=0.2), settings)
    assert drift["checks"]["class_share_delta"]["status"] == "warn" and drift["status"] == "warn"


@pytest.mark.parametrize("drift,message", [
    ("x", "must be a mapping"),
    ({"lenght_psi": {"warn": 1}}, "unknown key"),
    ({"length_psi": 0.2}, "length_psi must be"),
    ({"length_psi": {"warn": "high"}}, "length_psi.warn must be a number"),
    ({"length_psi": {"warn": 0.5, "fail": 0.2}}, "warn .* must come before fail"),
    ({"vocabulary_overlap_min": {"warn": 0.5, "fail": 0.8}}, "warn .* must come before fail"),
    ({"vocabulary_top_n": 0}, "vocabulary_top_n"),
    ({"categorical_columns": "department"}, "categorical_columns"),
])
def test_bad_drift_params_are_reported(drift, message):
    with pytest.raises(PipelineError, match=message):
        drift_checks.drift_params({"drift": drift})


def test_params_yaml_drift_section_is_valid():
    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    settings = drift_checks.drift_params(params["validate"])
    assert set(params["validate"]["drift"]) <= set(drift_checks.DRIFT_DEFAULTS)
    assert settings["length_psi"]["fail"] is not None


def test_corrupt_reference_is_reported(tmp_path):
    path = tmp_path / "reference_profile.json"
    assert drift_checks.read_reference(path) is None
    path.write_text("{not json")
    with pytest.raises(PipelineError, match="reference_profile.json: drift reference profile is not valid JSON"):
        drift_checks.read_reference(path)


# --------------------------------------------------------------------------- the stage


def _run_stage(root: Path, frame: pd.DataFrame, drift: dict | None = None) -> None:
    (root / "params.yaml").write_text(yaml.safe_dump({"validate": {**STAGE_PARAMS, **({"drift": drift} if drift else {})}}))
    write_parquet(frame, root / artifacts.INGESTED, metadata={"kind": "text_classification", "classes": CLASSES})
    validate.main()


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes()
            for folder in ("data/validated", "reports") for p in sorted((root / folder).rglob("*")) if p.is_file()}


def test_stage_records_drift_keeps_the_reference_and_stops_on_failure(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _run_stage(tmp_path, reviews())
    summary = json.loads(artifacts.VALIDATION_SUMMARY.read_text())
    assert summary["drift"]["status"] == "no reference yet"
    first_reference = artifacts.REFERENCE_PROFILE.read_text()
    assert json.loads(first_reference)["rows"] == 400

    # A warning: reported on stderr and in the summary, the run goes on, the reference moves on.
    few_new = reviews(seed=1)
    few_new.loc[:9, "department"] = "Jackets"
    _run_stage(tmp_path, few_new)
    err = capsys.readouterr().err
    assert "validate: warning: drift check 'new_category_share'" in err and "Jackets" in err
    summary = json.loads(artifacts.VALIDATION_SUMMARY.read_text())
    assert summary["drift"]["status"] == "warn"
    assert summary["drift"]["checks"]["new_category_share"]["columns"]["department"]["new_values"] == {"Jackets": 10}
    assert "Jackets" in json.loads(artifacts.REFERENCE_PROFILE.read_text())["categories"]["department"]

    # A failure: the stage stops naming the check and its values, and nothing changes on disk.
    before = _snapshot(tmp_path)
    with pytest.raises(PipelineError) as error:
        _run_stage(tmp_path, reviews(seed=2, positive_rate=0.15))
    message = str(error.value)
    assert "drift check 'class_share_delta'" in message and "fail threshold 0.25" in message
    assert str(artifacts.REFERENCE_PROFILE) in message and "Nothing was written" in message
    assert _snapshot(tmp_path) == before
    assert not [p for p in tmp_path.rglob(".*") if p.name != ".gitignore"]  # no temporaries left

    # Accepting the change on purpose: delete the reference, run again.
    artifacts.REFERENCE_PROFILE.unlink()
    _run_stage(tmp_path, reviews(seed=2, positive_rate=0.15))
    assert json.loads(artifacts.VALIDATION_SUMMARY.read_text())["drift"]["status"] == "no reference yet"
