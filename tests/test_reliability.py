"""Bad input, crashes, concurrent runs: never lose data, never ship a bad model.

Two real git + DVC projects, each built once per module:

- ``clothing_project``: one good `dvc repro` on a synthetic clothing-reviews CSV, then every
  broken source in turn. Table-level problems stop the pipeline with the file/row/column
  named and leave every recorded output byte-identical; row-level problems are quarantined
  and the run goes on.
- ``crash_project``: bigger data and 6 epochs; SIGKILL of training (it resumes), of the clean
  stage mid-write (the old output or none, never half of one), two `dvc repro` at once (one
  fails on DVC's lock, a waiting one takes over after the first is killed) and a clean
  `dvc status` afterwards.

The stages keep their outputs on failure only because dvc.yaml marks the ingest and
validate outputs ``persist: true`` (DVC deletes a stage's other outputs before running it);
:func:`with_reliability_outs` applies that to the test projects' dvc.yaml and
:func:`test_dvc_yaml_keeps_the_last_good_outputs` checks the repository's own.
"""
from __future__ import annotations

import copy
import glob
import hashlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import ROOT, SHARED, make_project, run, synthetic_reviews, up_to_date
from tasks.core import artifacts, common
from tasks.networks import training

# --------------------------------------------------------------------------- dvc.yaml: keep the last good outputs

REFERENCE_OUT = "reports/validation/reference_profile.json"
PERSISTENT = {
    "ingest": ["data/ingested/reviews.parquet", "metrics/ingest.json"],
    "validate": ["data/validated/reviews.parquet", "data/validated/quarantine.parquet", "reports/data_docs",
                 "reports/eda", "reports/validation/summary.json", REFERENCE_OUT],
}


def _outputs(stage: dict):
    """(kind, index, path, options) for each output entry of a dvc.yaml stage."""
    for kind in ("outs", "metrics", "plots"):
        for index, item in enumerate(stage.get(kind) or []):
            path, options = (item, {}) if isinstance(item, str) else next(iter(item.items()))
            yield kind, index, path, options or {}


def with_reliability_outs(spec: dict) -> dict:
    """``dvc.yaml`` with the drift reference declared and the ingest/validate outputs persistent."""
    spec = copy.deepcopy(spec)
    for name, paths in PERSISTENT.items():
        stage = spec["stages"][name]
        if REFERENCE_OUT in paths and REFERENCE_OUT not in {path for _, _, path, _ in _outputs(stage)}:
            stage.setdefault("outs", []).append({REFERENCE_OUT: {"cache": False}})
        for kind, index, path, options in list(_outputs(stage)):
            if path in paths:
                stage[kind][index] = {path: {**options, "persist": True}}
    return spec


def not_persistent(spec: dict) -> list[str]:
    """The outputs of :data:`PERSISTENT` that ``spec`` lacks or does not mark ``persist: true``."""
    found = {(name, path): options.get("persist") is True
             for name in PERSISTENT for _, _, path, options in _outputs(spec["stages"][name])}
    return [f"{name}: {path}" for name, paths in PERSISTENT.items() for path in paths if not found.get((name, path))]


def test_dvc_yaml_keeps_the_last_good_outputs():
    """DVC deletes a stage's outputs before running it unless they persist: a failed ingest or
    validate would otherwise leave the checkout without its last good data and reports."""
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    assert not_persistent(with_reliability_outs(spec)) == []
    assert not_persistent(spec) == [], "apply with_reliability_outs() to dvc.yaml"


# --------------------------------------------------------------------------- helpers


