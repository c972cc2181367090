"""python -m tasks.serve: a real uvicorn server on 127.0.0.1 over a tiny trained model, answering
as tasks.predict answers, refusing bad requests with a reason and answering on after them."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from conftest import SHARED, run

TOKEN = "s3cret-token"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """``python -m tasks.serve ARGS`` in ``cwd`` on a free port, until :meth:`stop`."""

    def __init__(self, cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 180) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                       "PYTHONPATH": str(cwd), **(env or {})}
        if (SHARED / "nltk_data").is_dir():
            environment.setdefault("NLTK_DATA", str(SHARED / "nltk_data"))
        self.log = cwd.parent / f"serve-{self.port}.log"
        self.process = subprocess.Popen([sys.executable, "-m", "tasks.serve", "--port", str(self.port), *args], cwd=cwd,
                                        env=environment, stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"the server exited:\n{self.log.read_text()[-3000:]}"
            try:
                if httpx.get(f"{self.url}/health", timeout=2).json()["status"] == "ok":
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise AssertionError(f"the server did not start in {timeout} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def predict_cli(project: Path, texts: list[str], tmp_path: Path) -> pd.DataFrame:
    """tasks.predict's answers for ``texts``: the reference the service must match."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"text": texts}).to_csv(tmp_path / "texts.csv", index=False)
    run([sys.executable, "-m", "tasks.predict", str(tmp_path / "texts.csv"), "-o", str(tmp_path / "scored.csv")], project)
    return pd.read_csv(tmp_path / "scored.csv")


def assert_same_answers(answers: list[dict], scored: pd.DataFrame) -> None:
    assert len(answers) == len(scored)
    assert [answer["label"] for answer in answers] == scored["predicted_label"].tolist()
    assert [answer["probability"] for answer in answers] == scored["predicted_probability"].tolist()
    assert all(set(answer) == {"label", "probability"} for answer in answers)


@pytest.fixture(scope="module")
def server(trained_project: Path):
    served = Server(trained_project, "--model-dir", "models", "--max-rows", "500", env={"RNNFLOW_SERVE_TOKEN": TOKEN})
    yield served
    served.stop()


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_predict_answers_what_tasks_predict_answers_on_the_test_split(server, trained_project: Path, tmp_path: Path):
    texts = pd.read_parquet(trained_project / "data/clean/test.parquet")["raw_text"].tolist()
    response = httpx.post(f"{server.url}/predict", json={"rows": [{"text": text} for text in texts]}, headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "models" and body["version"].startswith("md5-")
    assert_same_answers(body["predictions"], predict_cli(trained_project, texts, tmp_path))
    one = httpx.post(f"{server.url}/predict", json={"rows": [{"text": texts[3]}]}, headers=AUTH).json()
    assert one["predictions"] == body["predictions"][3:4]  # a row's answer does not depend on its batch


def test_model_describes_the_served_version(server):
    described = httpx.get(f"{server.url}/model", headers=AUTH).json()
    card = json.loads((Path(described["source"]) / "model.json").read_text())
    assert described["kind"] == "text_classification" and described["classes"] == card["classes"]
    assert described["threshold"] == card["threshold"] and described["version"].startswith("md5-")


@pytest.mark.parametrize(("request_args", "status", "reason"), [
    ({"content": b'{"rows": [{"text": "good"'}, 400, "not JSON"),
    ({"content": b"\xff\xfe"}, 400, "not JSON"),
    ({"content": b"x" * (10 * 1024 * 1024)}, 413, "at most 2097152"),
    ({"json": {"rows": [{"text": "a"}] * 100_000}}, 413, "100000 rows; at most 500"),
    ({"json": [{"text": "a"}]}, 422, 'JSON object {"rows"'),
    ({"json": {"rows": []}}, 422, "non-empty list"),
    ({"json": {"rows": [{"text": "fine"}, {"text": 5}]}}, 422, "rows[1].text: must be a string, not a number"),
    ({"json": {"rows": [{"text": "fine"}, {}]}}, 422, "rows[1].text: missing"),
    ({"json": {"rows": [{"text": "fine"}, "text"]}}, 422, "rows[1]: must be an object"),
    ({"json": {"rows": [{"text": "a", "path": "/etc/passwd"}]}}, 422, "rows[0].path: unknown field"),
    ({"json": {"rows": [{"values": [[1.0]]}]}}, 422, "rows[0].text: missing"),
])
def test_bad_requests_answer_4xx_with_a_reason_and_the_server_answers_on(server, request_args, status, reason):
    response = httpx.post(f"{server.url}/predict", headers={**AUTH, "Content-Type": "application/json"},
                          timeout=60, **request_args)
    assert response.status_code == status, response.text
    assert reason in response.json()["detail"]
    assert httpx.post(f"{server.url}/predict", json={"rows": [{"text": "love it"}]}, headers=AUTH).status_code == 200


def test_the_token_is_required_when_set(server):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        for method, path in (("POST", "/predict"), ("GET", "/model"), ("POST", "/generate")):
            response = httpx.request(method, f"{server.url}{path}", json={"rows": [{"text": "x"}]}, headers=headers)
            assert response.status_code == 401 and "bearer token" in response.json()["detail"], (headers, path)
    assert httpx.get(f"{server.url}/health").json()["status"] == "ok"  # health needs no token
    generate = httpx.post(f"{server.url}/generate", json={"prompt": "the"}, headers=AUTH)
    assert generate.status_code == 409 and "POST /predict" in generate.json()["detail"]


def test_a_bad_start_is_one_line(trained_project: Path):
    result = run([sys.executable, "-m", "tasks.serve", "--model-dir", "no/such/folder"], trained_project, check=False)
    assert result.returncode != 0 and "no/such/folder: no model card" in result.stderr
    result = run([sys.executable, "-m", "tasks.serve", "--stage", "prod"], trained_project, check=False)
    assert result.returncode != 0 and "no version of rnnflow-model is in stage 'prod'" in result.stderr
