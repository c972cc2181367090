"""Keep a stage's last good outputs in the workspace while DVC reruns it.

Before it runs a stage, DVC deletes the stage's outputs unless they ``persist``, and a persisted
output turns off both DVC's run cache and its restoring of an unchanged stage's missing outputs
from ``dvc.lock`` (what sweeps and clone-mode runs rely on). So the stages do not persist what
DVC can restore; instead, when DVC starts one (it sets ``DVC_STAGE``), :func:`restore` puts back
every output that ``dvc.lock`` records for the stage and DVC has just removed: cached outputs
from DVC's cache, ``cache: false`` ones (metrics, plots) from the copies DVC's run cache keeps
or, for a stage DVC does not run-cache (one with an uncached plain output), from the copy
:func:`keep` made after its last success in ``.dvc/tmp/rnnflow-lastgood/``, used only when it
matches what ``dvc.lock`` records. The stage replaces its outputs atomically on success only; a
stage that fails, or is killed, leaves the last good outputs byte for byte, and ``dvc.lock``
still describes them.

Standard library and PyYAML only: this runs before and after every stage.
"""
from __future__ import annotations

import configparser
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

LOCK_FILE = Path("dvc.lock")
PIPELINE_FILE = Path("dvc.yaml")
DVC_DIR = Path(".dvc")
COPIES = DVC_DIR / "tmp" / "rnnflow-lastgood"  # DVC's scratch folder: never versioned
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


def _copy_matches(copy: Path, entry: dict[str, Any]) -> bool:
    """Whether a kept copy is the output ``dvc.lock`` records (a file by md5; a folder by its
    file count and total size, DVC's own summary of it)."""
    if copy.is_file():
        return hashlib.md5(copy.read_bytes()).hexdigest() == entry.get("md5")
    if not copy.is_dir():
        return False
    files = [path for path in copy.rglob("*") if path.is_file()]
    return len(files) == entry.get("nfiles") and sum(path.stat().st_size for path in files) == entry.get("size")


def _restore_copy(entry: dict[str, Any], stage: str) -> bool:
    copy = COPIES / stage / entry["path"]
    if not _copy_matches(copy, entry):
        return False
    target = Path(entry["path"])
    pending = target.with_name(f".{target.name}.restore.{os.getpid()}.tmp")
    target.parent.mkdir(parents=True, exist_ok=True)
    if copy.is_dir():
        shutil.copytree(copy, pending)
    else:
        shutil.copyfile(copy, pending)
    os.replace(pending, target)
    return True


def restore(stage: str | None = None, lock_file: Path = LOCK_FILE) -> list[str]:
    """Restore the missing outputs ``dvc.lock`` records for ``stage`` (default: the stage DVC is
    running, from ``DVC_STAGE``); return their paths. Outside a DVC run nothing was deleted, so
    nothing is done; an output already present, or found neither in the cache nor as a matching
    kept copy, is left alone."""
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
        if not Path(output["path"]).exists() and (_restore_output(output, cache) or _restore_copy(output, stage)):
            restored.append(output["path"])
    if restored:
        print(f"{stage}: the last good {', '.join(restored)} kept in place while this run replaces them",
              file=sys.stderr)
    return restored


def uncached_outputs(stage: str, pipeline_file: Path = PIPELINE_FILE) -> list[str]:
    """The ``cache: false`` outputs (outs, metrics, plots) ``dvc.yaml`` declares for ``stage``
    that DVC deletes before a run (persisted ones it never deletes: no copy is needed)."""
    try:
        declared = (yaml.safe_load(pipeline_file.read_text()) or {}).get("stages", {}).get(stage) or {}
    except (OSError, yaml.YAMLError):
        return []
    found = []
    for kind in ("outs", "metrics", "plots"):
        for item in declared.get(kind) or []:
            if isinstance(item, dict):
                path, options = next(iter(item.items()))
                if (options or {}).get("cache") is False and not (options or {}).get("persist"):
                    found.append(path)
    return found


def keep(stage: str | None = None) -> list[str]:
    """After a success under DVC: copy the stage's ``cache: false`` outputs to
    ``.dvc/tmp/rnnflow-lastgood/<stage>/`` (replacing the last copy), for :func:`restore` when
    DVC has no copy of its own. Returns the paths kept."""
    stage = stage or os.environ.get(STAGE_VARIABLE)
    if not stage or not DVC_DIR.is_dir():
        return []
    kept = []
    folder = COPIES / stage
    pending = COPIES / f".{stage}.{os.getpid()}.tmp"
    shutil.rmtree(pending, ignore_errors=True)
    for path in map(Path, uncached_outputs(stage)):
        if path.is_dir():
            shutil.copytree(path, pending / path)
        elif path.is_file():
            (pending / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, pending / path)
        else:
            continue
        kept.append(str(path))
    if kept:
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(pending, folder)
    return kept
