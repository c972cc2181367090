"""The whole DVC pipeline end to end, on a real git + DVC repo with tiny data."""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from conftest import FIRST_REPRO_LOG, run, up_to_date

STAGES = ["source", "ingest", "validate", "clean", "tokenize", "baseline", "pretrain", "train", "evaluate"]


def ran_stages(output: str) -> list[str]:
    return [stage for stage in STAGES if f"Running stage '{stage}'" in output]


def test_repro_runs_every_stage_then_nothing(trained_project: Path, trained_copy: Path):
    project = trained_copy
    first = (trained_project.parent / FIRST_REPRO_LOG).read_text()
    assert ran_stages(first) == STAGES
    metrics = json.loads((project / "metrics/evaluate.json").read_text())
    for key in ("accuracy", "macro_f1", "minority_f1", "roc_auc", "majority_rate", "n_test"):
        assert key in metrics
    # The synthetic sentiment words are learnable: far better than guessing the majority.
    assert metrics["roc_auc"] > 0.8
    second = run(["dvc", "repro"], project)
    assert ran_stages(second.stdout) == ["source"]  # it re-lists what ingest.source matches: unchanged
    assert up_to_date(run(["dvc", "status"], project).stdout)


def test_train_param_change_reruns_only_train_and_evaluate(trained_copy: Path):
    project = trained_copy
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train"]["text_classification"]["epochs"] = 2
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert ran_stages(run(["dvc", "repro"], project).stdout) == ["source", "train", "evaluate"]


def test_metrics_and_plots_commands_work(trained_project: Path):
    shown = run(["dvc", "metrics", "show", "--json"], trained_project).stdout
    assert "roc_auc" in shown
    run(["dvc", "metrics", "diff"], trained_project)
    out = run(["dvc", "plots", "show", "--out", "plots_html"], trained_project)
    assert (trained_project / "plots_html" / "index.html").exists(), out.stdout


def test_experiment_with_dataset_switch(project: Path, tmp_path: Path):
    """Switching data is a parameter change: a JSONL file through the generic table profile."""
    frame = __import__("conftest").synthetic_reviews(rows=200, seed=3)
    frame.rename(columns={"text": "body", "label": "sentiment"}).assign(
        sentiment=lambda f: f["sentiment"].map({1: "pos", 0: "neg"})
    ).to_json(project / "data/raw/other.jsonl", orient="records", lines=True)
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "other data"], project)
    result = run(
        ["dvc", "exp", "run", "-S", "ingest.source=data/raw/other.jsonl", "-S", "ingest.text_columns=[body]",
         "-S", "ingest.label_column=sentiment"],
        project,
    )
    assert "Running stage 'ingest'" in result.stdout
    assert json.loads((project / "metrics/ingest.json").read_text())["rows"] == 200