def _env() -> dict[str, str]:
    """What conftest.run gives a command: the venv first on PATH, the offline NLTK data."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    if (SHARED / "nltk_data").is_dir():
        env.setdefault("NLTK_DATA", str(SHARED / "nltk_data"))
    return env


def start(command: list[str], cwd: Path, log: Path) -> subprocess.Popen:
    """Start a command in its own process group, output to ``log``."""
    handle = log.open("w")
    return subprocess.Popen(command, cwd=cwd, env=_env(), stdout=handle, stderr=subprocess.STDOUT,
                            start_new_session=True, text=True)


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the process and everything it started (DVC runs a stage's command in its group)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=60)


def wait_for(condition, timeout: float, what: str, process: subprocess.Popen | None = None, poll: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process is not None and process.poll() is not None:
            raise AssertionError(f"process ended (exit {process.returncode}) before {what}")
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def hashes(root: Path, patterns: list[str]) -> dict[str, str]:
    return {str(path.relative_to(root)): sha256(path)
            for pattern in patterns for path in sorted(root.glob(pattern)) if path.is_file()}


def set_params(root: Path, **sections: dict) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    for section, values in sections.items():
        params[section].update(values)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def commit(root: Path, message: str) -> None:
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", message, "--allow-empty"], root)


def restore(root: Path) -> None:
    """Back to the last commit: tracked files (params, dvc.lock, uncached metrics), untracked
    files removed (not ignored ones: DVC's outputs), cached outputs checked out again."""
    run(["git", "checkout", "-q", "--", "."], root)
    run(["git", "clean", "-qfd"], root)
    run(["dvc", "checkout", "-q"], root)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------- bad input

DEPARTMENTS = [("General", "Tops", "Knits"), ("General", "Dresses", "Dresses"), ("General Petite", "Bottoms", "Pants")]
RECORDED = ["models/model.keras", "models/model.json", "metrics/*.json", "reports/validation/*.json",
            "plots/evaluate/*", "data/validated/*.parquet", "data/clean/*", "data/tokenized/*"]
INGEST_OUTPUTS = {"metrics/ingest.json"}


def clothing_csv(rows: int = 300, seed: int = 0, positive_rate: float = 0.7) -> pd.DataFrame:
    """The Women's E-Commerce Clothing Reviews layout (blank first header) with synthetic reviews."""
    base = synthetic_reviews(rows, seed, positive_rate)
    rng = random.Random(seed)
    places = [DEPARTMENTS[number % 3] for number in range(rows)]
    return pd.DataFrame({
        "": range(rows),
        "Clothing ID": [rng.randint(1000, 1200) for _ in range(rows)],
        "Age": [rng.randint(18, 80) for _ in range(rows)],
        "Title": ["" if number % 4 == 0 else rng.choice(["Nice", "Hmm", "Ok", "Wow"]) for number in range(rows)],
        "Review Text": base["text"],
        "Rating": [rng.choice([4, 5]) if label else rng.choice([1, 2]) for label in base["label"]],
        "Recommended IND": base["label"],
        "Positive Feedback Count": [rng.randint(0, 20) for _ in range(rows)],
        "Division Name": [place[0] for place in places],
        "Department Name": [place[1] for place in places],
        "Class Name": [place[2] for place in places],
    })


@pytest.fixture(scope="module")
def clothing_project(tmp_path_factory) -> dict:
    """A tiny clothing-reviews project after one good `dvc repro`, committed, and its output hashes."""
    root = make_project(tmp_path_factory.mktemp("reliability") / "project")
    spec = yaml.safe_load((root / "dvc.yaml").read_text())
    (root / "dvc.yaml").write_text(yaml.safe_dump(with_reliability_outs(spec), sort_keys=False))
    clothing_csv().to_csv(root / "data/raw/clothing.csv", index=False)
    set_params(root, ingest={"dataset": "clothing_reviews", "source": "data/raw/clothing.csv"},
               validate={"rating_max": 5})
    commit(root, "clothing data")
    started = time.perf_counter()
    run(["dvc", "repro"], root)
    commit(root, "good run")
    recorded = hashes(root, RECORDED)
    assert {"models/model.keras", "metrics/evaluate.json", "reports/validation/summary.json", REFERENCE_OUT,
            "plots/evaluate/roc.csv"} <= set(recorded)
    print(f"good dvc repro: {time.perf_counter() - started:.0f}s")
    return {"root": root, "hashes": recorded}


def _write(name: str, data: bytes | str):
    def make(root: Path) -> str:
        path = root / "data/raw" / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return f"data/raw/{name}"
    return make


def _csv_bytes(frame: pd.DataFrame, **kwargs) -> bytes:
    return frame.to_csv(index=False, **kwargs).encode()


def _non_utf8(root: Path) -> str:
    data = bytearray(_csv_bytes(clothing_csv()))
    second_line_end = data.index(b"\n", data.index(b"\n") + 1)
    data[second_line_end + 1:second_line_end + 1] = b"\xff\xfe caf\xe9 "  # Latin-1 on line 3
    (root / "data/raw/latin1.csv").write_bytes(bytes(data))
    return "data/raw/latin1.csv"


def _nul(root: Path) -> str:
    data = _csv_bytes(clothing_csv()).split(b"\n")
    data[3] = data[3] + b"\x00\x00"
    (root / "data/raw/nul.csv").write_bytes(b"\n".join(data))
    return "data/raw/nul.csv"


def _truncated_parquet(root: Path) -> str:
    path = root / "data/raw/reviews.parquet"
    clothing_csv().astype({"Review Text": "string"}).to_parquet(path, index=False)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return "data/raw/reviews.parquet"


# (id, make the source -> its params.yaml path, stage that stops, words stderr must contain)
TABLE_LEVEL = [
    ("empty_file", _write("empty.csv", ""), "ingest", ["data/raw/empty.csv: file is empty"]),
    ("header_only", _write("header.csv", _csv_bytes(clothing_csv().head(0))), "ingest",
     ["data/raw/header.csv: no data rows (header only?)"]),
    ("missing_text_column", _write("no_text.csv", _csv_bytes(clothing_csv().drop(columns=["Review Text"]))), "ingest",
     ["data/raw/no_text.csv: missing column(s) ['Review Text']"]),
    ("wrong_delimiter", _write("semicolons.csv", _csv_bytes(clothing_csv(), sep=";")), "ingest",
     ["data/raw/semicolons.csv: missing column(s)", "wrong delimiter?"]),
    ("non_utf8", _non_utf8, "ingest", ["data/raw/latin1.csv: line 3 is not UTF-8", "byte 0xff"]),
    ("nul_bytes", _nul, "ingest", ["data/raw/nul.csv: NUL byte at line 4"]),
    ("truncated_parquet", _truncated_parquet, "ingest", ["data/raw/reviews.parquet: cannot be read as .parquet"]),
    ("missing_path", lambda root: "data/raw/does_not_exist.csv", "source",
     ["data/raw/does_not_exist.csv: no such file or folder"]),
    ("glob_matching_nothing", lambda root: "data/raw/nothing-*.csv", "source", ["data/raw/nothing-*.csv: the pattern matches no file"]),
    ("url_not_answering", lambda root: f"http://127.0.0.1:{closed_port()}/x.csv", "source",
     ["http://127.0.0.1:", "/x.csv", "could not download after 3 attempts"]),
    ("one_class_only", _write("positive.csv", _csv_bytes(clothing_csv(positive_rate=1.0))), "validate",
     ["expect_column_min_to_be_between failed for column 'count'", "classes: 'negative' 0 rows"]),
    ("class_balance_drift", _write("drifted.csv", _csv_bytes(clothing_csv(seed=4, positive_rate=0.2))), "validate",
     ["drift check 'class_share_delta'", "fail threshold 0.25", REFERENCE_OUT]),
]


@pytest.mark.slow
@pytest.mark.parametrize("make_source,stops_at,expected", [case[1:] for case in TABLE_LEVEL],
                         ids=[case[0] for case in TABLE_LEVEL])
def test_table_level_problem_stops_and_changes_nothing(clothing_project, make_source, stops_at, expected):
    root, recorded = clothing_project["root"], clothing_project["hashes"]
    try:
        set_params(root, ingest={"source": make_source(root)})
        result = run(["dvc", "repro"], root, check=False)
        assert result.returncode != 0, result.stdout
        for words in expected:
            assert words in result.stderr, f"{words!r} not in stderr:\n{result.stderr}"
        assert "Traceback" not in result.stderr
        ran = [stage for stage in ("ingest", "validate", "clean") if f"Running stage '{stage}'" in result.stdout]
        assert ran == {"source": [], "ingest": ["ingest"], "validate": ["ingest", "validate"]}[stops_at], result.stdout
        # Byte for byte, the last good outputs are still there (ingest's own outputs differ
        # only when ingest itself succeeded and a later check stopped the pipeline).
        now = hashes(root, RECORDED)
        ignore = INGEST_OUTPUTS if stops_at == "validate" else set()
        assert {k: v for k, v in now.items() if k not in ignore} == {k: v for k, v in recorded.items() if k not in ignore}
        if stops_at != "validate":
            assert (root / "data/ingested/reviews.parquet").exists()
        temporaries = [path for folder in ("data/ingested", "data/validated", "reports/validation")
                       for path in (root / folder).glob(".*") if path.name != ".gitignore"]
        assert temporaries == []
    finally:
        restore(root)


@pytest.mark.slow
def test_row_level_problems_are_quarantined_and_the_run_goes_on(clothing_project):
    root = clothing_project["root"]
    good = clothing_csv()
    bad = clothing_csv(rows=6, seed=9)
    bad[""] = [1000, 1001, 1002, 1003, 5, 1005]  # 5: an id the good rows already have
    bad["Rating"] = ["0", "6", "five", "", "4", "5"]
    bad.loc[5, "Review Text"] = "Lovely dress " * 400_000  # 5.2 MB in one review
    try:
        pd.concat([good.astype({"Rating": str}), bad], ignore_index=True).to_csv(root / "data/raw/mixed.csv", index=False)
        assert (root / "data/raw/mixed.csv").stat().st_size > 5_000_000
        set_params(root, ingest={"source": "data/raw/mixed.csv"})
        result = run(["dvc", "repro"], root)
        assert "Running stage 'validate'" in result.stdout
        quarantine = pd.read_parquet(root / "data/validated/quarantine.parquet").set_index("id")
        assert quarantine["reason"].to_dict() == {
            "clothing-1000": "rating 0 outside [1, 5]",
            "clothing-1001": "rating 6 outside [1, 5]",
            "clothing-1002": "label is missing; rating is missing",
            "clothing-1003": "label is missing; rating is missing",
            "clothing-5": "duplicate id",
            "clothing-1005": "text length outside [3, 100000] chars",
        }
        summary = json.loads((root / "reports/validation/summary.json").read_text())
        assert summary["rows_in"] == 306 and summary["rows_quarantined"] == 6 and summary["rows_accepted"] == 300
        assert summary["drift"]["status"] in ("ok", "warn")
        # The accepted rows are exactly the good ones: nothing downstream changes, the model included.
        accepted = pd.read_parquet(root / "data/validated/reviews.parquet")
        assert sorted(accepted["id"]) == sorted(f"clothing-{n}" for n in range(300))
        assert up_to_date(run(["dvc", "status"], root).stdout)
        assert sha256(root / "models/model.keras") == clothing_project["hashes"]["models/model.keras"]
    finally:
        restore(root)


@pytest.mark.slow
def test_after_all_bad_inputs_the_checkout_is_as_it_was(clothing_project):
    root = clothing_project["root"]
    assert hashes(root, RECORDED) == clothing_project["hashes"]
    assert up_to_date(run(["dvc", "status"], root).stdout)
    assert run(["git", "status", "--porcelain"], root).stdout == ""


# --------------------------------------------------------------------------- crashes and concurrency


def test_unusable_backup_is_discarded(tmp_path, capsys):
    backup = tmp_path / "checkpoints" / "abc"
    assert training.resumable_epoch(backup) == 0
    backup.mkdir(parents=True)
    (backup / training.BACKUP_METADATA).write_text('{"epoch": 3, "weights": "epoch-0003.weights.h5"}')
    (backup / "epoch-0003.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n half of a file")
    assert training.resumable_epoch(backup) == 0
    assert not backup.exists()
    assert "discarding the unusable backup" in capsys.readouterr().err
    backup.mkdir(parents=True)
    (backup / training.BACKUP_METADATA).write_text('{"epoch": 3, "wei')  # killed mid-write
    assert training.resumable_epoch(backup) == 0 and not backup.exists()


@pytest.fixture(scope="module")
def crash_project(tmp_path_factory) -> Path:
    """4,000 reviews (a training epoch takes seconds), 6 epochs without early stopping; run up
    to tokenize and committed. Training runs outside DVC first, then through it."""
    root = make_project(tmp_path_factory.mktemp("crash") / "project", frame=synthetic_reviews(4000, seed=1),
                        overrides={"train": {"text_classification": {"epochs": 6, "early_stopping_patience": 6}}})
    spec = yaml.safe_load((root / "dvc.yaml").read_text())
    (root / "dvc.yaml").write_text(yaml.safe_dump(with_reliability_outs(spec), sort_keys=False))
    run(["dvc", "repro", "tokenize"], root)
    commit(root, "tokenized")
    return root


def _progress(root: Path) -> dict | None:
    try:
        return json.loads((root / artifacts.PROGRESS_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _epoch_reached(root: Path, epoch: int):
    return lambda: (_progress(root) or {}).get("epoch", 0) >= epoch


def _backups(root: Path) -> list[Path]:
    return [path for path in (root / training.CHECKPOINT_ROOT).glob("*") if path.is_dir()]


@pytest.mark.slow
def test_training_killed_mid_epoch_resumes_and_ends_like_an_uninterrupted_run(crash_project, tmp_path):
    root = crash_project
    (root / artifacts.PROGRESS_FILE).unlink(missing_ok=True)
    process = start([sys.executable, "-m", "tasks.train"], root, tmp_path / "killed.log")
    wait_for(_epoch_reached(root, 2), 300, "epoch 2 of the first training", process)
    kill_group(process)
    [backup] = _backups(root)
    killed_at = json.loads((backup / training.BACKUP_METADATA).read_text())["epoch"]
    assert 2 <= killed_at < 6
    assert not (root / "models").exists() and not (root / artifacts.TRAIN_SUMMARY).exists()  # nothing half-written

    resumed = run([sys.executable, "-m", "tasks.train"], root)
    assert f"train: resuming from the backup of epoch {killed_at}" in resumed.stdout
    assert "Epoch 1/6" not in resumed.stdout and f"Epoch {killed_at + 1}/6" in resumed.stdout
    summary = json.loads((root / artifacts.TRAIN_SUMMARY).read_text())
    assert summary["resumed_from_epoch"] == killed_at and summary["epochs_run"] == 6
    steps = pd.read_csv(root / "dvclive/train/plots/metrics/val_auc.tsv", sep="\t")["step"].tolist()
    assert steps == list(range(6))  # every epoch, also those before the kill (step = the epoch index)
    assert _backups(root) == []  # the backup goes once training has finished
    resumed_end = _progress(root)
    assert resumed_end["epoch"] == 6 and resumed_end["resumed_from"] == killed_at

    # The same training uninterrupted. A corrupt backup planted for it is discarded, not fatal.
    backup.mkdir(parents=True)
    (backup / training.BACKUP_METADATA).write_text('{"epoch": 4, "weights": "epoch-0004.weights.h5"}')
    (backup / "epoch-0004.weights.h5").write_bytes(b"not HDF5")
    straight = run([sys.executable, "-m", "tasks.train"], root)
    assert "discarding the unusable backup" in straight.stderr and "Epoch 1/6" in straight.stdout
    straight_summary = json.loads((root / artifacts.TRAIN_SUMMARY).read_text())
    straight_end = _progress(root)
    assert straight_summary["resumed_from_epoch"] == 0 and straight_summary["epochs_run"] == 6
    # The resumed run is the same run (tests/test_resume.py compares them bit for bit): the same quality.
    assert abs(resumed_end["val_loss"] - straight_end["val_loss"]) < 0.05
    assert abs(resumed_end["val_accuracy"] - straight_end["val_accuracy"]) < 0.03
    assert abs(summary["val_roc_auc"] - straight_summary["val_roc_auc"]) < 0.02
    leftovers = glob.glob(str(root / ".models.*")) + glob.glob(str(root / "dvclive/.train.*"))
    print(f"resumed from epoch {killed_at}: val_loss {resumed_end['val_loss']:.4f} vs {straight_end['val_loss']:.4f} "
          f"uninterrupted; temporaries left by the kill: {[Path(p).name for p in leftovers]}")


def _kill_clean_mid_write(root: Path, log: Path) -> bool:
    """Run the clean stage and SIGKILL it as soon as its temporary output appears; True if caught."""
    before = set(glob.glob(str(root / "data/.clean.*")))
    process = start([sys.executable, "-m", "tasks.clean"], root, log)
    caught = False
    while process.poll() is None:
        if set(glob.glob(str(root / "data/.clean.*"))) - before:
            kill_group(process)
            caught = True
            break
        time.sleep(0.002)
    process.wait(timeout=60)
    return caught


@pytest.mark.slow
def test_stage_killed_mid_write_leaves_the_old_output_or_none(crash_project, tmp_path):
    root = crash_project
    old = hashes(root, ["data/clean/*"])
    assert set(old) == {f"data/clean/{name}" for name in ("train.parquet", "validation.parquet", "test.parquet", "meta.json")}
    caught = any(_kill_clean_mid_write(root, tmp_path / f"clean{attempt}.log") for attempt in range(3))
    assert caught, "the clean stage finished before its temporary output could be seen"
    # The old output, complete, or (killed between the two renames of a directory swap) none.
    assert hashes(root, ["data/clean/*"]) in (old, {})
    assert not (root / "data/clean.old").exists()
    # A temporary is never at an output's path: DVC does not see it as (part of) an output.
    temporaries = glob.glob(str(root / "data/.clean.*"))
    assert all(Path(path).name.startswith(".clean.") for path in temporaries)
    run([sys.executable, "-m", "tasks.clean"], root)
    assert hashes(root, ["data/clean/*"]) == old  # deterministic: the rerun gives the same bytes
    assert up_to_date(run(["dvc", "status", "--with-deps", "tokenize"], root).stdout)


@pytest.mark.slow
@pytest.mark.xfail(not hasattr(common, "remove_stale_temporaries"), strict=True,
                   reason="tasks/common.atomic_path does not yet remove temporaries left by killed runs")
def test_temporaries_left_by_a_kill_are_removed_by_the_next_run(crash_project, tmp_path):
    root = crash_project
    assert _kill_clean_mid_write(root, tmp_path / "clean.log")
    assert glob.glob(str(root / "data/.clean.*"))
    run([sys.executable, "-m", "tasks.clean"], root)
    assert glob.glob(str(root / "data/.clean.*")) == []


@pytest.mark.slow
def test_concurrent_repro_fails_clearly_and_a_killed_repro_leaves_no_lock(crash_project, tmp_path):
    """A: `dvc repro` trains. B: a second `dvc repro` at the same time fails at once with a
    clear message and changes nothing (DVC releases its repository lock while a stage's
    command runs and guards the stage's files with its rwlock: "'data/tokenized' is busy, it
    is being blocked by (PID of A)"; between stages it is "Unable to acquire lock"). A goes on,
    then is SIGKILLed mid-training with its stage; the next `dvc repro` is not blocked by A's
    stale locks, resumes training from A's backup and finishes; `dvc status` is clean."""
    root = crash_project
    (root / artifacts.PROGRESS_FILE).unlink(missing_ok=True)
    last_good = hashes(root, ["models/*"])
    first = start(["dvc", "repro"], root, tmp_path / "a.log")
    wait_for(lambda: "Running stage 'train'" in (tmp_path / "a.log").read_text(), 300, "A to start training", first)

    listing = (root / "data/source.json").read_bytes()
    blocked = run(["dvc", "repro"], root, check=False, timeout=120)
    assert blocked.returncode != 0
    # Only the always-changed source listing may run (it rewrites the same listing); nothing else.
    assert set(re.findall(r"Running stage '(\w+)'", blocked.stdout)) <= {"source"}, blocked.stdout
    assert (root / "data/source.json").read_bytes() == listing
    busy = f"is busy, it is being blocked by:\n  (PID {first.pid}): " in blocked.stderr
    assert busy or "Unable to acquire lock" in blocked.stderr, blocked.stderr
    assert "Traceback" not in blocked.stderr
    print(f"second dvc repro: {blocked.stderr.strip().splitlines()[0]}")

    wait_for(_epoch_reached(root, 2), 300, "epoch 2 of A's training (undisturbed by B)", first)
    kill_group(first)
    # DVC removed the model before training and the stage put back the last one dvc.lock records
    # (none when the model in place was trained outside DVC): never a half-written one.
    assert hashes(root, ["models/*"]) in ({}, last_good)

    survivor = run(["dvc", "repro"], root, timeout=600)
    assert "Unable to acquire lock" not in survivor.stderr and "is busy" not in survivor.stderr
    assert "Running stage 'train'" in survivor.stdout and "train: resuming from the backup of epoch" in survivor.stdout
    assert "Running stage 'evaluate'" in survivor.stdout
    status = run(["dvc", "status"], root)
    assert up_to_date(status.stdout), status.stdout
    assert json.loads((root / artifacts.TRAIN_SUMMARY).read_text())["epochs_run"] == 6
