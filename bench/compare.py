"""rnnflow against the tutorial recipe, side by side; prints ONE JSON object.

(a) clean: the IMDB reviews cleaned by the tutorial recipe (bench/tutorial_recipe.py) and by
    rnnflow's clean path (tasks.clean.clean_column with the tutorial's steps, one worker per
    core), in this process; ``import nltk`` is done before either clock starts, each one's
    WordNet load is inside its clock. clean_speedup = tutorial / rnnflow.
(b) end to end on the clothing reviews: the tutorial recipe as its own process
    (``python bench/tutorial_recipe.py``) against ``dvc repro`` from scratch of a temporary
    git + DVC copy of the project set to clothing_reviews with the README's clothing command
    (:data:`CLOTHING_COMMAND`: the served model the quality bars are for; ``--defaults``:
    params.yaml as it is). e2e_ratio = rnnflow / tutorial.
(c) noop_repro_s: a second ``dvc repro`` with nothing changed (only the source stage, which
    re-lists what ingest.source matches, runs).
(d) a train parameter changed (train.text_classification.epochs - 1): the time and which stages ran.
(e) padding_fraction and train_samples_per_s from that project's metrics/train.json.
(f) stage_split: each stage run once more on its own in the finished project
    (``python -X importtime -m tasks.<stage>``), its wall time split into start-up (the
    interpreter and every import, the lazy ones inside the stage's work included) and work;
    ``dvc_s`` is what the stage took under ``dvc repro`` beyond that (hashing, the lock).

    python bench/compare.py              # everything (about 7 minutes on 2 busy cores)
    python bench/compare.py --quick      # smoke test: 2,000 IMDB rows, 2,000 clothing rows
    python bench/compare.py --skip-e2e   # (a) only

Progress goes to stderr, the JSON to stdout (and to --out if given).
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
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
SHARED = ROOT.parent / "shared"
IMDB = SHARED / "data" / "imdb_train.csv.gz"
CLOTHING = SHARED / "data" / "womens_clothing_ecommerce_reviews.csv.gz"
STAGE_LINE = re.compile(r"Running stage '([^']+)'")
QUICK_ROWS = 2000
# The README's clothing command beyond the dataset (`dvc exp run -S ...`): the RNN mixed with the
# baseline, the threshold chosen for accuracy.
CLOTHING_COMMAND = {("train", "text_classification", "ensemble"): "baseline",
                    ("train", "text_classification", "threshold_objective"): "accuracy"}


def log(message: str) -> None:
    print(f"[compare {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def emit(report: dict[str, Any], out: Path | None) -> None:
    """The bench's one JSON object: to stdout, and to ``out`` when given."""
    text = json.dumps(report, indent=2)
    if out:
        out.write_text(text + "\n")
    print(text)


def subprocess_env() -> dict[str, str]:
    """The venv first on PATH (DVC runs `python -m tasks.<stage>`), the offline NLTK data, unbuffered output."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    if (SHARED / "nltk_data").is_dir():
        env.setdefault("NLTK_DATA", str(SHARED / "nltk_data"))
    env["PYTHONUNBUFFERED"] = "1"  # so stage lines arrive when they happen (per-stage timings)
    return env


def run_timed(command: list[str], cwd: Path, log_file: Path) -> dict[str, Any]:
    """Run a command, stream its output to ``log_file`` and time it; per-stage times for `dvc repro`."""
    started = time.perf_counter()
    stages: list[str] = []
    stage_start: dict[str, float] = {}
    with open(log_file, "w") as sink:
        process = subprocess.Popen(command, cwd=cwd, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert process.stdout is not None
        for line in process.stdout:
            sink.write(line)
            if match := STAGE_LINE.search(line):
                stages.append(match.group(1))
                stage_start[match.group(1)] = time.perf_counter()
        returncode = process.wait()
    ended = time.perf_counter()
    if returncode != 0:
        tail = log_file.read_text()[-3000:]
        raise RuntimeError(f"{' '.join(command)} failed ({returncode}) in {cwd}; log {log_file}:\n{tail}")
    bounds = [stage_start[name] for name in stages] + [ended]
    return {
        "seconds": round(ended - started, 2),
        "stages": stages,
        # From one "Running stage" line to the next: the stage plus DVC's bookkeeping after it.
        "stage_s": {name: round(bounds[i + 1] - bounds[i], 2) for i, name in enumerate(stages)},
    }


def import_seconds(stderr: str) -> float:
    """The total import time ``-X importtime`` reports: the outermost imports' cumulative times."""
    entries = []
    for line in stderr.splitlines():
        if line.startswith("import time:") and not line.startswith("import time: self"):
            _, cumulative, name = line.split("|", 2)
            entries.append((len(name) - len(name.lstrip()), int(cumulative)))
    outermost = min((depth for depth, _ in entries), default=0)
    return sum(micros for depth, micros in entries if depth == outermost) / 1e6


