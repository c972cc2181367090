"""The project files a module runs: its static import graph over ``tasks``, walked from its source.

Every ``import tasks.x`` / ``from tasks.x import y`` in a module counts, at any depth (a function's
lazy import too: the process may run it), with the packages a submodule import executes
(``tasks/__init__.py``...). Imports that name a module by a string (the kind registry, a profile's
reader) are not followed: the caller adds those roots itself. Standard library only.
"""
from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path
from typing import Iterable

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
