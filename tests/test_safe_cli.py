"""Careless command-line arguments never delete or damage anything.

Real processes (``python -m tasks.predict`` / ``tasks.generate``) in the session's tiny trained
project: a bad argument ends with one line on stderr naming the argument, file or column (no
traceback), a non-zero exit, and the project byte-identical afterwards (every file, ``.git``
and the DVC cache included). Predictions go to ``predicted_*`` columns: an input's own
columns come back exactly as they were. A damaged model file says it is damaged. And
:func:`tasks.core.common.atomic_path` itself refuses targets no writer may replace and only ever
removes the temporary it made.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from conftest import run
from tasks.core.common import PipelineError, atomic_path, check_target

# No bytecode written by the commands (it would change the snapshot); TensorFlow's start-up
# notes silenced (stderr then holds the error line alone).
QUIET = {"PYTHONDONTWRITEBYTECODE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}


def snapshot(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``root`` (``.git`` and ``.dvc`` included);
    folders and links are entries too, so one made or removed shows."""
    entries = {}
    for folder, names, files in os.walk(root):
        names[:] = [name for name in names if name != "__pycache__"]
        for name in names + files:
            path = Path(folder) / name
            relative = path.relative_to(root).as_posix()
            if path.is_symlink():
                entries[relative] = f"link -> {os.readlink(path)}"
            elif path.is_dir():
                entries[relative] = "folder"
            else:
                entries[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return entries


def cli(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run(["python", "-m", module, *args], cwd, check=False, env=QUIET)


def assert_refused(result, *named: str, loads_tensorflow: bool = False) -> str:
    """Non-zero exit; stderr one line (no traceback) naming each of ``named``. Where the
    command got as far as importing TensorFlow, its start-up notes (which no environment
    variable silences) may come before that line: it is then the last line, the only error."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    if loads_tensorflow:
        assert [line for line in lines if line.startswith("error:")] == lines[-1:], result.stderr
    else:
        assert len(lines) == 1, result.stderr
    for name in named:
        assert name in lines[-1], (name, lines[-1])
    return lines[-1]


@pytest.fixture(scope="module")
def project(trained_project: Path, tmp_path_factory) -> Path:
    """A private copy of the trained project (a broken check would damage it), with an input
    to score, a hard link and a symbolic link to it."""
    copy = tmp_path_factory.mktemp("safe_cli") / "project"
    shutil.copytree(trained_project, copy, symlinks=True)
    pd.DataFrame({"text": ["I love it, perfect!", "Awful and cheap."]}).to_csv(copy / "incoming.csv", index=False)
    os.link(copy / "incoming.csv", copy / "hardlink.csv")
    (copy / "symlink.csv").symlink_to("incoming.csv")
    return copy


# --------------------------------------------------------------------------- predict: where it writes

DESTRUCTIVE_OUTPUTS = [
    (".", "is the current folder"),
    ("./", "is the current folder"),
    ("..", "'..'"),
    ("/", "filesystem root"),
    ("", "empty path"),
    ("models", "is an existing folder"),
    ("data/", "is an existing folder"),
    ("new_folder/", "names a folder"),
    ("{root}", "working folder"),
    ("incoming.csv", "is the input file incoming.csv"),
    ("./data/../incoming.csv", "is the input file incoming.csv"),
    ("{root}/incoming.csv", "is the input file incoming.csv"),
    ("hardlink.csv", "is the input file incoming.csv"),
    ("symlink.csv", "is the input file incoming.csv"),
    ("models/scored.csv", "inside the model folder"),
    ("models/model.keras", "inside the model folder"),
    (".git/scored.csv", "inside a .git folder"),
    (".dvc/config", "inside a .dvc folder"),
    ("incoming.csv/scored.csv", "is a file, so nothing can be written under it"),
]


@pytest.mark.parametrize("output, message", DESTRUCTIVE_OUTPUTS, ids=[case[0] or "empty" for case in DESTRUCTIVE_OUTPUTS])
def test_predict_refuses_an_output_that_would_destroy_something(project: Path, output: str, message: str):
    output = output.format(root=project)
    before = snapshot(project)
    result = cli("tasks.predict", "incoming.csv", "-o", output, cwd=project)
    line = assert_refused(result, "-o", message)
    assert line.startswith("error: -o/--output ")
    assert snapshot(project) == before


def test_predict_creates_a_missing_output_folder_and_never_touches_the_input(project: Path, tmp_path: Path):
    before = snapshot(project)
    result = cli("tasks.predict", str(project / "incoming.csv"), "-o", str(tmp_path / "new" / "scored.csv"), cwd=project)
    assert result.returncode == 0, result.stderr
    assert pd.read_csv(tmp_path / "new" / "scored.csv")["text"].tolist() == ["I love it, perfect!", "Awful and cheap."]
    assert snapshot(project) == before
    assert sorted(path.name for path in (tmp_path / "new").iterdir()) == ["scored.csv"]  # no temporary left


@pytest.mark.parametrize("source, message", [("missing.csv", "input missing.csv: no such file"),
                                             ("models", "input models: is a folder")])
def test_predict_names_a_missing_or_folder_input(project: Path, source: str, message: str):
    before = snapshot(project)
    assert_refused(cli("tasks.predict", source, "-o", "scored.csv", cwd=project), message)
    assert snapshot(project) == before


# --------------------------------------------------------------------------- predict: what it writes

def test_input_columns_come_back_exactly_and_predictions_go_to_their_own(trained_project: Path, tmp_path: Path):
    """An input with its own true ``label`` and a ``probability`` column (values a numeric
    round trip would change) keeps them character for character."""
    source = tmp_path / "labelled.csv"
    inputs = pd.DataFrame({
        "id": ["007", "008", "009", "010"],
        "text": ["I love it, perfect and gorgeous!", "Awful, cheap and itchy. Returned.", "  spaced  ", 'a "quoted", comma'],
        "label": ["1", "0", "positive", "1.0"],
        "probability": ["0.50", "1e-3", "", "0.1234567890123"],
    })
    inputs.to_csv(source, index=False)
    result = cli("tasks.predict", str(source), "-o", str(tmp_path / "scored.csv"), cwd=trained_project)
    assert result.returncode == 0, result.stderr
    scored = pd.read_csv(tmp_path / "scored.csv", dtype=str, keep_default_na=False)
    assert list(scored.columns) == [*inputs.columns, "predicted_label", "predicted_probability"]
    pd.testing.assert_frame_equal(scored[inputs.columns], inputs)
    probabilities = scored["predicted_probability"].astype(float)
    assert probabilities.between(0, 1).all() and probabilities[0] > probabilities[1]
    assert set(scored["predicted_label"]) <= {"0", "1"}


@pytest.mark.parametrize("column", ["predicted_label", "predicted_probability"])
def test_an_input_column_predict_would_write_is_refused_by_name(trained_project: Path, tmp_path: Path, column: str):
    source = tmp_path / "taken.csv"
    pd.DataFrame({"text": ["I love it"], column: ["mine"]}).to_csv(source, index=False)
    result = cli("tasks.predict", str(source), "-o", str(tmp_path / "scored.csv"), cwd=trained_project)
    assert_refused(result, f"'{column}'", "taken.csv")
    assert not (tmp_path / "scored.csv").exists()


def test_cheap_checks_come_before_the_model_loads(trained_project: Path, tmp_path: Path):
    """A missing text column is reported even when the model file is damaged: the table is
    checked first (and the damaged model is never reached)."""
    models = tmp_path / "models"
    shutil.copytree(trained_project / "models", models)
    (models / "model.keras").write_bytes(os.urandom(4096))
    (tmp_path / "bad.csv").write_text("body\nhello\n")
    result = cli("tasks.predict", str(tmp_path / "bad.csv"), "--text-column", "review", "-o", str(tmp_path / "x.csv"),
                 "--model-dir", str(models), cwd=trained_project)
    assert_refused(result, "bad.csv: no column 'review'")
    assert not (tmp_path / "x.csv").exists()


# --------------------------------------------------------------------------- a damaged model says so

def _random_bytes(models: Path) -> None:
    (models / "model.keras").write_bytes(os.urandom(4096))


def _truncated(models: Path) -> None:
    data = (models / "model.keras").read_bytes()
    (models / "model.keras").write_bytes(data[: len(data) // 2])


def _no_model_file(models: Path) -> None:
    (models / "model.keras").unlink()


def _not_json(models: Path) -> None:
    (models / "model.json").write_text('{"kind": "text_classification", "classes": [')


def _json_list(models: Path) -> None:
    (models / "model.json").write_text("[1, 2]\n")


def _no_classes(models: Path) -> None:
    card = json.loads((models / "model.json").read_text())
    del card["classes"]
    (models / "model.json").write_text(json.dumps(card))


def _damaged_baseline(models: Path) -> None:
    card = json.loads((models / "model.json").read_text())
    card["ensemble"] = {"baseline": "tfidf_logistic.npz", "rnn_weight": 0.5}
    (models / "model.json").write_text(json.dumps(card))
    (models / "tfidf_logistic.npz").write_bytes(os.urandom(512))


DAMAGE = [
    (_random_bytes, "model.keras: damaged or not a Keras model file (not a .keras zip archive)"),
    (_truncated, "model.keras: damaged or not a Keras model file"),
    (_no_model_file, "model.keras: missing"),
    (_not_json, "model.json: damaged or not a model card (JSON)"),
    (_json_list, "model.json: damaged or not a model card (JSON) (a JSON list, not an object)"),
    (_no_classes, "model.json: damaged or not a classifier's model card (no list of classes)"),
    (_damaged_baseline, "tfidf_logistic.npz: damaged or not the baseline's arrays"),
]


@pytest.mark.parametrize("damage, message", DAMAGE, ids=[case[0].__name__.strip("_") for case in DAMAGE])
def test_a_damaged_model_says_it_is_damaged(trained_project: Path, tmp_path: Path, damage, message: str):
    models = tmp_path / "models"
    shutil.copytree(trained_project / "models", models)
    damage(models)
    pd.DataFrame({"text": ["I love it"]}).to_csv(tmp_path / "in.csv", index=False)
    result = cli("tasks.predict", str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv"), "--model-dir", str(models),
                 cwd=trained_project)
    line = assert_refused(result, message, loads_tensorflow=True)
    assert line.endswith(f"retrain (dvc repro) or restore it (dvc checkout {models})")
    assert not (tmp_path / "out.csv").exists()


# --------------------------------------------------------------------------- generate's arguments

BAD_GENERATE = [
    (["the jury", "--top-k", "0"], "--top-k must be a positive integer"),
    (["the jury", "--top-k", "-3"], "--top-k must be a positive integer"),
    (["the jury", "--temperature", "nan"], "--temperature must be a finite number above 0"),
    (["the jury", "--temperature", "inf"], "--temperature must be a finite number above 0"),
    (["the jury", "--temperature", "0"], "--temperature must be a finite number above 0"),
    (["the jury", "--temperature", "-1"], "--temperature must be a finite number above 0"),
    (["the jury", "--words", "-1"], "--words must be between 0 and 10000"),
    (["the jury", "--words", "10001"], "--words must be between 0 and 10000"),
    (["the jury", "--seed", "-1"], "--seed must be 0 or more"),
    (["   "], "the prompt is empty"),
    ([""], "the prompt is empty"),
]


@pytest.mark.parametrize("args, message", BAD_GENERATE, ids=[" ".join(case[0][1:]) or "empty prompt" for case in BAD_GENERATE])
def test_generate_refuses_bad_settings_before_loading_a_model(trained_project: Path, args: list[str], message: str):
    """Checked before the model loads (this project's model is not even a language model)."""
    assert_refused(cli("tasks.generate", *args, cwd=trained_project), message)


@pytest.fixture(scope="module")
def language_model(tmp_path_factory) -> Path:
    """A tiny language model folder (untrained weights; enough to load and generate)."""
    from tasks.networks import lm
    from tasks.inputs import vocabulary

    models = tmp_path_factory.mktemp("lm") / "models"
    models.mkdir()
    words = ["the", "cat", "sat", "on", "mat", ".", "a", "dog"]
    architecture = {"model": "lstm", "layers": 1, "units": 4, "embedding_dim": 4, "dropout": 0.0, "tied": False}
    lm.build(len(words) + vocabulary.RESERVED, architecture).save_weights(str(models / lm.WEIGHTS_FILE))
    (models / vocabulary.VOCAB_FILE).write_text(vocabulary.vocabulary_text(words), encoding="utf-8")
    (models / "model.json").write_text(json.dumps({"kind": "language_model", "vocab_size": len(words) + vocabulary.RESERVED,
                                                   "architecture": architecture, "clean": {}}))
    return models


def test_generate_clamps_top_k_to_the_vocabulary_and_says_so(trained_project: Path, language_model: Path):
    result = cli("tasks.generate", "the cat", "--words", "3", "--top-k", "500", "--model-dir", str(language_model),
                 cwd=trained_project)
    assert result.returncode == 0, result.stderr
    assert "note: --top-k 500 is more than the model's 8 tokens" in result.stderr
    assert result.stdout.startswith("the cat ... ")


@pytest.mark.parametrize("damage, message", [
    ("random", "model.weights.h5: damaged or not a Keras weights file"),
    ("missing", "model.weights.h5: missing"),
    ("vocabulary", "vocab.txt: damaged or not this model's vocabulary (3 tokens"),
])
def test_a_damaged_language_model_says_it_is_damaged(trained_project: Path, language_model: Path, tmp_path: Path,
                                                     damage: str, message: str):
    models = tmp_path / "models"
    shutil.copytree(language_model, models)
    if damage == "random":
        (models / "model.weights.h5").write_bytes(os.urandom(2048))
    elif damage == "missing":
        (models / "model.weights.h5").unlink()
    else:
        (models / "vocab.txt").write_text("the\ncat\nsat\n")
    result = cli("tasks.generate", "the cat", "--model-dir", str(models), cwd=trained_project)
    assert assert_refused(result, message, loads_tensorflow=True).endswith(f"(dvc checkout {models})")


# --------------------------------------------------------------------------- atomic_path itself

@pytest.fixture
def folder(tmp_path: Path, monkeypatch) -> Path:
    """A working folder with a file and a folder in it, and a neighbour beside it."""
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    (work / "file.txt").write_text("keep me\n")
    (work / "sub" / "inner.txt").write_text("and me\n")
    (tmp_path / "neighbour.txt").write_text("me too\n")
    monkeypatch.chdir(work)
    return tmp_path


REFUSED_TARGETS = [
    (".", None, "is the current folder"), ("./", "file", "is the current folder"), ("", None, "empty path"),
    ("..", "dir", "'..'"), ("sub/..", None, "'..'"), ("/", None, "filesystem root"), ("/", "dir", "filesystem root"),
    ("{work}", "dir", "working folder"), ("{parent}", None, "working folder"),
    ("sub", "file", "is an existing folder; expected a file"), ("file.txt", "dir", "is a file; expected a folder"),
    ("file.txt/x.csv", "file", "is a file, so nothing can be written under it"),
    ("new/", "file", "names a folder"),
]


@pytest.mark.parametrize("target, kind, message", REFUSED_TARGETS)
def test_atomic_path_refuses_before_creating_anything(folder: Path, target: str, kind, message: str):
    target = target.format(work=folder / "work", parent=folder)
    before = snapshot(folder)
    with pytest.raises(PipelineError, match=re.escape(message)):
        with atomic_path(target, kind=kind) as tmp:
            tmp.write_text("never")  # pragma: no cover - never reached
    with pytest.raises(PipelineError):
        check_target(target, kind)
    assert snapshot(folder) == before


def test_atomic_path_only_ever_removes_its_own_temporary(folder: Path):
    before = snapshot(folder)
    for kind, make in (("file", lambda tmp: tmp.write_text("half")), ("dir", lambda tmp: tmp.mkdir())):
        with pytest.raises(RuntimeError):
            with atomic_path("out", kind=kind) as tmp:
                make(tmp)
                raise RuntimeError("the writer fails")
    assert snapshot(folder) == before  # nothing new, nothing lost: no temporaries left either
    with pytest.raises(RuntimeError):
        with atomic_path("sub", kind="dir") as tmp:
            tmp.mkdir()
            (tmp / "half.txt").write_text("half")
            raise RuntimeError("the writer fails")
    with pytest.raises(PipelineError, match="produced nothing"):
        with atomic_path("sub", kind="dir"):
            pass  # a writer that makes nothing: the old folder stays
    assert snapshot(folder) == before


def test_atomic_path_replaces_files_folders_and_links_not_what_links_point_to(folder: Path):
    with atomic_path("sub", kind="dir") as tmp:
        tmp.mkdir()
        (tmp / "new.txt").write_text("new\n")
    assert sorted(path.name for path in Path("sub").iterdir()) == ["new.txt"]
    with atomic_path("deep/er/out.csv", kind="file") as tmp:
        tmp.write_text("a\n")
    assert Path("deep/er/out.csv").read_text() == "a\n"
    Path("link.txt").symlink_to("file.txt")
    with atomic_path("link.txt", kind="file") as tmp:
        tmp.write_text("replaced\n")
    assert not Path("link.txt").is_symlink() and Path("file.txt").read_text() == "keep me\n"
    leftovers = [path for path in folder.rglob("*") if path.name.endswith(".tmp")]
    assert leftovers == []
