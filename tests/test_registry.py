"""The model registry end to end, with real parts only: a bare git origin, a local DVC remote,
two runs where the second beats the first, GTO tags, `dvc artifacts get` from a fresh clone, and
tasks.serve in a fresh clone following the `prod` stage through a promotion while a client keeps asking."""
from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml

from conftest import commit_all, run
from flows import dvcstages, registry
from flows import promote as gate
from test_serve import Server, assert_same_answers, predict_cli


def gate_run(project: Path) -> tuple[bool, str]:
    """What the flow's promote task does after a run (flows.pipeline.promote_model), with --push."""
    outs = dvcstages.lock_outs(project)
    candidate = {"metrics": json.loads((project / "metrics/evaluate.json").read_text()),
                 "model_md5": outs["train"]["models"], "outs": outs, "git_rev": dvcstages.git_revision(project),
                 "experiment": None}
    params = gate.promote_params(yaml.safe_load((project / "params.yaml").read_text()))
    promoted, reason = gate.should_promote(candidate, gate.read_champion(project), params)
    if promoted:
        gate.write_champion(project, candidate, "models", push=True)
    return promoted, reason


def locked_model(lock_text: str) -> str:
    return next(out["md5"] for out in yaml.safe_load(lock_text)["stages"]["train"]["outs"] if out["path"] == "models")


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def gto_show(repo: Path) -> dict[str, list[str]]:
    """``gto show rnnflow-model --json`` as {version: [its stages]}."""
    shown = json.loads(run([str(Path(sys.executable).parent / "gto"), "show", registry.ARTIFACT, "--json"], repo).stdout)
    return {entry["version"]: sorted(stage["stage"] for stage in entry["stages"]) for entry in shown}


@pytest.mark.slow
def test_two_promotions_registered_fetched_and_served_without_a_failed_request(trained_copy: Path, tmp_path: Path):
    project, origin, store = trained_copy, tmp_path / "origin.git", tmp_path / "dvc-store"
    run(["git", "init", "-q", "--bare", str(origin)], tmp_path)
    run(["git", "remote", "add", "origin", str(origin)], project)
    run(["dvc", "remote", "add", "-d", "store", str(store)], project)
    # Run 1 (the trained project: the RNN alone) committed, as a run the team commits.
    commit_all(project, "run 1")
    run(["git", "push", "-q", "origin", "HEAD"], project)
    assert gate_run(project) == (True, "no champion yet; candidate macro_f1 0.8595 meets the floors")
    first_model = md5(project / "models/model.keras")
    assert gto_show(project) == {"v0.0.1": ["prod"]}
    texts = pd.read_parquet(project / "data/clean/test.parquet")["raw_text"].tolist()
    first_answers = predict_cli(project, texts, tmp_path / "first")

    # Served as the README says: in a fresh clone of origin, `python -m tasks.serve --stage prod`.
    fresh = tmp_path / "fresh"
    run(["git", "clone", "-q", str(origin), str(fresh)], tmp_path)
    server = Server(fresh, "--stage", "prod", "--poll-seconds", "1")
    try:
        served = httpx.post(f"{server.url}/predict", json={"rows": [{"text": text} for text in texts]}, timeout=60).json()
        assert (served["model"], served["version"]) == (registry.ARTIFACT, "v0.0.1")
        assert_same_answers(served["predictions"], first_answers)
        described = httpx.get(f"{server.url}/model").json()
        assert described["stage"] == "prod" and described["metrics"]["macro_f1"] == 0.8595
        assert set(described["data"]) == {"data/ingested/reviews.parquet"}

        # A client loops while run 2 trains and the gate promotes it; the server swaps under it.
        outcomes: list[tuple[int, str | None]] = []
        stop = threading.Event()

        def client() -> None:
            with httpx.Client(timeout=30) as session:
                while not stop.is_set():
                    response = session.post(f"{server.url}/predict", json={"rows": [{"text": texts[0]}]})
                    outcomes.append((response.status_code, response.json().get("version")))

        loop = threading.Thread(target=client)
        loop.start()
        try:
            # Run 2: the RNN mixed with the baseline, a better model; its dvc.lock left uncommitted (a
            # plain nightly run): the gate saves the run as a DVC experiment for the tag to point to.
            params = yaml.safe_load((project / "params.yaml").read_text())
            params["train"]["text_classification"]["ensemble"] = "baseline"
            (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
            run(["dvc", "repro"], project)
            promoted, reason = gate_run(project)
            assert promoted and "beats the champion's 0.8595" in reason, reason
            deadline = time.monotonic() + 90
            while not any(version == "v0.0.2" for _, version in outcomes[-3:]) and time.monotonic() < deadline:
                time.sleep(0.5)
        finally:
            stop.set()
            loop.join()
        assert {status for status, _ in outcomes} == {200}, [item for item in outcomes if item[0] != 200][:3]
        versions = [version for _, version in outcomes]
        assert versions[0] == "v0.0.1" and versions[-1] == "v0.0.2"
        assert versions == sorted(versions)  # once swapped, never back
        served = httpx.post(f"{server.url}/predict", json={"rows": [{"text": text} for text in texts]}, timeout=60).json()
        assert_same_answers(served["predictions"], predict_cli(project, texts, tmp_path / "second"))
    finally:
        server.stop()

    # The registry on origin: two versions, prod on the second, which is the saved run's commit.
    fresh = tmp_path / "fresh-after"
    run(["git", "clone", "-q", str(origin), str(fresh)], tmp_path)
    assert gto_show(fresh) == {"v0.0.1": [], "v0.0.2": ["prod"]}
    champion = json.loads((project / "champion/champion.json").read_text())
    assert champion["registry"]["version"] == "v0.0.2"
    assert locked_model(run(["git", "show", f"{champion['registry']['commit']}:dvc.lock"], fresh).stdout) == \
        champion["model_md5"]
    history = run([str(Path(sys.executable).parent / "gto"), "history", registry.ARTIFACT], fresh).stdout
    assert "v0.0.1" in history and "v0.0.2" in history and "prod" in history

    # `dvc artifacts get` from another directory fetches exactly the champion's files.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run(["dvc", "artifacts", "get", str(origin), registry.ARTIFACT, "--stage", "prod", "-o", "model"], elsewhere)
    fetched = sorted(path.relative_to(elsewhere / "model") for path in (elsewhere / "model").rglob("*") if path.is_file())
    assert fetched == sorted(path.relative_to(project / "models") for path in (project / "models").rglob("*") if path.is_file())
    assert md5(elsewhere / "model/model.keras") == md5(project / "models/model.keras") != first_model

    # Promoting v0.0.1's model again (a rollback through the gate) reuses its version.
    first = locked_model(run(["git", "show", "HEAD:dvc.lock"], project).stdout)
    assert registry.register_champion(project, {"model_md5": first})["version"] == "v0.0.1"
    assert gto_show(project)["v0.0.1"] == ["prod"]
