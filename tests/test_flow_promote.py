"""The promotion gate (pure decision + champion record) and the report builders."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows import reports
from flows.promote import DEFAULTS, promote_params, read_champion, should_promote, write_champion


def record(model: str = "m1", **metrics) -> dict:
    return {"model_md5": model, "metrics": {"macro_f1": 0.7, "roc_auc": 0.8, **metrics}}


def test_params_defaults_and_overrides():
    assert promote_params({}) == DEFAULTS
    merged = promote_params({"promote": {"metric": "roc_auc", "min_improvement": "0.01", "floors": {"macro_f1": 0.6}}})
    assert merged == {"metric": "roc_auc", "min_improvement": 0.01, "floors": {"macro_f1": 0.6}}
    assert promote_params({"promote": {"floors": {}}})["floors"] == {}
    with pytest.raises(ValueError, match="promote.metric"):
        promote_params({"promote": {"metric": ""}})


@pytest.mark.parametrize(
    ("candidate", "champion", "params", "expected", "why"),
    [
        (record(), None, {}, True, "no champion yet"),
        (record(roc_auc=0.45), None, {}, False, "below the floor"),
        (record(roc_auc=None), None, {}, False, "no roc_auc"),
        (record(macro_f1=None), None, {"floors": {}}, False, "no macro_f1"),
        (record("m2", macro_f1=0.75), record(), {}, True, "beats the champion"),
        (record("m2", macro_f1=0.70), record(), {}, False, "does not beat"),  # a tie does not beat
        (record("m2", macro_f1=0.705), record(), {"min_improvement": 0.01}, False, "does not beat"),
        (record("m2", macro_f1=0.72), record(), {"min_improvement": 0.01}, True, "beats"),
        (record("m1", macro_f1=0.9), record(), {}, False, "already the champion"),
        (record("m2", roc_auc=0.9), record(), {"metric": "roc_auc"}, True, "roc_auc 0.9000 beats"),
        (record("m2", macro_f1=0.9, roc_auc=0.55), record(), {"floors": {"roc_auc": 0.6}}, False, "below the floor 0.6"),
    ],
)
def test_should_promote(candidate, champion, params, expected, why):
    promoted, reason = should_promote(candidate, champion, params)
    assert promoted is expected
    assert why in reason


def test_float_noise_does_not_promote():
    champion = record(macro_f1=0.1 + 0.2)
    assert not should_promote(record("m2", macro_f1=0.3), champion, {})[0]


def test_champion_record_is_replaced_whole(tmp_path: Path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models/model.keras").write_text("v1")
    assert read_champion(tmp_path) is None
    write_champion(tmp_path, record("m1"), "models")
    assert read_champion(tmp_path)["model_md5"] == "m1"
    (tmp_path / "models/model.keras").write_text("v2")
    write_champion(tmp_path, record("m2"), "models")
    assert read_champion(tmp_path)["model_md5"] == "m2"
    assert "registry" not in read_champion(tmp_path)  # no git here: nothing to tag (tests/test_registry.py tags)
    assert (tmp_path / "champion/model/model.keras").read_text() == "v2"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["champion", "models"]  # no temporaries left


def test_report_tables(tmp_path: Path):
    metrics = {"accuracy": 0.8, "macro_f1": 0.75, "roc_auc": 0.9, "majority_rate": 0.6, "n_test": 50}
    rows = {row["metric"]: row for row in reports.metrics_table(metrics, {"accuracy": 0.7, "n_test": 50})}
    assert rows["accuracy"] == {"metric": "accuracy", "this_run": 0.8, "previous_run": 0.7, "change": 0.1,
                                "majority_baseline": 0.6}
    assert rows["macro_f1"]["majority_baseline"] == round(0.6 / 1.6, 4) and rows["roc_auc"]["majority_baseline"] == 0.5
    assert rows["macro_f1"]["previous_run"] is None
    (tmp_path / "confusion.csv").write_text("actual,predicted\nnegative,negative\nnegative,positive\npositive,positive\n"
                                            "positive,positive\npositive,negative\n")
    assert reports.confusion_table(tmp_path / "confusion.csv") == [
        {"actual \\ predicted": "negative", "predicted negative": 1, "predicted positive": 1},
        {"actual \\ predicted": "positive", "predicted negative": 1, "predicted positive": 2},
    ]
    (tmp_path / "confusion.csv").write_text("actual,predicted\nb,b\na,c\nc,c\n")
    assert [list(row.values()) for row in reports.confusion_table(tmp_path / "confusion.csv")] == [
        ["a", 0, 0, 1], ["b", 0, 1, 0], ["c", 0, 0, 1]]
    rows = {row["metric"]: row for row in reports.metrics_table({"macro_f1": 0.5, "majority_rate": 0.5, "n_classes": 4}, None)}
    assert rows["macro_f1"]["majority_baseline"] == round(2 * 0.5 / 1.5 / 4, 4)
    (tmp_path / "counts.csv").write_text("label,count\nnegative,30\npositive,90\n")
    assert reports.class_balance_table(tmp_path / "counts.csv")[1] == {"label": "positive", "count": 90, "share": 0.75}
    summary = {"success": True, "suite": "reviews", "rows_in": 10, "rows_accepted": 9, "rows_quarantined": 1,
               "quarantine_reasons": {"too short": 1}, "data_docs": "reports/data_docs/index.html",
               "expectations": [{"expectation": "a", "success": True}, {"expectation": "b", "column": "text", "success": False,
                                                                       "scope": "row", "unexpected_count": 1}]}
    docs = reports.site_link("GX Data Docs", "http://127.0.0.1:8765/data_docs/index.html", served=True)
    text = reports.validation_markdown(summary, "ran the stage", [docs])
    assert "| expectations passed | 1 |" in text and "| expectations failed | 1 |" in text
    assert "| rows quarantined | 1 |" in text and "| quarantined: too short | 1 |" in text
    assert "DVC ran the stage; suite `reviews`." in text and "- `b` on `text` (row): 1 unexpected" in text
    assert "- [GX Data Docs](http://127.0.0.1:8765/data_docs/index.html)" in text
    assert reports.progress_text(json.loads('{"epoch": 2, "epochs": 5, "val_auc": 0.81234, "loss": 0.3}')) == \
        "epoch 2 of 5 — val_auc 0.8123"
