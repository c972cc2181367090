"""The Prefect flow against a real Prefect server (SQLite under a temp PREFECT_HOME) on tiny projects.

One server and one full tiny run are shared by every test here and by tests/test_flow_ui.py
(:func:`shared_server`, :func:`shared_first_run`).
"""
from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from conftest import ROOT, SHARED, make_project, run, synthetic_reviews
from flows import dvcstages, reports

pytestmark = pytest.mark.slow

STAGES = ["source", "ingest", "validate", "clean", "tokenize", "baseline", "pretrain", "train", "evaluate"]
ALWAYS_RUNS = {"source"}  # always_changed in dvc.yaml: it re-lists what ingest.source matches


def names(outcome: str, stages: list[str] = STAGES) -> list[str]:
    """Task run names when DVC's outcome for every stage is ``outcome`` (the source stage always runs)."""
    return [f"{stage} (ran)" if stage in ALWAYS_RUNS else f"{stage} ({outcome})" for stage in stages]
CLI = [sys.executable, "-m", "flows.pipeline"]
_SHARED: dict[str, Any] = {}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class PrefectServer:
    """`prefect server start` on 127.0.0.1 and a free port, with its own PREFECT_HOME."""

    def __init__(self, home: Path):
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_url = f"{self.url}/api"
        self.process: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        """Settings for a client process (flow run, CLI, worker) talking to this server."""
        return {
            "PREFECT_API_URL": self.api_url,
            "PREFECT_HOME": str(self.home / "client"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }

    def start(self) -> None:
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "PREFECT_HOME": str(self.home / "server"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "true",
            "PREFECT_UI_API_URL": self.api_url,  # the UI calls this API (default: port 4200)
        }
        env.pop("PREFECT_API_URL", None)
        log = (self.home / "server.log").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        atexit.register(self.stop)

        def healthy() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"prefect server exited:\n{(self.home / 'server.log').read_text()[-3000:]}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as response:
                    return response.status == 200
            return False

        wait_for(healthy, 120, "the Prefect server's /api/health")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    @contextlib.contextmanager
    def client(self) -> Iterator[Any]:
        from prefect import get_client
        from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: self.api_url, PREFECT_HOME: self.home / "client"}):
            with get_client(sync_client=True) as client:
                yield client


def shared_server(tmp_path_factory) -> PrefectServer:
    """One Prefect server for the whole pytest session (stopped at exit)."""
    if "server" not in _SHARED:
        server = PrefectServer(tmp_path_factory.mktemp("prefect"))
        server.start()
        _SHARED["server"] = server
    return _SHARED["server"]


def cli_env(server: PrefectServer, **extra: str) -> dict[str, str]:
    """The environment of conftest.run (venv on PATH, NLTK_DATA) plus the server's settings."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", **server.env(), **extra}
    if (SHARED / "nltk_data").is_dir():
        env.setdefault("NLTK_DATA", str(SHARED / "nltk_data"))
    return env


def flow_run_id(output: str) -> str:
    match = re.search(r"rnnflow: flow run ([0-9a-f-]{36}) finished", output)
    assert match, f"no flow run id in the output:\n{output[-3000:]}"
    return match.group(1)


def run_flow(server: PrefectServer, project: Path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess, str]:
    """`python -m flows.pipeline ARGS` in ``project``; (result, flow run id)."""
    result = run([*CLI, *args], project, check=False, env={**server.env(), **env}, timeout=600)
    return result, flow_run_id(result.stdout)


def lock_held(path: Path) -> bool:
    """Whether some process holds the flow's checkout lock (probed without keeping it)."""
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


