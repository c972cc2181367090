"""The project files a stage runs, as manifests DVC depends on instead of folders of code.

:func:`closure` is a module's static import graph over ``tasks``, walked from its source.

Every ``import tasks.x`` / ``from tasks.x import y`` in a module counts, at any depth (a function's
lazy import too: the process may run it), with the packages a submodule import executes
(``tasks/__init__.py``...). Imports that name a module by a string (the kind registry, a profile's
reader) are not followed: :func:`stage_modules` adds those roots for a stage. The source stage
(always run) writes each stage's :func:`stage_manifest` to ``data/stages/<stage>.json``.
Standard library only.
"""
from __future__ import annotations

import ast
import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

PACKAGE = "tasks"


def module_file(name: str, root: Path = Path(".")) -> Path | None:
    """The file of project module ``name`` (``tasks.a.b`` -> ``tasks/a/b.py`` or ``tasks/a/b/__init__.py``)."""
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _packages(name: str) -> list[str]:
    """``tasks.a.b`` -> ``tasks``, ``tasks.a``: the packages importing it executes first."""
    parts = name.split(".")
    return [".".join(parts[:index]) for index in range(1, len(parts))]


@lru_cache(maxsize=None)
def _imported(path: str, name: str, root: str) -> tuple[str, ...]:
    """The project modules the file of module ``name`` imports (at any depth of its code)."""
    tree = ast.parse(Path(root, path).read_text(), filename=path)
    is_package = path.endswith("__init__.py")
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against this module's package
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] != PACKAGE:
                continue
            found.add(module)
            for alias in node.names:  # `from tasks import clean`: a submodule, when one exists
                if module_file(f"{module}.{alias.name}", Path(root)):
                    found.add(f"{module}.{alias.name}")
    return tuple(sorted(found))


def closure(modules: Iterable[str], root: Path = Path(".")) -> list[str]:
    """Repo-relative paths of every project file that importing ``modules`` can run, sorted."""
    seen: dict[str, Path] = {}
    pending = list(modules)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        path = module_file(name, root)
        if path is None:
            raise ModuleNotFoundError(f"{name}: no such project module under {root.resolve()}")
        seen[name] = path
        pending.extend(_packages(name))
        pending.extend(_imported(path.relative_to(root).as_posix(), name, str(root)))
    return sorted(path.relative_to(root).as_posix() for path in seen.values())


# --------------------------------------------------------------------------- per-stage code manifests

# The stages whose work depends on the task kind: each runs its own part of the data's kind
# (tasks/kinds/<kind>/<stage>.py), which the kind registry imports by name.
KIND_STAGES = ("ingest", "validate", "clean", "tokenize", "baseline", "train", "evaluate")
# The stages that read the params section of the same name, merged for the kind
# (tasks.kinds.settings): shared keys plus the kind's subsection, never another kind's.
KIND_SECTIONS = ("clean", "tokenize", "baseline", "train", "evaluate")
MANIFEST_STAGES = ("ingest", "validate", "clean", "tokenize", "baseline", "pretrain", "train", "evaluate")


def stage_modules(stage: str, kind: str, reader: str) -> list[str]:
    """The project modules ``stage`` runs for data of ``kind``; ``reader``: the ingest profile's
    reader module (ingest imports it by name)."""
    modules = [f"{PACKAGE}.{stage}"]
    if stage in KIND_STAGES:
        modules.append(f"{PACKAGE}.kinds.{kind}.{stage}")
    if stage == "ingest":
        modules.append(reader)
    return modules


def data_files(stage: str, kind: str) -> list[str]:
    """Project files other than code that ``stage`` reads: validate's expectation suite."""
    return [f"{PACKAGE}/checks/expectations/{kind}.json"] if stage == "validate" else []


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def stage_manifest(stage: str, kind: str, reader: str, params: dict[str, Any], root: Path = Path(".")) -> dict[str, Any]:
    """What ``stage`` runs for this data: its kind, every project file its process can import or
    read with the file's md5, and the params it reads. DVC depends on this instead of on folders of
    code, so the stage reruns exactly when one of these changed."""
    files = closure(stage_modules(stage, kind, reader), root) + data_files(stage, kind)
    return {"stage": stage, "kind": kind, "code": {path: _md5(root / path) for path in files}, "params": params}
