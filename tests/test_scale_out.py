"""Scale-out: runs in their own clones on two process workers that share a git origin and a DVC
remote, parameter sweeps on them, and a run killed mid-way.

Real parts only: a bare git repository as origin, a local folder as the DVC remote, a real
Prefect server on 127.0.0.1 (shared with tests/test_flow_server.py), two `prefect worker`
processes on the `clones` queue of the process pool, `python -m flows.sweep` as a user runs it.
The fast tests at the end cover the sweep's pure parts and the deployment's spec.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from conftest import ROOT, make_project, run
from flows import dvcstages, sweep
from flows.serve import deployment_spec
from test_flow_server import PrefectServer, artifacts, cli_env, flow_run, shared_server, stage_runs, table, task_runs, wait_for

DEPLOYMENT = "rnnflow-experiment/rnnflow-clone"
GRID = ["train.text_classification.epochs=1,2", "train.text_classification.units=4,8"]
GRID_KEYS = [item.split("=", 1)[0] for item in GRID]
KILLED = {"train.text_classification.epochs": "1", "train.text_classification.units": "4"}  # also in GRID
UPSTREAM = ["ingest", "validate", "clean", "tokenize", "baseline"]  # stages the grid's params do not touch
SWEEP_CLI = [sys.executable, "-m", "flows.sweep", *(arg for item in GRID for arg in ("--grid", item)),
             "--deployment", "rnnflow-clone", "--max-parallel", "4"]
IDENTITY = {"GIT_AUTHOR_NAME": "rnnflow worker", "GIT_AUTHOR_EMAIL": "worker@rnnflow.local",
            "GIT_COMMITTER_NAME": "rnnflow worker", "GIT_COMMITTER_EMAIL": "worker@rnnflow.local"}
QUIET = {"DVC_NO_ANALYTICS": "1", "PREFECT_WORKER_QUERY_SECONDS": "1"}


# ---------------------------------------------------------------------------------------
# The set-up: origin, remote, workers


def git_refs(repository: Path) -> dict[str, str]:
    """``{ref: sha}`` of a repository (the bare origin)."""
    listed = run(["git", "for-each-ref", "--format=%(refname) %(objectname)"], repository).stdout
    return dict(line.split(" ", 1) for line in listed.splitlines())


def remote_files(remote: Path) -> dict[str, int]:
    return {str(path.relative_to(remote)): path.stat().st_size for path in remote.rglob("*") if path.is_file()}


def missing_from_remote(remote: Path, outs: dict[str, str]) -> list[str]:
    """Which of ``{path: md5}`` (a directory's md5 ends in .dir) the DVC remote lacks, with the
    files a directory lists."""
    def has(md5: str) -> bool:
        return (remote / "files" / "md5" / md5[:2] / md5[2:]).is_file()

    missing = []
    for path, md5 in outs.items():
        if not has(md5):
            missing.append(f"{path} ({md5})")
        elif md5.endswith(".dir"):
            listing = json.loads((remote / "files" / "md5" / md5[:2] / md5[2:]).read_text())
            missing += [f"{path}/{entry['relpath']}" for entry in listing if not has(entry["md5"])]
    return missing


def cached_outs(lock_text: str, uncached: set[str]) -> dict[str, str]:
    """``{path: md5}`` of every output in a dvc.lock that DVC caches (what `dvc push` owes the remote)."""
    stages = (yaml.safe_load(lock_text) or {}).get("stages") or {}
    return {out["path"]: out["md5"] for body in stages.values() for out in body.get("outs") or [] if out["path"] not in uncached}


class Workers:
    """`prefect worker start --pool rnnflow-process --work-queue clones --limit 1`, twice, each
    with its own TMPDIR (where the process worker makes each flow run's directory)."""

    def __init__(self, server: PrefectServer, base: Path, count: int = 2):
        self.processes: list[subprocess.Popen] = []
        self.tmpdirs = [base / f"worker-{number}" for number in range(1, count + 1)]
        self.logs = [base / f"worker-{number}.log" for number in range(1, count + 1)]
        for number, (tmpdir, log) in enumerate(zip(self.tmpdirs, self.logs), start=1):
            tmpdir.mkdir(parents=True)
            env = cli_env(server, TMPDIR=str(tmpdir), **IDENTITY, **QUIET)
            self.processes.append(subprocess.Popen(
                [sys.executable, "-m", "prefect", "worker", "start", "--pool", "rnnflow-process", "--work-queue", "clones",
                 "--limit", "1", "--name", f"scale-worker-{number}"],
                cwd=base, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True))

    def stop(self) -> None:
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def flow_run_roots(server: PrefectServer, run_id: str) -> list[str]:
    """The checkouts a flow run worked in, from its log line "checkout <root>: stages ..."."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    def logged():
        with server.client() as client:
            logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
        return [log.message.split(" ", 1)[1].split(":", 1)[0] for log in logs if log.message.startswith("checkout /")]

    return wait_for(logged, 60, f"the checkout log line of flow run {run_id}")


def sweep_runs(server: PrefectServer, sweep_run_id: str) -> dict[str, Any]:
    """The rnnflow-clone flow runs a sweep started, by experiment name."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    with server.client() as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[sweep_run_id])))
    return {run.parameters["experiment"]: run for run in runs}


def sweep_id(output: str) -> str:
    line = next((line for line in output.splitlines() if line.startswith("rnnflow: sweep flow run ")), "")
    assert line, output[-3000:]
    return line.split()[4]


@pytest.fixture(scope="module")
def scaled(tmp_path_factory) -> Iterator[dict[str, Any]]:
    """Origin, remote, deployment, two workers; a run killed mid-way; a sweep of 4; the same sweep again."""
    marks = [("start", time.monotonic())]
    server = shared_server(tmp_path_factory)
    base = tmp_path_factory.mktemp("scale")
    origin, remote = base / "origin.git", base / "dvc-remote"
    env = cli_env(server, **IDENTITY, **QUIET)

    # The project as a team has it: git origin, DVC remote in .dvc/config, the upstream stages'
    # outputs pushed and their dvc.lock committed (the grid's stages run on the workers).
    seed = make_project(base / "seed")
    run(["dvc", "remote", "add", "--default", "shared", str(remote)], seed)
    run(["dvc", "repro", "baseline"], seed, env=QUIET, timeout=600)
    run(["dvc", "push"], seed, env=QUIET)
    run(["git", "add", "-A"], seed)
    run(["git", "commit", "-qm", "pipeline state up to baseline; DVC remote"], seed)
    run(["git", "init", "-q", "--bare", "--initial-branch", "main", str(origin)], base)
    run(["git", "push", "-q", str(origin), "HEAD:main"], seed)
    driver = base / "driver"
    run(["git", "clone", "-q", f"file://{origin}", str(driver)], base)

    run(["prefect", "work-pool", "create", "rnnflow-process", "--type", "process"], seed, check=False, env=server.env())
    run(["prefect", "--no-prompt", "deploy", "--name", "rnnflow-clone"], seed,
        env={**server.env(), "RNNFLOW_GIT_URL": f"file://{origin}", "RNNFLOW_GIT_BRANCH": "main"})
    workers = Workers(server, base)
    marks.append(("origin, remote, deployment", time.monotonic()))
    try:
        # A run killed on its worker while it trains: nothing of it may reach origin or the remote.
        with server.client() as client:
            deployment = client.read_deployment_by_name(DEPLOYMENT)
            killed = client.create_flow_run_from_deployment(
                deployment.id, parameters={"overrides": KILLED, "experiment": sweep.experiment_name(KILLED)})

        def training() -> bool:
            with server.client() as client:
                from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

                runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[killed.id])))
            return any(task.name == "train" and task.state and task.state.is_running() for task in runs)

        wait_for(training, 240, "the killed run's train stage to start")
        refs_before, files_before = git_refs(origin), remote_files(remote)
        pid = int(flow_run(server, str(killed.id)).infrastructure_pid)
        os.killpg(pid, signal.SIGKILL)  # the flow run's process group: the flow, dvc and the stage
        wait_for(lambda: flow_run(server, str(killed.id)).state.is_final(), 120, "the worker to report the killed run")
        killed_after = {"state": flow_run(server, str(killed.id)).state, "refs": git_refs(origin),
                        "files": remote_files(remote), "refs_before": refs_before, "files_before": files_before,
                        "root": flow_run_roots(server, str(killed.id))}

        marks.append(("killed run", time.monotonic()))
        first = run(SWEEP_CLI, driver, check=False, env=env, timeout=900)
        listed = run(["dvc", "exp", "list", "origin", "--name-only"], driver, env=QUIET)
        marks.append(("sweep of 4", time.monotonic()))
        again = run(SWEEP_CLI, driver, check=False, env=env, timeout=900)
        marks.append(("identical repeat", time.monotonic()))
        yield {"server": server, "origin": origin, "remote": remote, "driver": driver, "seed": seed, "workers": workers,
               "killed": killed_after, "first": first, "again": again, "listed": listed.stdout.split(),
               "seconds": {name: round(end - begin) for (_, begin), (name, end) in zip(marks, marks[1:])}}
    finally:
        workers.stop()


