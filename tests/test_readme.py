"""The README's commands as a newcomer types them: in a fresh shell, after `make run`.

Every `dvc exp run -S` / `--set` override the README shows must name a real parameter (checked
with DVC's own override code on params.yaml, as `dvc exp run` would); the quick commands run
for real in a fresh `bash` whose environment has no virtualenv, on a fresh clone of this
repository with the venv activated the way the README says.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, SHARED, run

README = (ROOT / "README.md").read_text()
ACTIVATE = "source .venv/bin/activate"


def bash_commands(text: str) -> list[str]:
    """Each command of the README's ```bash blocks (continuation lines joined, comments dropped)."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            command = line.split(" #", 1)[0].strip()
            if command and not command.startswith("#"):
                commands.append(command)
    return commands


def overrides(command: str) -> list[str]:
    words = shlex.split(command)
    return [words[index + 1] for index, word in enumerate(words[:-1]) if word in ("-S", "--set", "--set-param")]


def test_the_readme_tells_a_new_shell_to_activate_the_venv():
    quickstart = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    assert "make run" in quickstart and "make test" in quickstart and ACTIVATE in quickstart


def test_every_parameter_the_readme_sets_exists(tmp_path: Path):
    from flows.pipeline import apply_param_overrides

    found = [(command, item) for command in bash_commands(README) for item in overrides(command)]
    assert len(found) >= 10, "the README shows dvc exp run -S examples"
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([str(Path(sys.executable).parent / "dvc"), "init", "-q"], cwd=tmp_path, check=True)
    for command, item in found:
        key, _, value = item.partition("=")
        shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")  # each override on the committed params
        try:
            apply_param_overrides(tmp_path, {key: value})
        except ValueError as error:
            raise AssertionError(f"README command {command!r}: {item} is not a parameter ({error})") from None
    with pytest.raises(ValueError):  # the check itself: a key params.yaml lacks is refused
        apply_param_overrides(tmp_path, {"train.text_classification.no_such_key": "1"})


def test_the_first_commands_naming_the_real_data_are_the_results_commands():
    """Acceptance reruns the first `dvc exp run` line naming each file: it must be the one the
    Results section reports."""
    results = README.split("## Results", 1)[1].split("\n## ", 1)[0]
    for name in ("imdb_train.csv.gz", "womens_clothing_ecommerce_reviews.csv.gz"):
        first = next(command for command in bash_commands(README) if command.startswith("dvc exp run") and name in command)
        assert first in " ".join(results.split()).replace("\\ ", " ") or first in bash_commands(results), (name, first)


@pytest.mark.slow
def test_readme_commands_work_in_a_fresh_shell(trained_copy: Path, tmp_path: Path):
    """A fresh clone; `make run`'s venv (this one, linked); a shell without it on PATH."""
    project = trained_copy
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "trained"], project)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(project), str(clone)], tmp_path)
    shutil.copytree(project / ".dvc" / "cache", clone / ".dvc" / "cache")
    (clone / ".venv").symlink_to(Path(sys.executable).parents[1])
    env = {"HOME": os.environ.get("HOME", str(tmp_path)), "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
    if (SHARED / "nltk_data").is_dir():
        env["NLTK_DATA"] = str(SHARED / "nltk_data")
    (clone / "reviews.csv").write_text('text\n"I love it, perfect!"\nAwful and cheap.\n')
    commands = [
        "dvc checkout",
        "dvc repro",
        "dvc metrics show",
        "dvc plots show",
        "python -m tasks.predict reviews.csv --text-column text -o scored.csv",
        "python -m flows.pipeline --help",
        "python -m tasks.generate --help",
    ]
    shown = bash_commands(README)
    for command in commands[1:5]:
        assert command in shown, f"the README no longer shows {command!r}"
    for command in commands:
        result = subprocess.run(["bash", "--noprofile", "--norc", "-c", f"{ACTIVATE} && {command}"], cwd=clone, env=env,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"{command}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    assert pd.read_csv(clone / "scored.csv")["text"].tolist() == ["I love it, perfect!", "Awful and cheap."]
    without = subprocess.run(["bash", "--noprofile", "--norc", "-c", "dvc --version"], cwd=clone, env=env,
                             capture_output=True, text=True)
    assert without.returncode != 0  # the shell really is fresh: only the activated venv provides dvc
