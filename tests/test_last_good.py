"""A stage that fails, or is killed, leaves the workspace with its last good outputs, byte for byte.

DVC deletes a stage's outputs before running it unless they persist (which would switch its run
cache off): :mod:`tasks.core.lastgood` puts them back from DVC's cache as the stage starts. Each stage
of a trained tiny project is run to failure through ``dvc repro`` (a damaged input, a bad source,
a SIGKILL mid-training) and every file of the project is compared before and after, the
``cache: false`` metrics and plots included.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, run
from tasks.core import lastgood

# Not compared: DVC's scratch folder, training backups, bytecode.
UNCOMPARED = (".dvc/tmp/", "checkpoints/")


def snapshot(root: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``root`` (git history and DVC cache included)."""
    files = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        leftover = any(part.endswith(".tmp") for part in path.relative_to(root).parts)  # a killed writer's, removed next run
        if path.is_file() and "__pycache__" not in relative and not leftover and not relative.startswith(UNCOMPARED + skip):
            files[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def damage(root: Path, relative: str) -> None:
    (root / relative).write_bytes(b"\x00 not what this file was \xff" * 8)


def declared_outputs(stage: str) -> list:
    declared = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][stage]
    return [item for kind in ("outs", "metrics", "plots") for item in declared.get(kind) or []]


def write_params(root: Path, change) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    change(params)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


# (stage, the input damaged so that the stage fails once DVC has deleted its outputs)
DAMAGED_INPUT = [
    ("ingest", "data/raw/reviews.csv"),  # changed since the source stage listed it
    ("clean", "data/validated/reviews.parquet"),
    ("tokenize", "data/clean/train.parquet"),
    ("baseline", "data/tokenized/meta.json"),
    ("pretrain", "data/pretrain_source.json"),
    ("train", "data/tokenized/meta.json"),
    ("evaluate", "models/model.keras"),
]


@pytest.mark.slow
@pytest.mark.parametrize("stage,damaged", DAMAGED_INPUT, ids=[stage for stage, _ in DAMAGED_INPUT])
def test_a_failing_stage_keeps_its_last_good_outputs(trained_copy, stage, damaged):
    root = trained_copy
    lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"][stage]
    outputs = [item["path"] for item in lock["outs"]]
    before = snapshot(root, skip=(damaged,))
    damage(root, damaged)
    result = run(["dvc", "repro", "--force", "--single-item", stage], root, check=False)
    assert result.returncode != 0, result.stdout
    assert before == snapshot(root, skip=(damaged,)), f"{stage} changed files:\n{result.stdout}\n{result.stderr}"
    assert all((root / path).exists() for path in outputs)
    persisted = all(isinstance(item, dict) and next(iter(item.values())).get("persist") for item in declared_outputs(stage))
    if not persisted:
        assert "the last good" in result.stderr, result.stderr  # DVC deleted them; the stage put them back


@pytest.mark.slow
def test_a_failing_source_keeps_the_last_listing(trained_copy):
    root = trained_copy
    before = snapshot(root, skip=("params.yaml",))
    write_params(root, lambda params: params["ingest"].update(source="data/raw/missing.csv"))
    result = run(["dvc", "repro"], root, check=False)
    assert result.returncode != 0 and "data/raw/missing.csv: no such file or folder" in result.stderr
    assert before == snapshot(root, skip=("params.yaml",))


@pytest.mark.slow
@pytest.mark.parametrize("key,value", [
    ("train.text_classification.model", "transformer"),
    ("train.text_classification.units", 0),
    ("train.text_classification.epochs", 0),
    ("clean.validation_fraction", 1.5),
    ("tokenize.text_classification.vocab_size", 1),
    ("ingest.dataset", "nope"),
    ("train.text_classification.epoch", 3),  # a typo: unknown keys are refused, not ignored
])
def test_a_bad_param_stops_before_any_stage_deletes_anything(trained_copy, key, value):
    root = trained_copy
    before = snapshot(root, skip=("params.yaml",))

    def change(params):
        *parents, last = key.split(".")
        section = params
        for name in parents:
            section = section[name]
        section[last] = value

    write_params(root, change)
    result = run(["dvc", "repro"], root, check=False)
    assert result.returncode != 0
    assert f"params.yaml: {key}" in result.stderr, result.stderr
    assert before == snapshot(root, skip=("params.yaml",))


