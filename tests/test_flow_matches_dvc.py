"""The Prefect flow and dvc.yaml cannot drift apart; the flow's DVC plumbing, without TensorFlow.

Fast: no stage command runs here except `dvc repro` of a stage that cannot get DVC's lock.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from prefect.cache_policies import NO_CACHE

from conftest import ROOT, make_project, run
from flows import dvcstages, pipeline, reports
from flows.serve import deployment_spec, schedules
from tasks.core import artifacts

STAGES = ["source", "ingest", "validate", "clean", "tokenize", "baseline", "pretrain", "train", "evaluate"]


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A git + DVC copy of the project (dvc.yaml, tasks/, flows/, prefect.yaml), never run."""
    return make_project(tmp_path_factory.mktemp("flowcheck") / "project")


def dvc_graph_edges(root: Path) -> set[tuple[str, str]]:
    """(upstream, downstream) stage pairs from DVC's own pipeline graph."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        graph = repo.index.graph  # edges point from a stage to the stages it depends on
        return {(dep.name, stage.name) for stage, dep in graph.edges}


def test_flow_tasks_are_dvc_yaml_stages_in_order(checkout: Path):
    declared = list(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"])
    planned = pipeline.plan(ROOT)
    assert [stage for stage, _ in planned] == declared == STAGES
    assert [task.name for _, task in planned] == declared
    from dvc.repo import Repo

    with Repo(str(checkout)) as repo:
        assert {stage.name for stage in repo.index.stages} == set(declared)


def test_flow_order_is_consistent_with_dvc_graph(checkout: Path):
    order = [stage for stage, _ in pipeline.plan(checkout)]
    edges = dvc_graph_edges(checkout)
    assert edges, "DVC sees no dependencies between stages"
    for upstream, downstream in edges:
        assert order.index(upstream) < order.index(downstream), f"{upstream} must run before {downstream}"
    # The flow's own reading of deps/outs finds the same edges as DVC.
    ours = {(up, stage) for stage, ups in dvcstages.upstream(dvcstages.read_stages(checkout)).items() for up in ups}
    assert ours == edges


def test_stage_tasks_options(checkout: Path):
    tasks = dict(pipeline.plan(checkout))
    assert set(pipeline.STAGE_OPTIONS) <= set(tasks) and set(pipeline.REPORTERS) <= set(tasks)
    for stage, task in tasks.items():
        assert task.cache_policy is NO_CACHE, f"{stage}: Prefect caching must be off (DVC decides)"
        assert pipeline.STAGE_TAG in task.tags
        assert task.task_run_name == stage
    assert tasks["ingest"].retries == 2 and tasks["ingest"].retry_condition_fn is not None
    assert tasks["validate"].retries == 0
    assert "gpu" in tasks["train"].tags
    assert not any("gpu" in task.tags for stage, task in tasks.items() if stage != "train")


def test_drift_is_caught_or_followed(tmp_path: Path):
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    # A new stage: the flow runs it too, after what it depends on.
    added = {**spec, "stages": {**spec["stages"], "report": {"cmd": "echo", "deps": ["metrics/evaluate.json"]}}}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(added, sort_keys=False))
    assert dvcstages.stage_order(tmp_path) == [*STAGES, "report"]
    # Listed out of order: the flow still runs upstream stages first.
    stages = spec["stages"]
    shuffled = {name: stages[name] for name in ["evaluate", "train", "baseline", "pretrain", "ingest", "validate", "clean", "tokenize", "source"]}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({**spec, "stages": shuffled}, sort_keys=False))
    assert dvcstages.stage_order(tmp_path) == STAGES
    # A renamed stage would silently lose its options (the gpu tag): refused.
    renamed = {("fit" if name == "train" else name): body for name, body in stages.items()}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({**spec, "stages": renamed}, sort_keys=False))
    with pytest.raises(ValueError, match="train"):
        pipeline.plan(tmp_path)
    # A cycle is reported, not looped on.
    cyclic = {**stages, "ingest": {**stages["ingest"], "deps": [*stages["ingest"]["deps"], "metrics/evaluate.json"]}}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({**spec, "stages": cyclic}, sort_keys=False))
    with pytest.raises(ValueError, match="cycle"):
        dvcstages.stage_order(tmp_path)


def test_report_paths_are_the_stages_paths():
    """The flows read the stages' outputs where dvc.yaml says they are (paths: tasks.core.artifacts)."""
    outs = {out for stage in dvcstages.read_stages(ROOT) for out in stage.outs}
    for path in (reports.METRICS, artifacts.VALIDATION_SUMMARY, artifacts.MODEL_DIR):
        assert str(path) in outs
    assert any(str(reports.CONFUSION).startswith(out + "/") for out in outs)
    assert any(str(reports.CLASS_COUNTS).startswith(out + "/") for out in outs)


def test_outcome_is_read_from_dvc_output():
    assert dvcstages.outcome("train", "Running stage 'train':\n> python -m tasks.train\n") == "ran"
    assert dvcstages.outcome("train", "Stage 'train' didn't change, skipping\nData and pipelines are up to date.") == "skipped"
    assert dvcstages.outcome("tokenize", "Stage 'tokenize' is cached - skipping run, checking out outputs") == "restored"
    assert dvcstages.outcome("train", "Running stage 'evaluate':") == "unknown"