def sweep_result(scaled: dict[str, Any], which: str) -> tuple[str, dict[str, Any]]:
    """(sweep flow run id, its clone runs by experiment name), once the CLI succeeded."""
    result = scaled[which]
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    run_id = sweep_id(result.stdout)
    return run_id, sweep_runs(scaled["server"], run_id)


# ---------------------------------------------------------------------------------------
# End to end


@pytest.mark.slow
def test_killed_run_leaves_origin_and_remote_as_they_were(scaled):
    killed = scaled["killed"]
    assert killed["state"].is_final() and not killed["state"].is_completed(), killed["state"]
    assert killed["refs"] == killed["refs_before"], "the killed run changed origin"
    assert killed["files"] == killed["files_before"], "the killed run wrote to the DVC remote"
    assert not any(ref.startswith("refs/exps/") for ref in killed["refs"])
    [root] = killed["root"]
    assert not Path(root).exists(), f"the killed run's clone {root} was left behind"


@pytest.mark.slow
def test_sweep_runs_every_combination_in_its_own_clone(scaled):
    _, runs = sweep_result(scaled, "first")
    names = {sweep.experiment_name(combo) for combo in sweep.combinations(GRID)}
    assert set(runs) == names and all(flow.state.is_completed() for flow in runs.values())
    # Each run is named for what ran: deployment, dataset, kind, its combination, the clone's commit.
    commit = run(["git", "rev-parse", "--short=7", "HEAD"], scaled["driver"]).stdout.strip()
    for flow in runs.values():
        combo = " ".join(f"{key.replace('.text_classification', '')}={value}" for key, value in flow.parameters["overrides"].items())
        assert flow.name == f"rnnflow-clone: table text_classification {combo} @{commit}", flow.name
    roots = {name: flow_run_roots(scaled["server"], str(flow.id)) for name, flow in runs.items()}
    assert all(len(found) == 1 for found in roots.values()), roots
    clones = [Path(found[0]) for found in roots.values()] + [Path(scaled["killed"]["root"][0])]
    assert len(set(clones)) == len(clones), "two runs shared a checkout"
    tmpdirs = scaled["workers"].tmpdirs
    assert all(any(tmpdir in clone.parents for tmpdir in tmpdirs) for clone in clones), clones
    assert {next(t for t in tmpdirs if t in clone.parents) for clone in clones} == set(tmpdirs), "one worker ran everything"
    assert not any(clone.exists() for clone in clones), "clones were left behind"
    for name, flow in runs.items():
        stages = stage_runs(task_runs(scaled["server"], str(flow.id), len(UPSTREAM) + 4))
        outcome = {task.name.split(" ")[0]: task.name.split(" ")[1] for task in stages}
        assert all(outcome[stage] == "(skipped)" for stage in UPSTREAM), (name, outcome)
        assert outcome["train"] == "(ran)", (name, outcome)  # the killed combination too: its rerun trained