class ReportSite:
    """`python -m flows.reportsite` serving ``site`` on 127.0.0.1 and a free port, as a reviewer runs it."""

    def __init__(self, site: Path):
        self.site = site
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        log = (site.parent / "reportsite.log").open("w")
        self.process = subprocess.Popen([sys.executable, "-m", "flows.reportsite", "--site", str(site), "--port", str(self.port)],
                                        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        atexit.register(self.stop)

        def listening() -> bool:
            assert self.process.poll() is None, (site.parent / "reportsite.log").read_text()
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
            return False

        wait_for(listening, 30, "the reports site")

    def env(self) -> dict[str, str]:
        """What a flow run needs to publish to this site and link to it."""
        return {"RNNFLOW_REPORTS_DIR": str(self.site), "RNNFLOW_REPORTS_URL": self.url}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def shared_first_run(server: PrefectServer, tmp_path_factory) -> dict[str, Any]:
    """A full flow run on a fresh tiny project, publishing to a served reports site; while it runs,
    a second run on the same checkout is started (and must fail). Shared by the whole session."""
    if "first" not in _SHARED:
        project = make_project(tmp_path_factory.mktemp("flowrun") / "project")
        site = ReportSite(project.parent / "reports-site")
        log_path = project.parent / "first-run.log"
        with log_path.open("w") as log:
            first = subprocess.Popen(CLI, cwd=project, env=cli_env(server, **site.env()), stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
            wait_for(lambda: lock_held(project / dvcstages.RUN_LOCK) or first.poll() is not None, 180,
                     "the first run to take the checkout")
            second = run(CLI, project, check=False, env={**server.env(), "RNNFLOW_LOCK_TIMEOUT": "0"}, timeout=300)
            first.wait(600)
        output = log_path.read_text()
        assert first.returncode == 0, output[-5000:]
        _SHARED["first"] = {"project": project, "output": output, "flow_run_id": flow_run_id(output), "second": second,
                            "site": site}
    return _SHARED["first"]


def task_runs(server: PrefectServer, run_id: str, stage_runs: int, timeout: float = 60) -> list[Any]:
    """The flow run's task runs, oldest first, once ``stage_runs`` stage tasks have final states
    (task runs reach the server as events, shortly after the flow run process ends)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    def settled():
        with server.client() as client:
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
        stages = [r for r in runs if "dvc-stage" in r.tags]
        if len(stages) >= stage_runs and all(r.state and r.state.is_final() and "(" in r.name for r in stages):
            return sorted(runs, key=lambda r: r.start_time or r.expected_start_time)
        return None

    return wait_for(settled, timeout, f"{stage_runs} finished stage task runs of flow run {run_id}")


def stage_runs(runs: list[Any]) -> list[Any]:
    return [r for r in runs if "dvc-stage" in r.tags]


def artifacts(server: PrefectServer, run_id: str) -> dict[str, Any]:
    """The flow run's artifacts by key (the newest per key)."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with server.client() as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))
    return {artifact.key: artifact for artifact in sorted(found, key=lambda a: a.created)}


def flow_run(server: PrefectServer, run_id: str):
    with server.client() as client:
        return client.read_flow_run(run_id)


def table(artifact) -> list[dict[str, Any]]:
    return json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> PrefectServer:
    return shared_server(tmp_path_factory)


@pytest.fixture(scope="module")
def first_run(server, tmp_path_factory) -> dict[str, Any]:
    return shared_first_run(server, tmp_path_factory)


def test_first_run_runs_every_stage_in_order_with_reports(server, first_run):
    project, run_id = first_run["project"], first_run["flow_run_id"]
    assert flow_run(server, run_id).state.is_completed()
    runs = task_runs(server, run_id, len(STAGES))
    stages = stage_runs(runs)
    assert [r.name for r in stages] == names("ran")
    assert [r.state_name for r in stages] == ["Completed"] * len(STAGES)
    train = STAGES.index("train")
    assert "gpu" in stages[train].tags and all("gpu" not in r.tags for r in stages[:train] + stages[train + 1:])
    assert all(r.state.message.startswith("DVC ran the stage") for r in stages)
    assert "models=" in stages[train].state.message  # the md5 of the model, from dvc.lock
    assert [r.name for r in runs if r not in stages] == ["promote"]

    found = artifacts(server, run_id)
    assert set(reports.KEYS.values()) - {"rnnflow-experiment", "rnnflow-samples"} <= set(found)  # samples: language models
    evaluate = json.loads((project / "metrics/evaluate.json").read_text())
    rows = {row["metric"]: row for row in table(found["rnnflow-metrics"])}
    assert {name: row["this_run"] for name, row in rows.items()} == reports.flatten(evaluate)  # baseline.accuracy...
    assert rows["accuracy"]["majority_baseline"] == round(evaluate["majority_rate"], 4)
    assert all(row["previous_run"] is None for row in rows.values())  # nothing before the first run
    confusion = table(found["rnnflow-confusion"])
    assert sum(sum(v for k, v in row.items() if k.startswith("predicted")) for row in confusion) == evaluate["n_test"]
    assert "Data validation: passed" in found["rnnflow-validation"].data
    # The Data Docs link: the served copy of this run's version (dvc.lock md5), never a file:// path.
    docs_md5 = dvcstages.lock_outs(project)["validate"]["reports/data_docs"].removesuffix(".dir")
    site = first_run["site"]
    assert f"[Great Expectations Data Docs]({site.url}/data-docs/{docs_md5}/index.html)" in found["rnnflow-validation"].data
    assert (site.site / "data-docs" / docs_md5 / "index.html").is_file()
    assert re.search(rf"\[`text_classification\.row` results\]\({re.escape(site.url)}/data-docs/{docs_md5}/validations/"
                     r"text_classification/row/[^)]+\.html\)", found["rnnflow-validation"].data), found["rnnflow-validation"].data
    assert "file://" not in "".join(str(artifact.data) for artifact in found.values())
    # Every figure inlined, small; the evaluation report linked on the site.
    figures = {key: found[reports.KEYS[key]].data for key in ("eda_figures", "figures")}
    assert figures["eda_figures"].count("](data:image/png;base64,") == len(list((project / "reports/eda").glob("*.png"))) >= 2
    assert figures["figures"].count("](data:image/png;base64,") == len(list((project / "plots/evaluate").glob("*.png"))) >= 3
    assert sum(len(text) for text in figures.values()) < 300_000
    report = re.search(rf"\[Evaluation report[^]]*\]\(({re.escape(site.url)}/evaluation/[0-9a-f]+/index.html)\)", figures["figures"])
    assert report, figures["figures"][-2000:]
    with urllib.request.urlopen(report.group(1), timeout=10) as response:
        assert "vegaEmbed" in response.read().decode()
    # The run's name says what ran: dataset, kind, (no overrides), commit.
    commit = run(["git", "rev-parse", "--short=7", "HEAD"], project).stdout.strip()
    assert flow_run(server, run_id).name == f"table text_classification @{commit}"
    assert sum(row["count"] for row in table(found["rnnflow-class-balance"])) == 240
    assert found["rnnflow-train-progress"].data == 100
    assert "epoch 3 of 3" in found["rnnflow-train-progress"].description
    lock = dvcstages.lock_outs(project)
    assert lock["train"]["models"] in found["rnnflow-versions"].data
    assert "promoted" in found["rnnflow-champion"].data and "no champion yet" in found["rnnflow-champion"].data

    champion = json.loads((project / "champion/champion.json").read_text())
    assert champion["model_md5"] == lock["train"]["models"] and champion["metrics"] == evaluate
    assert champion["flow_run"] == run_id
    assert (project / "champion/model/model.keras").exists()


def test_second_run_on_the_same_checkout_fails_clearly(server, first_run):
    second = first_run["second"]
    assert second.returncode == 1
    assert "another rnnflow run holds the checkout" in second.stdout + second.stderr
    run_id = flow_run_id(second.stdout)
    assert flow_run(server, run_id).state.is_failed()
    with server.client() as client:
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

        assert client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))) == []


