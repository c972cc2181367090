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


# A file's import statements by its path and md5 (they change only with its text): this process's
# (kept by the source stage in DVC's scratch folder, :func:`reuse_imports`), and an earlier run's.
_IMPORTS: dict[str, list[list]] = {}
_EARLIER: dict[str, list[list]] = {}


def known_imports() -> dict[str, list[list]]:
    """Every file's import statements this process read: what the next run can reuse."""
    return dict(_IMPORTS)


def reuse_imports(earlier: dict[str, list[list]]) -> None:
    """Import statements an earlier run read (:func:`known_imports`), used while a file's md5 is the
    same; entries of any other shape (a damaged file) are ignored."""
    def well_formed(statements: Any) -> bool:
        return isinstance(statements, list) and all(
            isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str) and isinstance(entry[1], list)
            and all(isinstance(alias, str) for alias in entry[1]) for entry in statements)

    _EARLIER.update({key: value for key, value in earlier.items() if well_formed(value)})


def _statements(source: bytes, path: str, name: str) -> list[list]:
    """Each project import in ``source`` as [module, [names it takes]] (at any depth of its code)."""
    tree = ast.parse(source, filename=path)
    is_package = path.endswith("__init__.py")
    found: list[list] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend([alias.name, []] for alias in node.names if alias.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against this module's package
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] == PACKAGE:
                found.append([module, [alias.name for alias in node.names]])
    return found


def _imported(path: str, name: str, root: str) -> tuple[str, ...]:
    """The project modules the file of module ``name`` imports (at any depth of its code)."""
    source = Path(root, path).read_bytes()
    key = f"{path} {hashlib.md5(source).hexdigest()}"
    if key not in _IMPORTS:
        _IMPORTS[key] = _EARLIER[key] if key in _EARLIER else _statements(source, path, name)
    found: set[str] = set()
    for module, names in _IMPORTS[key]:
        found.add(module)
        # `from tasks import clean`: a submodule when one exists (looked up now: files come and go)
        found.update(f"{module}.{alias}" for alias in names if module_file(f"{module}.{alias}", Path(root)))
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