@pytest.mark.slow
def test_origin_holds_four_experiments_and_the_remote_their_outputs(scaled):
    names = {sweep.experiment_name(combo) for combo in sweep.combinations(GRID)}
    assert sorted(scaled["listed"]) == sorted(names)
    origin, remote = scaled["origin"], scaled["remote"]
    experiments = {ref: sha for ref, sha in git_refs(origin).items() if ref.startswith("refs/exps/")}
    assert {ref.rsplit("/", 1)[1] for ref in experiments} == names
    uncached = {out for stage in dvcstages.read_stages(scaled["seed"]) for out in stage.uncached_outs}
    for ref, sha in experiments.items():
        lock = run(["git", "show", f"{sha}:dvc.lock"], origin).stdout
        outs = cached_outs(lock, uncached)
        assert "models" in outs and missing_from_remote(remote, outs) == [], ref
    # Every run-cache entry on the remote can be restored: all of its outputs are there too.
    for entry in (remote / "runs").rglob("*"):
        if entry.is_file():
            outs = {out["path"]: out["md5"] for out in yaml.safe_load(entry.read_text()).get("outs") or []}
            assert missing_from_remote(remote, outs) == [], entry


@pytest.mark.slow
def test_comparison_artifact_ranks_the_four_runs_and_the_gate_takes_the_best(scaled):
    run_id, runs = sweep_result(scaled, "first")
    rows = table(artifacts(scaled["server"], run_id)[sweep.ARTIFACT_KEY])
    assert len(rows) == 4 and [row["rank"] for row in rows] == [1, 2, 3, 4]
    assert {row["experiment"] for row in rows} == set(runs)
    assert all(row["state"] == "Completed" and str(runs[row["experiment"]].id) in row["flow_run"] for row in rows)
    assert all(set(GRID_KEYS) <= set(row) for row in rows)
    scores = [row["macro_f1"] for row in rows]
    assert scores == sorted(scores, reverse=True) and all(isinstance(score, float) for score in scores)
    driver = scaled["driver"]
    champion = json.loads((driver / "champion/champion.json").read_text())
    assert champion["experiment"] == rows[0]["experiment"] and champion["metrics"]["macro_f1"] == rows[0]["macro_f1"]
    assert (driver / "champion/model/model.keras").is_file()
    assert "champion: promoted" in scaled["first"].stdout



