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


def test_concurrent_requests_share_model_calls_and_get_their_own_answers(server, trained_project: Path):
    from concurrent.futures import ThreadPoolExecutor

    texts = pd.read_parquet(trained_project / "data/clean/test.parquet")["raw_text"].tolist()[:24]

    def ask(text: str) -> list[dict]:
        return httpx.post(f"{server.url}/predict", json={"rows": [{"text": text}]}, headers=AUTH, timeout=60).json()["predictions"]

    alone = [ask(text) for text in texts]
    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(ask, texts)) == alone


def test_the_batcher_scores_what_queued_during_a_call_in_one_call():
    import threading

    import numpy as np

    from tasks.serving.service import Batcher

    calls, first_call_may_end = [], threading.Event()

    def score(items: list) -> np.ndarray:
        calls.append(list(items))
        first_call_may_end.wait(10)
        if "bad" in items:
            raise ValueError("bad item")
        return np.asarray(items) * 2

    batcher, answers = Batcher(score), {}
    threads = [threading.Thread(target=lambda number=number: answers.update({number: batcher([number, 10 + number]).tolist()}))
               for number in range(4)]
    threads[0].start()
    time.sleep(0.3)  # the first call is running
    for thread in threads[1:]:
        thread.start()
    time.sleep(0.3)  # the others queued behind it
    first_call_may_end.set()
    for thread in threads:
        thread.join()
    assert calls[0] == [0, 10] and sorted(calls[1]) == [1, 2, 3, 11, 12, 13] and len(calls) == 2
    assert answers == {number: [2 * number, 20 + 2 * number] for number in range(4)}
    with pytest.raises(ValueError, match="bad item"):
        batcher(["bad"])
    batcher.close()  # swapped out: a straggler is still answered
    assert batcher([5]).tolist() == [10]


def test_a_model_folder_is_hashed_again_only_when_a_file_changed(tmp_path: Path):
    from tasks.serving.slot import FolderSource

    folder = tmp_path / "models"
    folder.mkdir()
    weights = folder / "model.keras"
    weights.write_bytes(b"first")
    source = FolderSource(folder)
    first = source.latest()
    stamp = weights.stat()
    weights.write_bytes(b"other")  # same size, mtime put back: a poll does not read the bytes again
    os.utime(weights, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert source.latest() == first
    os.utime(weights, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 1_000_000))
    assert source.latest() != first  # a touched file is hashed again: its new content is a new version
    assert FolderSource(folder).latest() == source.latest()


def test_model_describes_the_served_version(server):
    described = httpx.get(f"{server.url}/model", headers=AUTH).json()
    card = json.loads((Path(described["source"]) / "model.json").read_text())
    assert described["kind"] == "text_classification" and described["classes"] == card["classes"]
    assert described["threshold"] == card["threshold"] and described["version"].startswith("md5-")
    assert described["savedmodel"].startswith("not exportable: its cleaning")


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


# --------------------------------------------------------------------------- series: HTTP and the SavedModel

FRESH_PROCESS = """
import json, sys
import numpy as np
import tensorflow as tf
inputs = np.load(sys.argv[2])
exported = tf.saved_model.load(sys.argv[1])  # held: its variables live as long as it does
answer = exported.serve(tf.constant(inputs["values"]), tf.constant(inputs["lengths"]))
print(json.dumps({"probabilities": answer["probabilities"].numpy().tolist(),
                  "label": [label.decode() for label in answer["label"].numpy()]}))
"""