def test_stage_failure_says_what_failed_and_whether_to_retry():
    bad_input = dvcstages.StageFailed("validate", 255, "error: validate: only one class\nERROR: failed to reproduce "
                                      "'validate': failed to run: python -m tasks.validate, exited with 2\n")
    assert "only one class" in str(bad_input) and bad_input.exit_code == 2 and not bad_input.transient
    offline = dvcstages.StageFailed("ingest", 255, "error: https://x/y.csv: could not download after 3 attempts "
                                    "(timed out)\nERROR: failed to reproduce 'ingest': ... exited with 2\n")
    assert offline.transient
    crashed = dvcstages.StageFailed("ingest", 255, "ERROR: failed to reproduce 'ingest': ... exited with -9\n")
    assert crashed.transient


def test_ingest_retries_only_transient_failures():
    from prefect.states import Failed

    retry = pipeline.STAGE_OPTIONS["ingest"]["retry_condition_fn"]
    offline = dvcstages.StageFailed("ingest", 255, "error: could not download after 3 attempts\n... exited with 2")
    missing = dvcstages.StageFailed("ingest", 255, "error: data/raw/x.csv: no such file\n... exited with 2")
    assert retry(None, None, Failed(data=offline)) is True
    assert retry(None, None, Failed(data=missing)) is False
    assert retry(None, None, Failed(data=dvcstages.CheckoutBusy("busy"))) is False


def test_dvc_lock_held_by_another_process_is_a_clear_error(checkout: Path):
    from dvc.repo import Repo

    with Repo(str(checkout)) as repo, repo.lock:
        with pytest.raises(dvcstages.CheckoutBusy, match="another run holds the DVC lock"):
            dvcstages.repro_stage("ingest", checkout, lock_attempts=1)
    assert not (checkout / "data/ingested").exists(), "nothing may be written without the lock"


def test_one_run_per_checkout(checkout: Path):
    with dvcstages.run_lock(checkout, holder="flow run first-run"):
        with pytest.raises(dvcstages.CheckoutBusy, match="another rnnflow run holds the checkout.*first-run"):
            with dvcstages.run_lock(checkout, timeout=0.2):
                pass
    with dvcstages.run_lock(checkout, timeout=0):  # released again
        pass


def test_overrides_use_dvc_set_param_semantics(tmp_path: Path):
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "params.yaml", project / "params.yaml")
    run(["git", "init", "-q"], project)
    run(["dvc", "init", "-q"], project)
    assert pipeline.to_hydra_overrides({"train.epochs": 3, "train.bidirectional": False, "train.model": "lstm",
                                        "ingest.text_columns": ["a", "b"]}) == [
        "train.epochs=3", "train.bidirectional=false", "train.model=lstm", 'ingest.text_columns=["a", "b"]']
    before = yaml.safe_load((project / "params.yaml").read_text())["train"]["text_classification"]
    changes = pipeline.apply_param_overrides(project, {"train.text_classification.epochs": str(before["epochs"] + 1),
                                                       "train.text_classification.units": 3, "+notes.reason": "retry"})
    assert changes == {"train.text_classification.epochs": [before["epochs"], before["epochs"] + 1],
                       "train.text_classification.units": [before["units"], 3], "notes": [None, {"reason": "retry"}]}
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["train"]["text_classification"]["epochs"] == before["epochs"] + 1 and params["notes"] == {"reason": "retry"}
    with pytest.raises(ValueError, match="cannot apply overrides"):
        pipeline.apply_param_overrides(project, {"train.epochz": 1})  # unknown keys need +, as in dvc exp run -S
    with pytest.raises(ValueError, match="dotted parameter name"):
        pipeline.to_hydra_overrides({"": 1})


def test_push_without_remote_fails_clearly(checkout: Path):
    with pytest.raises(ValueError, match="no default DVC remote"):
        dvcstages.default_remote(checkout)


def test_prefect_yaml_deployment():
    spec = deployment_spec(ROOT, "rnnflow-nightly")
    assert spec["entrypoint"] == "flows/pipeline.py:rnnflow_pipeline"
    assert spec["work_pool"]["name"] == "rnnflow-process"
    assert [entry["cron"] for entry in spec["schedules"]] == ["0 2 * * *"]
    assert spec["parameters"] == {"push": True}
    pull = yaml.safe_load((ROOT / "prefect.yaml").read_text())["pull"]
    assert pull == [{"prefect.deployments.steps.set_working_directory": {"directory": "{{ $RNNFLOW_HOME }}"}}]
    # flows.serve serves the same schedule.
    assert [schedule.cron for schedule in schedules(spec)] == ["0 2 * * *"]


def test_entrypoint_loads_the_flow(monkeypatch):
    from prefect.flows import load_flow_from_entrypoint

    monkeypatch.chdir(ROOT)
    flow = load_flow_from_entrypoint(deployment_spec(ROOT)["entrypoint"])
    assert flow.name == "rnnflow-pipeline"
    assert list(flow.parameters.properties) == ["overrides", "push", "experiment"]