@pytest.mark.slow
def test_repeated_sweep_restores_or_skips_every_stage(scaled):
    first_id, _ = sweep_result(scaled, "first")
    again_id, runs = sweep_result(scaled, "again")
    assert len(runs) == 4 and all(flow.state.is_completed() for flow in runs.values())
    for name, flow in runs.items():
        stages = stage_runs(task_runs(scaled["server"], str(flow.id), len(UPSTREAM) + 4))
        names = [task.name for task in stages]
        # pretrain trains nothing here (no pretrain.source) but its empty output is one more restore
        assert names == ["source (ran)", *(f"{stage} (skipped)" for stage in UPSTREAM), "pretrain (restored)",
                         "train (restored)", "evaluate (restored)"], (name, names)
    first_rows = table(artifacts(scaled["server"], first_id)[sweep.ARTIFACT_KEY])
    again_rows = table(artifacts(scaled["server"], again_id)[sweep.ARTIFACT_KEY])
    assert [(row["experiment"], row["macro_f1"]) for row in again_rows] == [(row["experiment"], row["macro_f1"]) for row in first_rows]
    assert "already the champion" in scaled["again"].stdout
    assert sorted(run(["dvc", "exp", "list", "origin", "--name-only"], scaled["driver"], env=QUIET).stdout.split()) == sorted(runs)
    print(f"seconds: {scaled['seconds']}")


# ---------------------------------------------------------------------------------------
# Fast: the sweep's pure parts and the deployment


def outcome(name: str, value: float | None, completed: bool = True) -> sweep.Outcome:
    return sweep.Outcome(name, {"train.text_classification.units": name}, "Completed" if completed else "Failed",
                         completed, f"id-{name}", {"macro_f1": value, "roc_auc": 0.9} if value is not None else {})


