"""The promotion gate: which model is the champion, and the champion record on disk.

A candidate (the model this run left in ``models/``) replaces the champion only when it
clears every floor and beats the champion's metric by more than a margin. Parameters come
from an optional ``promote`` section of ``params.yaml``::

    promote:
      metric: macro_f1          # key of metrics/evaluate.json; higher is better
      min_improvement: 0.0      # candidate must beat the champion by MORE than this
      floors:                   # absolute minimums, checked even when there is no champion
        roc_auc: 0.5

The record is the model registry (:mod:`flows.registry`): in a git checkout a promotion
registers the model as a GTO version on the commit whose ``dvc.lock`` produced it and assigns it
the ``prod`` stage (git tags, read by ``gto show`` and ``dvc artifacts get``). ``champion/`` is
this checkout's cache of it: ``champion.json`` (metrics, dvc.lock hashes, git revision,
experiment, timestamp, the registered version) and ``model/`` (a copy of ``models/``), replaced
together through :func:`tasks.core.common.atomic_path`.
"""
from __future__ import annotations

import copy
import json
import math
import shutil
from pathlib import Path
from typing import Any

from flows import dvcstages, registry
from tasks.core.common import atomic_path

CHAMPION_DIR = Path("champion")
CHAMPION_FILE = "champion.json"
CHAMPION_MODEL = "model"
DEFAULTS: dict[str, Any] = {"metric": "macro_f1", "min_improvement": 0.0, "floors": {"roc_auc": 0.5}}
_EPSILON = 1e-12  # float noise in metric differences must not decide a promotion


def promote_params(params: dict[str, Any] | None) -> dict[str, Any]:
    """``params.yaml``'s ``promote`` section over :data:`DEFAULTS` (``params`` is the whole file)."""
    section = dict((params or {}).get("promote") or {})
    merged = copy.deepcopy(DEFAULTS)
    merged.update({key: value for key, value in section.items() if key != "floors"})
    if "floors" in section:
        merged["floors"] = dict(section["floors"] or {})
    if not isinstance(merged["metric"], str) or not merged["metric"]:
        raise ValueError("params.yaml: promote.metric must be a metric name, e.g. macro_f1")
    merged["min_improvement"] = float(merged["min_improvement"])
    merged["floors"] = {str(key): float(value) for key, value in merged["floors"].items()}
    return merged


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def should_promote(candidate: dict[str, Any], champion: dict[str, Any] | None, params: dict[str, Any]) -> tuple[bool, str]:
    """Decide whether ``candidate`` becomes the champion; return ``(promote, reason)``.

    ``candidate`` and ``champion`` are champion records: ``{"metrics": {...}, "model_md5": ...}``
    (``champion`` is None when there is none yet). ``params`` is the ``promote`` section
    (see :func:`promote_params`; missing keys take the defaults). Pure: no I/O.

    Rules, in order: every floor must be met (``metric >= floor``); the model already
    champion (same ``model_md5``) is not promoted again; with no champion, a candidate that
    meets the floors is promoted; otherwise it must beat the champion's ``metric`` by more
    than ``min_improvement`` (higher is better).
    """
    params = promote_params({"promote": params})
    metric, margin = params["metric"], params["min_improvement"]
    metrics = candidate.get("metrics") or {}
    for name, floor in sorted(params["floors"].items()):
        value = _number(metrics.get(name))
        if value is None:
            return False, f"candidate has no {name} to check against its floor {floor:g}"
        if value < floor:
            return False, f"candidate {name} {value:.4f} is below the floor {floor:g}"
    value = _number(metrics.get(metric))
    if value is None:
        return False, f"candidate has no {metric} (promote.metric)"
    if champion is None:
        return True, f"no champion yet; candidate {metric} {value:.4f} meets the floors"
    if candidate.get("model_md5") and candidate.get("model_md5") == champion.get("model_md5"):
        return False, f"candidate is already the champion (model {candidate['model_md5']})"
    best = _number((champion.get("metrics") or {}).get(metric))
    if best is None:
        return True, f"champion has no {metric} recorded; candidate {metric} {value:.4f} meets the floors"
    gain = value - best
    if gain > margin + _EPSILON:
        return True, f"candidate {metric} {value:.4f} beats the champion's {best:.4f} by {gain:+.4f} (> {margin:g})"
    return False, f"candidate {metric} {value:.4f} does not beat the champion's {best:.4f} by more than {margin:g} ({gain:+.4f})"


def read_champion(root: str | Path) -> dict[str, Any] | None:
    """The current champion record, or None."""
    path = Path(root) / CHAMPION_DIR / CHAMPION_FILE
    return json.loads(path.read_text()) if path.exists() else None


def write_champion(root: str | Path, record: dict[str, Any], model_dir: str | Path, push: bool = False) -> Path:
    """Make ``record`` and a copy of ``model_dir`` the champion, in one atomic replacement.

    In a git checkout the registry records it first (:func:`flows.registry.register_champion`:
    a version on the run's commit, the ``prod`` stage; ``push``: the model to the DVC remote, then
    the tags to ``origin``), and ``champion.json`` keeps the registered version under ``registry``.
    """
    root = Path(root)
    if dvcstages.git(root, "rev-parse", "HEAD"):
        record = {**record, "registry": registry.register_champion(root, record, push=push)}
    with atomic_path(root / CHAMPION_DIR, kind="dir") as tmp:
        tmp.mkdir()
        shutil.copytree(root / model_dir, tmp / CHAMPION_MODEL)
        (tmp / CHAMPION_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return root / CHAMPION_DIR