def stage_split(project: Path, stages: list[str], repro_stage_s: dict[str, float]) -> dict[str, dict[str, float]]:
    """(f): each stage run again on its own in ``project``; its start-up (interpreter + imports) and work."""
    env = subprocess_env()
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], cwd=project, env=env, check=True)
    interpreter_s = time.perf_counter() - started
    split = {}
    for stage in stages:
        started = time.perf_counter()
        completed = subprocess.run([sys.executable, "-X", "importtime", "-m", f"tasks.{stage}"], cwd=project, env=env,
                                   capture_output=True, text=True)
        wall = time.perf_counter() - started
        if completed.returncode != 0:
            raise RuntimeError(f"tasks.{stage} failed on its own in {project}:\n{completed.stderr[-3000:]}")
        startup = interpreter_s + import_seconds(completed.stderr)
        split[stage] = {"wall_s": round(wall, 2), "startup_s": round(startup, 2), "work_s": round(wall - startup, 2),
                        "dvc_s": round(max(repro_stage_s.get(stage, wall) - wall, 0.0), 2)}
    return split


def bag(text: str, exclude: frozenset[str]) -> Counter:
    return Counter(token for token in text.split() if token not in exclude)


def word_agreement(tutorial: list[str], rnnflow: list[str], exclude: frozenset[str]) -> dict[str, Any]:
    """Multiset overlap of each document's tokens (negations excluded on both sides), summed over documents."""
    shared = union = tutorial_total = rnnflow_total = 0
    only_tutorial: Counter = Counter()
    only_rnnflow: Counter = Counter()
    for left, right in zip(tutorial, rnnflow):
        a, b = bag(left, exclude), bag(right, exclude)
        shared += sum((a & b).values())
        union += sum((a | b).values())
        tutorial_total += sum(a.values())
        rnnflow_total += sum(b.values())
        only_tutorial.update(a - b)
        only_rnnflow.update(b - a)
    return {
        "same_words_fraction": round(shared / union, 4) if union else None,
        "tutorial_tokens_kept_by_rnnflow": round(shared / tutorial_total, 4) if tutorial_total else None,
        "rnnflow_tokens_kept_by_tutorial": round(shared / rnnflow_total, 4) if rnnflow_total else None,
        "tutorial_tokens": tutorial_total,
        "rnnflow_tokens": rnnflow_total,
        "top_only_tutorial": only_tutorial.most_common(12),
        "top_only_rnnflow": only_rnnflow.most_common(12),
    }