def test_grid_expands_like_dvc_exp_run_sweeps():
    combos = sweep.combinations(["train.text_classification.model=gru,lstm", "train.text_classification.units=64,128"])
    assert combos == [{"train.text_classification.model": model, "train.text_classification.units": units}
                      for model in ("gru", "lstm") for units in ("64", "128")]
    assert sweep.combinations(["train.text_classification.epochs=range(1,4)"]) == [
        {"train.text_classification.epochs": str(value)} for value in (1, 2, 3)]
    assert sweep.combinations(["ingest.text_columns=[a,b]"]) == [{"ingest.text_columns": "[a,b]"}]
    for bad in (["train.units"], ["=1,2"], ["train.units=[1,"]):
        with pytest.raises(ValueError, match="--grid"):
            sweep.combinations(bad)


def test_experiment_names_stand_for_the_params(tmp_path: Path):
    one = {"train.text_classification.model": "gru", "train.text_classification.units": "64"}
    name = sweep.experiment_name(one)
    assert name.startswith("sweep-modelgru-units64-")
    assert sweep.experiment_name(dict(reversed(list(one.items())))).endswith(name[-8:])  # order does not matter
    assert sweep.experiment_name({**one, "train.text_classification.units": "128"}) != name
    assert sweep.experiment_name({"ingest.text_columns": "[a, b]"}).startswith("sweep-text_columnsab-")
    for overrides in (one, {"x": "a/b..c"}, {"y": "~^:?*[\\"}):
        run(["git", "check-ref-format", f"refs/exps/00/11/{sweep.experiment_name(overrides)}"], tmp_path)


def test_ranking_puts_the_best_first_and_failed_runs_last():
    runs = [outcome("a", 0.7), outcome("b", None, completed=False), outcome("c", 0.9), outcome("d", None),
            outcome("e", 0.7)]
    ordered = sweep.ranked(runs, "macro_f1")
    assert [run.experiment for run in ordered] == ["c", "a", "e", "d", "b"]
    rows = sweep.comparison_table(ordered, sweep.metric_columns(ordered, {"metric": "macro_f1", "floors": {"roc_auc": 0.5}}))
    assert [row["rank"] for row in rows] == [1, 2, 3, 4, 5]
    assert list(rows[0]) == ["rank", "experiment", "state", "train.text_classification.units", "macro_f1", "roc_auc", "flow_run"]
    assert rows[-1]["state"] == "Failed" and rows[-1]["macro_f1"] is None


def test_the_gate_considers_the_best_run_only():
    ordered = sweep.ranked([outcome("worse", 0.6), outcome("best", 0.8), outcome("crashed", None, completed=False)], "macro_f1")
    assert sweep.gate_candidate(ordered, "macro_f1").experiment == "best"
    assert sweep.gate_candidate(sweep.ranked([outcome("x", None), outcome("y", None, completed=False)], "macro_f1"),
                                "macro_f1") is None
    assert sweep.gate_candidate([], "macro_f1") is None


def test_clone_deployment_spec():
    from prefect.flows import load_flow_from_entrypoint

    spec = deployment_spec(ROOT, "rnnflow-clone")
    assert spec["entrypoint"] == "flows/experiment.py:rnnflow_experiment" and spec["parameters"] == {"share": True}
    assert spec["work_pool"]["name"] == "rnnflow-process" and spec["work_pool"]["work_queue_name"] == "clones"
    clone, workdir = spec["pull"]
    assert clone["prefect.deployments.steps.git_clone"]["repository"] == "{{ $RNNFLOW_GIT_URL }}"
    assert workdir == {"prefect.deployments.steps.set_working_directory": {"directory": "{{ clone.directory }}"}}
    assert sweep.deployment_name("rnnflow-clone") == DEPLOYMENT
    flow = load_flow_from_entrypoint(str(ROOT / spec["entrypoint"]))
    assert flow.name == "rnnflow-experiment" and list(flow.parameters.properties) == ["overrides", "experiment", "share"]
