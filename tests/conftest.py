"""Shared fixtures: tiny labelled data and a real git + DVC project in a temp dir."""
from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
POSITIVE = ["love", "great", "perfect", "beautiful", "comfortable", "flattering", "soft", "gorgeous"]
NEGATIVE = ["awful", "cheap", "returned", "terrible", "itchy", "disappointed", "poor", "ugly"]
NEUTRAL = ["dress", "fabric", "size", "color", "shirt", "ordered", "wear", "fit", "the", "and", "it", "was"]

# Small and fast, but still a real run of every stage.
TINY_PARAMS = {
    "ingest": {"dataset": "table", "source": "data/raw/reviews.csv", "text_columns": ["text"], "label_column": "label"},
    "validate": {"min_rows": 20},
    "clean": {"workers": 1},
    "tokenize": {"text_classification": {"vocab_size": 200}},
    "train": {"text_classification": {"units": 8, "embedding_dim": 8, "epochs": 3, "batch_size": 16, "bidirectional": False,
                                      "learning_rate": 0.01}},
}


def synthetic_reviews(rows: int = 240, seed: int = 0, positive_rate: float = 0.7) -> pd.DataFrame:
    """Reviews whose label a model can learn from a few sentiment words among filler."""
    rng = random.Random(seed)
    records = []
    for number in range(rows):
        label = int(rng.random() < positive_rate)
        words = rng.choices(NEUTRAL, k=rng.randint(4, 14)) + rng.choices(POSITIVE if label else NEGATIVE, k=rng.randint(1, 3))
        if not label and rng.random() < 0.3:
            words += ["not", rng.choice(POSITIVE)]
        rng.shuffle(words)
        records.append({"id": f"r{number}", "text": " ".join(words).capitalize() + ".", "label": label})
    return pd.DataFrame(records)


def merge_params(base: dict, overrides: dict) -> dict:
    """``base`` updated by ``overrides``, mappings merged key by key at every depth."""
    merged = dict(base)
    for key, value in overrides.items():
        merged[key] = merge_params(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


def run(command: list[str], cwd: Path, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """Run a command with this interpreter's environment first on PATH (for DVC's `python`)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    if (SHARED / "nltk_data").is_dir():
        env.setdefault("NLTK_DATA", str(SHARED / "nltk_data"))  # the temp project has no ../shared beside it
    env.update(kwargs.pop("env", {}))
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def up_to_date(status_output: str) -> bool:
    """`dvc status` says nothing is stale. The source stage is always_changed (it re-lists what
    ingest.source matches on every run), so its "always changed" is the only line allowed."""
    if "Data and pipelines are up to date" in status_output:
        return True
    return [line.strip() for line in status_output.strip().splitlines()] == ["source:", "always changed"]


def commit_all(root: Path, message: str) -> None:
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", message], root)


def make_project(path: Path, frame: pd.DataFrame | None = None, overrides: dict | None = None) -> Path:
    """A git + DVC checkout of this project's pipeline at ``path``, with tiny data and params."""
    path.mkdir(parents=True, exist_ok=True)
    for package in ("tasks", "flows"):
        shutil.copytree(ROOT / package, path / package, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", "prefect.yaml", ".dvcignore"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, path / name)
    params = merge_params(yaml.safe_load((ROOT / "params.yaml").read_text()), TINY_PARAMS)
    params = merge_params(params, overrides or {})
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (path / "data" / "raw").mkdir(parents=True)
    (synthetic_reviews() if frame is None else frame).to_csv(path / "data" / "raw" / "reviews.csv", index=False)
    (path / ".gitignore").write_text("__pycache__/\n/checkpoints/\n")
    run(["git", "init", "-q"], path)
    run(["git", "config", "user.email", "test@rnnflow.local"], path)
    run(["git", "config", "user.name", "rnnflow tests"], path)
    run(["dvc", "init", "-q"], path)
    run(["git", "add", "-A"], path)
    run(["git", "commit", "-qm", "tiny project"], path)
    return path


@pytest.fixture
def tiny_frame() -> pd.DataFrame:
    return synthetic_reviews()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh tiny project (git + DVC), not yet run."""
    return make_project(tmp_path / "project")


FIRST_REPRO_LOG = "first_repro.log"  # beside the trained project: what its first `dvc repro` printed


@pytest.fixture(scope="session")
def trained_project(tmp_path_factory) -> Path:
    """A tiny project after one full `dvc repro`, shared by read-only tests."""
    path = make_project(tmp_path_factory.mktemp("trained") / "project")
    first = run(["dvc", "repro"], path)
    (path.parent / FIRST_REPRO_LOG).write_text(first.stdout)
    return path


@pytest.fixture
def trained_copy(trained_project: Path, tmp_path: Path) -> Path:
    """A private copy of the trained project (git, DVC cache, outputs) for a test that changes it."""
    copy = tmp_path / "project"
    shutil.copytree(trained_project, copy, symlinks=True)
    return copy