def bench_clean(rows: int, lower_bound: bool) -> dict[str, Any]:
    """(a): the IMDB reviews cleaned both ways, in this process."""
    import pandas as pd
    import yaml

    from tutorial_recipe import tutorial_clean  # sets NLTK_DATA to the offline mirror if unset

    texts = pd.read_csv(IMDB, nrows=rows or None)["text"].astype(str).tolist()
    import nltk  # noqa: F401  (shared by both: imported before either clock starts)

    from tasks.inputs.textclean import NEGATIONS, CleanOptions, Lemmatizer, clean_column, clean_texts, lemmatizer

    for corpus in ("wordnet", "stopwords"):  # warm the OS file cache: neither side pays the first disk read
        for path in (SHARED / "nltk_data" / "corpora").glob(f"{corpus}*"):
            if path.is_file():
                path.read_bytes()
    params = yaml.safe_load((ROOT / "params.yaml").read_text())["clean"]
    # The tutorial's steps, so both sides produce the same words (params.yaml's defaults keep
    # every word and punctuation mark, which measured best for the RNN but is less work).
    tutorial_steps = {"lemmatize": True, "remove_stopwords": True, "remove_punctuation": True, "keep_stopwords": []}
    options = CleanOptions.from_params({**params, **params["text_classification"], **tutorial_steps})
    workers = params.get("workers") or os.cpu_count() or 1

    log(f"(a) tutorial clean of {len(texts)} IMDB reviews (word_tokenize path)")
    timings: dict[str, float] = {}
    started = time.perf_counter()
    tutorial = tutorial_clean(texts, timings)
    tutorial_s = time.perf_counter() - started

    log(f"(a) rnnflow clean_column, {workers} workers")
    started = time.perf_counter()
    rnnflow = clean_column(texts, options, workers)
    rnnflow_s = time.perf_counter() - started

    result: dict[str, Any] = {
        "rows": len(texts),
        "tutorial_clean_s": round(tutorial_s, 3),
        "tutorial_wordnet_load_s": timings.get("wordnet_load_s"),
        "rnnflow_clean_s": round(rnnflow_s, 3),
        "rnnflow_workers": workers,
        "clean_speedup": round(tutorial_s / rnnflow_s, 2),
    }

    # Detail: rnnflow's WordNet load alone, and one process (WordNet loaded; the parent's token cache is cold).
    started = time.perf_counter()
    Lemmatizer()
    result["rnnflow_wordnet_load_s"] = round(time.perf_counter() - started, 3)
    log("(a) rnnflow clean_texts in one process (for the parallel speed-up)")
    lemmatizer()._cache.clear()  # cold token cache, as each pool worker starts (one chunk runs in this process)
    started = time.perf_counter()
    serial = clean_texts(texts, options)
    result["rnnflow_clean_1worker_s"] = round(time.perf_counter() - started, 3)
    result["rnnflow_parallel_speedup"] = round(result["rnnflow_clean_1worker_s"] / rnnflow_s, 2)
    result["rnnflow_parallel_matches_serial"] = serial == rnnflow

    if lower_bound:
        # The tutorial with TreebankWordTokenizer on the whole text (no sentence split): its cheapest
        # reading. WordNet is loaded by now, so its load time from the first run is added back.
        log("(a) tutorial clean, TreebankWordTokenizer (lower bound)")
        started = time.perf_counter()
        tutorial_clean(texts, tokenizer="treebank")
        treebank_s = time.perf_counter() - started + (timings.get("wordnet_load_s") or 0.0)
        result["tutorial_clean_treebank_s"] = round(treebank_s, 3)
        result["clean_speedup_treebank"] = round(treebank_s / rnnflow_s, 2)

    exclude = frozenset(NEGATIONS | {"n't"})
    result["word_agreement"] = word_agreement(tutorial, rnnflow, exclude)
    result["same_words_fraction"] = result["word_agreement"]["same_words_fraction"]
    result["word_agreement"]["excluded"] = sorted(exclude)
    # Words only (alphabetic tokens): leaves out the tutorial's punctuation leftovers ('s, ``, ...) and numbers.
    alphabetic = word_agreement(*(([" ".join(t for t in text.split() if t.isalpha()) for text in side]) for side in (tutorial, rnnflow)), exclude)
    result["word_agreement"]["same_words_fraction_alphabetic"] = alphabetic["same_words_fraction"]
    return result


