"""How the data stages and the baseline scale: time and peak memory per stage at growing sizes.

Generated clothing reviews (``clothing_reviews`` layout) at each size: every row copies a real
review's metadata and rating, and its text is 1-4 sentences drawn from real reviews with the
same rating, so the texts are distinct, the words real and the labels learnable. For each size
a fresh git + DVC copy of the project (as ``bench/compare.py`` makes) runs source, ingest,
validate, clean, tokenize and baseline, each as its own ``python -m tasks.<stage>`` process,
timed, with its peak resident memory from ``wait4``. Prints one JSON object::

    python bench/scaling.py                        # 10,000 and 100,000 reviews
    python bench/scaling.py --sizes 10000 100000 1000000

``per_row`` gives, from the two largest sizes, each stage's seconds and MB per extra row: the
marginal cost, the quantity that must not grow with the size (a linear stage has the same
marginal cost at every size; ``growth`` is the time ratio over the size ratio, 1.0 for linear).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench")]
from compare import CLOTHING, emit, log, make_project, subprocess_env  # noqa: E402  (imports no pandas)

STAGES = ("source", "ingest", "validate", "clean", "tokenize", "baseline")
SENTENCE = re.compile(r"(?<=[.!?])\s+")


def generated_reviews(rows: int, seed: int = 0):
    """``rows`` clothing reviews made of real sentences (see the module docstring)."""
    import numpy as np
    import pandas as pd

    real = pd.read_csv(CLOTHING).dropna(subset=["Review Text"]).reset_index(drop=True)
    rng = np.random.default_rng(seed)
    pools = {rating: [s for text in group["Review Text"] for s in SENTENCE.split(str(text)) if s]
             for rating, group in real.groupby("Rating")}
    template = real.iloc[rng.integers(0, len(real), rows)].reset_index(drop=True)
    counts = rng.integers(1, 5, rows)
    texts = []
    for rating, count in zip(template["Rating"].to_numpy(), counts):
        pool = pools[rating]
        texts.append(" ".join(pool[index] for index in rng.integers(0, len(pool), count)))
    template["Review Text"] = texts
    template["Unnamed: 0"] = np.arange(rows)
    return template


def run_stage(stage: str, project: Path) -> dict[str, Any]:
    """One stage as its own process: wall seconds and peak resident memory (MB)."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", f"tasks.{stage}"], cwd=project, env=subprocess_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"tasks.{stage} failed in {project}:\n{output[-3000:]}")
    return {"seconds": round(seconds, 2), "peak_mb": round(usage.ru_maxrss / 1024, 1)}  # ru_maxrss: KiB on Linux


def measure(rows: int, workdir: Path) -> dict[str, Any]:
    source = workdir / f"reviews_{rows}.csv"
    log(f"generating {rows:,} reviews")
    # In a child: a stage's peak memory (ru_maxrss) starts from its parent's at the fork, so the
    # parent stays small (no pandas, no data).
    subprocess.run([sys.executable, __file__, "--generate", str(rows), str(source)], check=True)
    project = make_project(workdir / f"project_{rows}", source)
    result = {"rows": rows, "source_mb": round(source.stat().st_size / 2**20, 1), "stages": {}}
    for stage in STAGES:
        log(f"{rows:,} rows: {stage}")
        result["stages"][stage] = run_stage(stage, project)
    clean = json.loads((project / "metrics" / "clean.json").read_text())
    result["rows_after_clean"] = clean.get("rows")
    shutil.rmtree(project, ignore_errors=True)
    source.unlink()
    return result


def marginal(small: dict[str, Any], large: dict[str, Any]) -> dict[str, Any]:
    """Per extra row between two sizes: seconds (x 1e6: microseconds), MB (x 1e3: KB), and the growth."""
    extra = large["rows"] - small["rows"]
    size_ratio = large["rows"] / small["rows"]
    out = {}
    for stage in STAGES:
        a, b = small["stages"][stage], large["stages"][stage]
        out[stage] = {
            "us_per_row": round((b["seconds"] - a["seconds"]) / extra * 1e6, 1),
            "kb_per_row": round((b["peak_mb"] - a["peak_mb"]) / extra * 1e3, 2),
            "growth": round((b["seconds"] / a["seconds"]) / size_ratio, 3) if a["seconds"] else None,
        }
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--generate", nargs=2, metavar=("ROWS", "CSV"), help=argparse.SUPPRESS)  # internal: one data set
    args = parser.parse_args(argv)
    if args.generate:
        generated_reviews(int(args.generate[0])).to_csv(args.generate[1], index=False)
        return
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="rnnflow-scaling-"))
    workdir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"cpu_count": os.cpu_count(), "load_average_start": [round(v, 2) for v in os.getloadavg()],
                              "sizes": []}
    try:
        for rows in sorted(args.sizes):
            report["sizes"].append(measure(rows, workdir))
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    if len(report["sizes"]) >= 2:
        report["per_row"] = marginal(report["sizes"][-2], report["sizes"][-1])
    report["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    emit(report, args.out)


if __name__ == "__main__":
    main()