@pytest.mark.slow
def test_a_training_killed_under_dvc_leaves_the_last_good_model(trained_copy, tmp_path):
    root = trained_copy
    write_params(root, lambda params: params["train"]["text_classification"].update(
        epochs=200, early_stopping_patience=200))
    run([sys.executable, "-m", "tasks.source"], root)  # the new params reach train's manifest, as dvc repro does first
    before = snapshot(root, skip=("params.yaml", "dvc.lock"))
    progress = root / "checkpoints" / "progress.json"
    progress.unlink(missing_ok=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    with open(tmp_path / "repro.log", "w") as log:
        process = subprocess.Popen(["dvc", "repro", "--single-item", "train"], cwd=root, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 300
    while not progress.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert process.poll() is None, (tmp_path / "repro.log").read_text()
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    assert before == snapshot(root, skip=("params.yaml", "dvc.lock"))


def test_restore_puts_back_files_and_folders_from_the_cache(trained_copy, monkeypatch):
    root = trained_copy
    monkeypatch.chdir(root)
    lock = yaml.safe_load(Path("dvc.lock").read_text())["stages"]["clean"]  # run-cached: a folder and a metric
    outputs = [item["path"] for item in lock["outs"]]
    before = snapshot(root)
    for path in map(Path, outputs):
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    assert lastgood.restore("not-a-stage") == []
    monkeypatch.delenv(lastgood.STAGE_VARIABLE, raising=False)
    assert lastgood.restore() == []  # outside a DVC run nothing is restored
    assert sorted(lastgood.restore("clean")) == sorted(outputs) == ["data/clean", "metrics/clean.json"]
    assert snapshot(root) == before
    assert lastgood.restore("clean") == []  # present outputs are left alone


def test_every_stage_is_protected():
    """Each stage's outputs all persist, or none does (persisting one would switch off DVC's run
    cache and its restoring from dvc.lock for the stage) and the stage runs through ``run_main``,
    which restores them (:func:`lastgood.restore`) and keeps what DVC cannot (:func:`lastgood.keep`)."""
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    for name, stage in spec["stages"].items():
        module = stage["cmd"].removeprefix("python -m ").replace(".", "/") + ".py"
        assert "run_main(main)" in (ROOT / module).read_text(), name
        outputs = [(item, {}) if isinstance(item, str) else next(iter(item.items()))
                   for kind in ("outs", "metrics", "plots") for item in stage.get(kind) or []]
        persisted = [bool(options.get("persist")) for _, options in outputs]
        assert all(persisted) or not any(persisted), name
        assert all(persisted) or not stage.get("always_changed"), name


def test_outputs_dvc_keeps_no_copy_of_come_back_from_the_kept_copy(trained_copy, monkeypatch):
    """train is not run-cached (it has an uncached plain output): its metrics and DVCLive plots come
    back from the copy the last successful run kept, its model from DVC's cache."""
    root = trained_copy
    monkeypatch.chdir(root)
    outputs = [item["path"] for item in yaml.safe_load(Path("dvc.lock").read_text())["stages"]["train"]["outs"]]
    before = snapshot(root)
    assert set(lastgood.uncached_outputs("train")) == set(outputs) - {"models"}
    for path in map(Path, outputs):
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    assert sorted(lastgood.restore("train")) == sorted(outputs)
    assert snapshot(root) == before
    # A kept copy that is not what dvc.lock records is never used.
    Path("metrics/train.json").unlink()
    kept = lastgood.COPIES / "train" / "metrics/train.json"
    kept.write_text(kept.read_text().replace("epochs_run", "epochs_ran"))
    assert lastgood.restore("train") == [] and not Path("metrics/train.json").exists()