def make_project(path: Path, source: Path, overrides: dict[tuple[str, ...], Any] | None = None) -> Path:
    """A git + DVC copy of the project's pipeline at ``path``, set to the clothing reviews
    (``source``), with ``overrides`` (key path -> value) applied to params.yaml."""
    import yaml

    path.mkdir(parents=True)
    shutil.copytree(ROOT / "tasks", path / "tasks", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy(ROOT / name, path / name)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["ingest"].update({"dataset": "clothing_reviews", "source": str(source.resolve())})
    for keys, value in (overrides or {}).items():
        section = params
        for key in keys[:-1]:
            section = section[key]
        section[keys[-1]] = value
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (path / ".gitignore").write_text("__pycache__/\n/checkpoints/\n")
    env = subprocess_env()
    for command in (
        ["git", "init", "-q"],
        ["git", "config", "user.email", "bench@rnnflow.local"],
        ["git", "config", "user.name", "rnnflow bench"],
        ["dvc", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "bench project"],
    ):
        subprocess.run(command, cwd=path, env=env, check=True, capture_output=True)
    return path


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def bench_e2e(workdir: Path, rows: int, overrides: dict[tuple[str, ...], Any]) -> dict[str, Any]:
    """(b)-(e): the tutorial process against `dvc repro` of a fresh project copy; no-op and param-change reruns."""
    import pandas as pd
    import yaml

    source = CLOTHING
    if rows:
        source = workdir / "clothing_subset.csv.gz"
        pd.read_csv(CLOTHING).head(rows).to_csv(source, index=False)
    result: dict[str, Any] = {"e2e_source_rows": rows or int(len(pd.read_csv(CLOTHING))),
                              "rnnflow_params": {".".join(keys): value for keys, value in overrides.items()}}

    log(f"(b) tutorial recipe process on {source.name}")
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "tutorial_recipe.py"), "--clothing", str(source)],
        cwd=ROOT, env=subprocess_env(), capture_output=True, text=True,
    )
    tutorial_s = time.perf_counter() - started
    (workdir / "tutorial.log").write_text(completed.stdout + completed.stderr)
    if completed.returncode != 0:
        raise RuntimeError(f"tutorial_recipe.py failed ({completed.returncode}):\n{completed.stderr[-3000:]}")
    tutorial = json.loads(completed.stdout[completed.stdout.index("{"):])

    project = make_project(workdir / "project", source, overrides)
    log(f"(b) dvc repro from scratch in {project}")
    first = run_timed(["dvc", "repro"], project, workdir / "repro_1.log")
    evaluation = read_json(project / "metrics" / "evaluate.json")
    train = read_json(project / "metrics" / "train.json")
    clean = read_json(project / "metrics" / "clean.json")

    log("(c) dvc repro, nothing changed")
    noop = run_timed(["dvc", "repro"], project, workdir / "repro_2.log")

    params = yaml.safe_load((project / "params.yaml").read_text())
    section = params["train"]["text_classification"]
    epochs = section["epochs"]
    section["epochs"] = epochs - 1 if epochs > 1 else epochs + 1
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    log(f"(d) dvc repro after train.text_classification.epochs {epochs} -> {section['epochs']}")
    changed = run_timed(["dvc", "repro"], project, workdir / "repro_3.log")

    log("(f) each stage again on its own: start-up against work")
    split = stage_split(project, first["stages"], first["stage_s"])

    result.update(
        {
            "tutorial_s": round(tutorial_s, 2),
            "rnnflow_repro_s": first["seconds"],
            "e2e_ratio": round(first["seconds"] / tutorial_s, 3),
            "rnnflow_stage_s": first["stage_s"],
            "stage_split": split,
            "startup_s_total": round(sum(part["startup_s"] for part in split.values()), 2),
            "tutorial_timings": tutorial["timings"],
            "tutorial_accuracy": tutorial["accuracy"],
            "tutorial_macro_f1": tutorial["macro_f1"],
            "tutorial_minority_f1": tutorial["minority_f1"],
            "tutorial_roc_auc": tutorial["roc_auc"],
            "tutorial_majority_rate": tutorial["majority_rate"],
            "tutorial_rows": tutorial["rows"],
            "tutorial_train_samples_per_s": tutorial["train_samples_per_s"],
            "padding_fraction_fixed_length": tutorial["padding_fraction_fixed_length"],
            "rnnflow_accuracy": evaluation.get("accuracy"),
            "rnnflow_macro_f1": evaluation.get("macro_f1"),
            "rnnflow_minority_f1": evaluation.get("minority_f1"),
            "rnnflow_roc_auc": evaluation.get("roc_auc"),
            "rnnflow_majority_rate": evaluation.get("majority_rate"),
            "rnnflow_rows": clean.get("rows"),
            "noop_repro_s": noop["seconds"],
            "noop_stages": noop["stages"],
            "train_change_repro_s": changed["seconds"],
            "train_change_stages": changed["stages"],
            "train_change": f"train.text_classification.epochs {epochs} -> {section['epochs']}",
            "padding_fraction": train.get("padding_fraction"),
            "rnnflow_padding_fraction_fixed_max_len": train.get("padding_fraction_fixed_length"),
            "train_samples_per_s": train.get("train_samples_per_s"),
            "rnnflow_train": train,
        }
    )
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"smoke test: {QUICK_ROWS} IMDB rows and {QUICK_ROWS} clothing rows")
    parser.add_argument("--skip-e2e", action="store_true", help="only (a), the cleaning comparison")
    parser.add_argument("--rows", type=int, default=None, help="IMDB rows for (a) (default all 25,000; --quick 2,000)")
    parser.add_argument("--e2e-rows", type=int, default=None, help="clothing rows for (b)-(e) (default all; --quick 2,000)")
    parser.add_argument("--no-lower-bound", action="store_true", help="skip the TreebankWordTokenizer tutorial variant")
    parser.add_argument("--defaults", action="store_true", help="rnnflow with params.yaml as it is, not the README's clothing command")
    parser.add_argument("--workdir", type=Path, default=None, help="where the temp project goes (default: a new temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the temp project and logs")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    rows = args.rows if args.rows is not None else (QUICK_ROWS if args.quick else 0)
    e2e_rows = args.e2e_rows if args.e2e_rows is not None else (QUICK_ROWS if args.quick else 0)

    report: dict[str, Any] = {
        "quick": args.quick,
        "cpu_count": os.cpu_count(),
        "load_average_start": [round(value, 2) for value in os.getloadavg()],
        "python": sys.version.split()[0],
    }
    started = time.perf_counter()
    report.update(bench_clean(rows, lower_bound=not args.no_lower_bound))

    for key in ("e2e_ratio", "noop_repro_s", "padding_fraction", "train_samples_per_s"):
        report.setdefault(key, None)
    if not args.skip_e2e:
        workdir = args.workdir or Path(tempfile.mkdtemp(prefix="rnnflow-bench-"))
        workdir.mkdir(parents=True, exist_ok=True)
        try:
            report.update(bench_e2e(workdir, e2e_rows, {} if args.defaults else CLOTHING_COMMAND))
        finally:
            if args.keep or args.workdir:
                report["workdir"] = str(workdir)
            else:
                shutil.rmtree(workdir, ignore_errors=True)
    report["bench_s"] = round(time.perf_counter() - started, 1)
    report["load_average_end"] = [round(value, 2) for value in os.getloadavg()]

    headline = ["clean_speedup", "e2e_ratio", "noop_repro_s", "padding_fraction", "train_samples_per_s"]
    emit({key: report[key] for key in headline} | {key: value for key, value in report.items() if key not in headline}, args.out)


if __name__ == "__main__":
    main()