def test_rerun_shows_every_stage_skipped_by_dvc(server, first_run):
    project = first_run["project"]
    silent_site = f"http://127.0.0.1:{free_port()}"  # nothing serves it
    result, run_id = run_flow(server, project, RNNFLOW_REPORTS_URL=silent_site)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    stages = stage_runs(task_runs(server, run_id, len(STAGES)))
    assert [r.name for r in stages] == names("skipped")
    assert [r.state_name for r in stages] == ["Completed" if stage in ALWAYS_RUNS else "Skipped" for stage in STAGES]
    assert all(r.state.is_completed() for r in stages)
    found = artifacts(server, run_id)
    rows = table(found["rnnflow-metrics"])
    assert all(row["this_run"] == row["previous_run"] for row in rows)
    assert "already the champion" in found["rnnflow-champion"].data
    assert "the model is up to date" in found["rnnflow-train-progress"].description
    # No link the browser cannot open: with the site down, its address is text and what to start.
    validation = found["rnnflow-validation"].data
    assert "](" + silent_site not in validation and f"`{silent_site}/data-docs/" in validation
    assert "start `python -m flows.reportsite`" in validation


def test_overrides_run_as_a_named_dvc_experiment(server, first_run):
    project = first_run["project"]
    result, run_id = run_flow(server, project, "--set", "evaluate.text_classification.worst_examples=5", "--name", "tiny-exp")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    runs = task_runs(server, run_id, len(STAGES))
    assert [r.name for r in stage_runs(runs)] == names("skipped", STAGES[:-1]) + ["evaluate (ran)"]
    assert [r.name for r in runs if "dvc-stage" not in r.tags] == ["set-params", "save-experiment", "promote"]
    ref = run(["git", "for-each-ref", "--format=%(refname)", "refs/exps"], project).stdout.split()
    assert any(name.endswith("/tiny-exp") for name in ref), ref
    saved_params = run(["git", "show", "refs/exps/" + next(n for n in ref if n.endswith("/tiny-exp"))[len("refs/exps/"):]
                        + ":params.yaml"], project).stdout
    assert "worst_examples: 5" in saved_params
    files = run(["git", "show", "--name-only", "--format=", next(n for n in ref if n.endswith("/tiny-exp"))], project).stdout
    assert "dvc.lock" in files and "metrics/evaluate.json" in files
    assert "tiny-exp" in artifacts(server, run_id)["rnnflow-experiment"].data
    assert "evaluate.text_classification.worst_examples" in artifacts(server, run_id)["rnnflow-experiment"].data


