"""Latency and throughput of ``python -m tasks.serve`` on 127.0.0.1.

Starts the server on a model folder (default ``models``) on a free port, then times, with a
bounded number of requests each:

* one review per request from 1 client and from 8 concurrent clients: latency p50 / p99 / mean
  (client-side, the whole HTTP round trip) and requests/s;
* batches of 64 reviews per request from 1 client: rows/s;
* the same model called in this process without HTTP (the kind's ``Predictor``, as the server
  calls it): what the model alone costs per review and per batch, so the HTTP and queueing share
  shows as the difference.

Reviews come from the checkout's test split (``data/clean/test.parquet``, the raw text), cycled
in order. Run from the repository root with the venv first on PATH::

    python bench/serve_latency.py                       # the checkout's models/
    python bench/serve_latency.py --model-dir champion/model --requests 300

Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(model_dir: Path, port: int, log: Path) -> subprocess.Popen:
    import httpx

    process = subprocess.Popen([sys.executable, "-m", "tasks.serve", "--model-dir", str(model_dir), "--port", str(port)],
                               cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()["status"] == "ok":
                return process
        except httpx.HTTPError:
            time.sleep(0.5)
    process.terminate()
    raise SystemExit("the server did not start in 300 s")


def summary(latencies: list[float], seconds: float, rows_per_request: int) -> dict[str, float]:
    milliseconds = np.asarray(latencies) * 1000
    return {"requests": len(latencies), "p50_ms": round(float(np.percentile(milliseconds, 50)), 2),
            "p99_ms": round(float(np.percentile(milliseconds, 99)), 2), "mean_ms": round(float(milliseconds.mean()), 2),
            "requests_per_s": round(len(latencies) / seconds, 1),
            "rows_per_s": round(len(latencies) * rows_per_request / seconds, 1)}


def load(url: str, texts: list[str], clients: int, requests: int, batch: int) -> dict[str, float]:
    """``requests`` POSTs of ``batch`` reviews each, shared among ``clients`` threads."""
    import httpx

    latencies: list[float] = []
    failures: list[int] = []
    counter = iter(range(requests))
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(timeout=60) as session:
            while True:
                with lock:
                    number = next(counter, None)
                if number is None:
                    return
                start = number * batch
                rows = [{"text": texts[(start + offset) % len(texts)]} for offset in range(batch)]
                began = time.perf_counter()
                response = session.post(f"{url}/predict", json={"rows": rows})
                elapsed = time.perf_counter() - began
                with lock:
                    (latencies if response.status_code == 200 else failures).append(elapsed)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = summary(latencies, time.perf_counter() - began, batch)
    return {"clients": clients, "rows_per_request": batch, "failed": len(failures), **result}


def in_process(model_dir: Path, texts: list[str], requests: int, batch: int) -> dict[str, float]:
    """The model alone, as the server calls it (the kind's Predictor), without HTTP."""
    from tasks import kinds
    from tasks.core.artifacts import read_card

    predictor = kinds.part(kinds.kind_of(read_card(model_dir)), "predict").Predictor(model_dir)
    predictor.probabilities(texts[:batch])
    latencies = []
    began = time.perf_counter()
    for number in range(requests):
        start = number * batch
        rows = [texts[(start + offset) % len(texts)] for offset in range(batch)]
        tick = time.perf_counter()
        predictor.probabilities(rows)
        latencies.append(time.perf_counter() - tick)
    return {"rows_per_request": batch, **summary(latencies, time.perf_counter() - began, batch)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path("models"))
    parser.add_argument("--texts", type=Path, default=Path("data/clean/test.parquet"),
                        help="a table with a raw_text column (default: the checkout's test split)")
    parser.add_argument("--requests", type=int, default=400, help="one-review requests per run (default 400)")
    parser.add_argument("--batches", type=int, default=40, help="batch requests (default 40)")
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    import pandas as pd

    texts = pd.read_parquet(args.texts)["raw_text"].astype(str).tolist()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = Path(tempfile.mkdtemp(prefix="rnnflow-bench-")) / "serve.log"
    server = start_server(args.model_dir.resolve(), port, log)
    try:
        load(url, texts, 1, 20, 1)  # warm-up: connections, allocator
        results = {
            "one_client": load(url, texts, 1, args.requests, 1),
            "eight_clients": load(url, texts, 8, args.requests, 1),
            "batches": load(url, texts, 1, args.batches, args.batch),
        }
    finally:
        server.terminate()
        server.wait(timeout=30)
    results["model_alone"] = {"one_review": in_process(args.model_dir, texts, args.requests, 1),
                              "batches": in_process(args.model_dir, texts, args.batches, args.batch)}
    card = json.loads((args.model_dir / "model.json").read_text())
    mean_words = float(np.mean([len(text.split()) for text in texts]))
    print(json.dumps({"model_dir": str(args.model_dir), "kind": card.get("kind"), "ensemble": card.get("ensemble"),
                      "max_len": card.get("max_len"), "texts": str(args.texts), "mean_words": round(mean_words, 1),
                      "cpu_count": os.cpu_count(), "load_average": [round(value, 2) for value in os.getloadavg()],
                      **results}, indent=2))


if __name__ == "__main__":
    main()