@pytest.fixture(scope="module")
def series_trained(tmp_path_factory) -> Path:
    """A tiny trained series project (tests/test_series.py's shapes) whose test file has gaps."""
    import numpy as np

    from conftest import commit_all, make_project
    from test_series import SHAPES, TINY_SERIES, shape_series, ts_text, write_archive

    # The summary baseline averaged with the RNN: the decision the SavedModel export re-expresses;
    # per-series z-normalisation, which the export repeats too; LSTM-FCN's convolutional branch.
    root = make_project(tmp_path_factory.mktemp("series-serve") / "project", overrides={
        **TINY_SERIES, "baseline": {"series_classification": {"models": ["summary_logistic"]}},
        "clean": {"series_classification": {"normalise": "series"}},
        "train": {"series_classification": {**TINY_SERIES["train"]["series_classification"], "epochs": 4,
                                            "ensemble_weight": 0.5, "conv_branch": True}}})
    write_archive(root / "data/raw/shapes", train=90, test=30)
    commit_all(root, "tiny series")
    run(["dvc", "repro"], root)
    rng = np.random.default_rng(7)
    items = [shape_series(SHAPES[number % 3], int(rng.integers(12, 30)), rng) for number in range(30)]
    for item in items[::3]:
        item[rng.integers(0, len(item), 3), int(rng.integers(0, 2))] = np.nan  # gaps to interpolate
    items[1][:, 1] = np.nan  # a feature missing throughout
    (root / "gappy.ts").write_text(ts_text(items, [SHAPES[number % 3] for number in range(30)]))
    return root


@pytest.mark.slow
def test_series_are_served_and_exported_as_tasks_predict_answers(series_trained: Path, tmp_path: Path):
    import numpy as np

    from tasks.readers.tsfile import read_ts
    from tasks.serving.export import padded_batch

    root = series_trained
    run([sys.executable, "-m", "tasks.predict", "gappy.ts", "-o", str(tmp_path / "scored.csv")], root)
    scored = pd.read_csv(tmp_path / "scored.csv")
    columns = [column for column in scored.columns if column.startswith("predicted_probability_")]
    series = read_ts(root / "gappy.ts").series
    rows = [{"values": [[None if np.isnan(value) else float(value) for value in step] for step in item]} for item in series]

    served = Server(root, "--model-dir", "models")
    try:
        answers = httpx.post(f"{served.url}/predict", json={"rows": rows}, timeout=60).json()["predictions"]
        bad = httpx.post(f"{served.url}/predict", json={"rows": [rows[0], {"values": [[1.0, 2.0, 3.0]]}]})
        assert bad.status_code == 422 and "rows[1].values[0]: must be a list of 2 numbers" in bad.json()["detail"]
        empty = httpx.post(f"{served.url}/predict", json={"rows": [{"values": []}]})
        assert empty.status_code == 422 and "rows[0].values: must be a non-empty list" in empty.json()["detail"]
    finally:
        served.stop()
    assert [answer["label"] for answer in answers] == scored["predicted_label"].tolist()
    for column in columns:
        assert [answer[column.removeprefix("predicted_")] for answer in answers] == scored[column].tolist()

    # The SavedModel, loaded in a fresh interpreter that cannot import the project, answers the same.
    result = run([sys.executable, "-m", "tasks.serve", "--export-savedmodel", str(tmp_path / "savedmodel")], root)
    assert "the same labels" in result.stdout
    values, lengths = padded_batch(series, 2)
    np.savez(tmp_path / "inputs.npz", values=values, lengths=lengths)
    fresh = run([sys.executable, "-I", "-c", FRESH_PROCESS, str(tmp_path / "savedmodel"), str(tmp_path / "inputs.npz")],
                tmp_path)
    exported = json.loads(fresh.stdout.strip().splitlines()[-1])
    assert exported["label"] == scored["predicted_label"].tolist()
    assert np.abs(np.round(np.asarray(exported["probabilities"]), 6) - scored[columns].to_numpy()).max() <= 1e-6


def test_a_text_model_is_not_exported_and_says_why(trained_project: Path, tmp_path: Path):
    result = run([sys.executable, "-m", "tasks.serve", "--export-savedmodel", str(tmp_path / "savedmodel")],
                 trained_project, check=False)
    assert result.returncode != 0 and "NLTK's word tokenizer" in result.stderr
    assert not (tmp_path / "savedmodel").exists()


def test_generate_over_http_has_the_cli_word_limit():
    from tasks import generate
    from tasks.serving import rows

    assert rows.MAX_WORDS == generate.MAX_WORDS