def test_invalid_data_fails_at_validate(server, tmp_path):
    one_class = synthetic_reviews(rows=60, positive_rate=1.0)
    project = make_project(tmp_path / "bad", frame=one_class)
    result, run_id = run_flow(server, project)
    assert result.returncode == 1
    assert "validate" in result.stderr
    assert flow_run(server, run_id).state.is_failed()
    runs = task_runs(server, run_id, 3)
    assert [(r.name, r.state_name) for r in runs] == [("source (ran)", "Completed"), ("ingest (ran)", "Completed"),
                                                      ("validate (failed)", "Failed")]
    assert runs[2].run_count == 1  # a validation failure is not retried
    report = artifacts(server, run_id)["rnnflow-validation"].data
    assert "Data validation: FAILED" in report
    assert (project / "data/ingested/reviews.parquet").exists()  # the good upstream output stays
    assert not (project / "data/validated").exists() and not (project / "champion").exists()


@pytest.fixture(scope="module")
def nightly(server, first_run, tmp_path_factory) -> dict[str, Any]:
    """prefect.yaml's deployments on the server, the first run's project as their checkout, a DVC remote."""
    project = first_run["project"]
    remote = tmp_path_factory.mktemp("nightly") / "dvc-remote"
    run(["dvc", "remote", "add", "--default", "local", str(remote)], project)
    env = server.env()
    run(["prefect", "work-pool", "create", "rnnflow-process", "--type", "process"], project, env=env)
    run(["prefect", "--no-prompt", "deploy", "--all"], project, env={**env, "RNNFLOW_HOME": str(project)})
    with server.client() as client:
        deployment = client.read_deployment_by_name("rnnflow-pipeline/rnnflow-nightly")
    return {"project": project, "remote": remote, "deployment": deployment}


