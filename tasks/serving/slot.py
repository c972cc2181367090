"""Where model versions come from, and the hot swap.

A source names its newest version cheaply (:meth:`latest`) and makes a version's files available
(:meth:`materialize`). :class:`ModelSlot` holds the version being served: a watcher thread loads a
new version completely (files, model, a warm-up prediction) before it replaces the old one in a
single reference assignment, so a request is answered by the old version or the new one, never
by half of either and never refused. A version that fails to load is logged and the old one
keeps serving.
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
from pathlib import Path
from typing import Any, Protocol

from tasks.serving.service import ServedVersion, load_version

log = logging.getLogger("rnnflow.serve")
CHAMPION_RECORD = "champion.json"  # beside champion/model: flows.promote's record of the champion


class ModelSource(Protocol):
    def latest(self) -> str:
        """The key of the version to serve now (cheap: called on every poll)."""

    def materialize(self, key: str) -> tuple[Path, dict[str, Any]]:
        """The folder holding version ``key``'s files, and its description (name, version, stage...)."""


class FolderSource:
    """A model folder (``models/``, ``champion/model``): a change of its files is a new version,
    named by their hash. Beside a champion record (``champion/champion.json``) its metrics and data
    versions describe it."""

    def __init__(self, model_dir: Path) -> None:
        self.model_dir = Path(model_dir)
        self._stamp: tuple | None = None  # the files' names, sizes and mtimes when last hashed
        self._key = ""

    def latest(self) -> str:
        """The hash of the folder's files; read again only when a file's name, size or mtime
        changed (a poll of an unchanged folder reads no model bytes)."""
        files = sorted(path for path in self.model_dir.rglob("*") if path.is_file())
        stamp = tuple((path.relative_to(self.model_dir).as_posix(), status.st_size, status.st_mtime_ns)
                      for path, status in ((path, path.stat()) for path in files))
        if stamp != self._stamp:
            digest = hashlib.md5()
            for path in files:
                digest.update(path.relative_to(self.model_dir).as_posix().encode() + b"\0")
                digest.update(path.read_bytes())
            self._stamp, self._key = stamp, digest.hexdigest()[:12]
        return self._key

    def materialize(self, key: str) -> tuple[Path, dict[str, Any]]:
        info: dict[str, Any] = {"name": str(self.model_dir), "version": f"md5-{key}", "stage": None,
                                "source": str(self.model_dir.resolve())}
        record = self.model_dir.parent / CHAMPION_RECORD
        if record.is_file():
            champion = json.loads(record.read_text())
            info.update(metrics=champion.get("metrics"), commit=champion.get("git_rev"),
                        data={path: md5 for stage in (champion.get("outs") or {}).values() for path, md5 in stage.items()
                              if path.startswith("data/")})
        return self.model_dir, info


class ModelSlot:
    """The version being served, replaced whole when the source has a newer one."""

    def __init__(self, source: ModelSource) -> None:
        self.source = source
        self.current: ServedVersion | None = None
        self._key: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> bool:
        """Load the source's latest version if it is not the one served; True when it swapped."""
        key = self.source.latest()
        if key == self._key:
            return False
        model_dir, info = self.source.materialize(key)
        version, old = load_version(model_dir, info), self.current
        self.current, self._key = version, key  # the swap: requests read self.current once each
        if old is not None:
            old.close()  # its queued requests are still answered, by it
        log.warning("serving %s %s", info.get("name"), info.get("version"))
        return True

    def watch(self, every_seconds: float) -> None:
        """Poll the source every ``every_seconds`` in a daemon thread until :meth:`stop`."""

        def loop() -> None:
            while not self._stop.wait(every_seconds):
                try:
                    self.refresh()
                except Exception as error:  # the old version keeps serving; the next poll retries
                    log.error("could not load the new model version: %s: %s", type(error).__name__, error)

        self._thread = threading.Thread(target=loop, name="rnnflow-model-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
