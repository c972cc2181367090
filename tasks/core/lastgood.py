"""Keep a stage's last good outputs in the workspace while DVC reruns it.

Before it runs a stage, DVC deletes the stage's outputs unless they ``persist``, and a persisted
output turns DVC's run cache off for the stage (sweeps and clone-mode runs restore stages from
it). So the stages that the run cache serves do not persist; instead, when DVC starts one (it
sets ``DVC_STAGE``), :func:`restore` puts back, from DVC's own cache, every output that
``dvc.lock`` records for the stage and DVC has just removed: cached outputs from their objects,
``cache: false`` ones (metrics, plots) from the copies DVC's run cache keeps. The stage then
replaces them atomically on success only; a stage that fails, or is killed, leaves the last
good outputs byte for byte, and ``dvc.lock`` still describes them.

Standard library and PyYAML only: this runs before every stage.
"""
from __future__ import annotations

import configparser
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

LOCK_FILE = Path("dvc.lock")
DVC_DIR = Path(".dvc")
STAGE_VARIABLE = "DVC_STAGE"  # set by DVC for every stage command it runs


def cache_dir(dvc_dir: Path = DVC_DIR) -> Path:
    """DVC's local cache folder: ``cache.dir`` of the repo's config (local config first), else ``.dvc/cache``."""
    for name in ("config.local", "config"):
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        try:
            parser.read(dvc_dir / name)
        except configparser.Error:
            continue
        if parser.has_option("cache", "dir"):
            return (dvc_dir / parser.get("cache", "dir")).resolve()
    return dvc_dir / "cache"


def object_path(cache: Path, md5: str, legacy: bool) -> Path:
    """Where DVC keeps the object of ``md5`` (DVC 3: ``files/md5/``; DVC 2 lock entries: the cache root)."""
    root = cache if legacy else cache / "files" / "md5"
    return root / md5[:2] / md5[2:]


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)  # cache objects are read-only: copy the bytes, not the mode


def _restore_output(entry: dict[str, Any], cache: Path) -> bool:
    """Put one recorded output back from the cache; False when the cache lacks any of its objects."""
    target = Path(entry["path"])
    md5 = entry.get("md5")
    if not md5:
        return False
    legacy = entry.get("hash") != "md5"
    source = object_path(cache, md5, legacy)
    if not source.is_file():
        return False
    if not md5.endswith(".dir"):
        pending = target.with_name(f".{target.name}.restore.{os.getpid()}.tmp")
        _copy(source, pending)
        os.replace(pending, target)
        return True
    listing = json.loads(source.read_text())
    members = [(item["relpath"], object_path(cache, item["md5"], legacy)) for item in listing]
    if not all(path.is_file() for _, path in members):
        return False
    pending = target.with_name(f".{target.name}.restore.{os.getpid()}.tmp")
    shutil.rmtree(pending, ignore_errors=True)
    pending.mkdir(parents=True)
    for relpath, path in members:
        _copy(path, pending / relpath)
    os.replace(pending, target)
    return True


def restore(stage: str | None = None, lock_file: Path = LOCK_FILE) -> list[str]:
    """Restore the missing outputs ``dvc.lock`` records for ``stage`` (default: the stage DVC is
    running, from ``DVC_STAGE``); return their paths. Outside a DVC run nothing was deleted, so
    nothing is done; an output already present, or whose objects the cache lacks, is left alone."""
    stage = stage or os.environ.get(STAGE_VARIABLE)
    if not stage or not lock_file.is_file():
        return []
    try:
        entry = (yaml.safe_load(lock_file.read_text()) or {}).get("stages", {}).get(stage) or {}
    except yaml.YAMLError:
        return []
    cache = cache_dir()
    restored = []
    for output in entry.get("outs", []):
        if not Path(output["path"]).exists() and _restore_output(output, cache):
            restored.append(output["path"])
    if restored:
        print(f"{stage}: the last good {', '.join(restored)} kept in place while this run replaces them",
              file=sys.stderr)
    return restored