def nightly_runs(server: PrefectServer, deployment) -> list[Any]:
    """The deployment's flow runs that left the Scheduled state, oldest first."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId, FlowRunFilter

    with server.client() as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(state={"type": {"not_any_": ["SCHEDULED"]}}),
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
        )
    return sorted(runs, key=lambda r: r.created)


def run_nightly_once(server: PrefectServer, cwd: Path, *params: str) -> subprocess.CompletedProcess:
    """`prefect deployment run` the nightly deployment now, and one worker that takes that run."""
    run(["prefect", "deployment", "run", "rnnflow-pipeline/rnnflow-nightly", *params], cwd, env=server.env())
    return run(["prefect", "worker", "start", "--pool", "rnnflow-process", "--run-once"], cwd,
               check=False, env=server.env(), timeout=300)


def test_deployment_from_prefect_yaml_runs_on_a_worker(server, nightly, tmp_path):
    project, remote, deployment = nightly["project"], nightly["remote"], nightly["deployment"]
    assert deployment.work_pool_name == "rnnflow-process" and deployment.parameters == {"push": True}
    assert [s.schedule.cron for s in deployment.schedules] == ["0 2 * * *"]
    assert deployment.pull_steps == [{"prefect.deployments.steps.set_working_directory": {"directory": str(project)}}]

    worker = run_nightly_once(server, tmp_path)
    runs = nightly_runs(server, deployment)
    assert len(runs) == 1, worker.stdout[-3000:] + worker.stderr[-3000:]
    assert runs[0].state.is_completed(), worker.stdout[-3000:] + worker.stderr[-3000:]
    assert runs[0].name.startswith("rnnflow-nightly: table text_classification @"), runs[0].name
    all_runs = task_runs(server, str(runs[0].id), len(STAGES))
    assert [r.name for r in stage_runs(all_runs)] == names("skipped")
    assert [r.name for r in all_runs][-1] == "dvc-push"
    assert any(path.is_file() for path in (remote / "files").rglob("*")), "dvc push sent nothing to the remote"


class Webhook:
    """An HTTP endpoint on 127.0.0.1 that records every POST body (a team's chat webhook, here)."""

    def __init__(self):
        import http.server
        import threading

        received = self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_failed_nightly_run_raises_the_automation(server, nightly, tmp_path):
    """`python -m flows.alerts` (as the README shows it) makes a failing scheduled run notify the webhook."""
    hook = Webhook()
    try:
        created = run([sys.executable, "-m", "flows.alerts", "--webhook", hook.url], nightly["project"], env=server.env())
        assert "automation 'rnnflow-nightly failed'" in created.stdout
        completed_before = len(nightly_runs(server, nightly["deployment"]))
        # A run of the deployment that fails at its start: an override of a key params.yaml does not have.
        run_nightly_once(server, tmp_path, "--param", 'overrides={"no_such_section.key": 1}')
        failed = nightly_runs(server, nightly["deployment"])[-1]
        assert len(nightly_runs(server, nightly["deployment"])) == completed_before + 1
        assert failed.state.is_failed(), failed.state
        wait_for(lambda: hook.received, 90, "the automation's notification")
        [notification] = hook.received  # one, for the failed run only (completed runs notify nobody)
        assert str(failed.id) in notification["body"] and failed.name in notification["subject"], notification
        assert "Failed" in notification["subject"]
    finally:
        hook.server.shutdown()


def test_serve_registers_the_nightly_schedule(server, first_run):
    project = first_run["project"]
    log = (project.parent / "serve.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "flows.serve"], cwd=project, env=cli_env(server),
                               stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    def served():
        assert process.poll() is None, (project.parent / "serve.log").read_text()[-3000:]
        with server.client() as client, contextlib.suppress(Exception):
            return client.read_deployment_by_name("rnnflow-pipeline/rnnflow-served")

    try:
        deployment = wait_for(served, 90, "the served deployment")
        assert [s.schedule.cron for s in deployment.schedules] == ["0 2 * * *"]
        assert deployment.parameters == {"push": True} and deployment.work_pool_name is None
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
