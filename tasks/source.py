"""Stage 0, source: what ``ingest.source`` (and ``pretrain.source``) name right now, as manifests DVC can track.

DVC cannot depend on a glob (``data/*.csv``), a name such as ``nltk`` or a URL's current
content, so this stage (``always_changed`` in dvc.yaml) resolves the source on every run
and writes ``data/source.json``: every matched file with its size and md5 (a URL with its
ETag / Last-Modified / length), and likewise what ``ingest.test_source`` matches (``test_files``).
Ingest depends on that manifest, so it reruns exactly when the matched set or a file's content
changed, and reads the files the manifest lists. The
pretraining corpora go to their own manifest, ``data/pretrain_source.json``, so a change to
one never reruns the other's stages.

It also writes ``data/stages/<stage>.json`` for every later stage: the project files that
stage's process runs for this data's kind, with their md5s, and the params it reads (for the
kind-split sections: the shared keys and this kind's subsection). Each stage depends on its
manifest instead of on folders of code, so it reruns exactly when code or params it uses changed.

Standard library and PyYAML only (a no-change ``dvc repro`` pays this stage's start-up every time).
Each code file's import statements are reused while its md5 stays the same
(``.dvc/tmp/rnnflow-code-imports.json``); known md5s while a file's size and mtime stay the same
(``.dvc/tmp/rnnflow-source-hashes.json``, DVC's own scratch folder).
"""
from __future__ import annotations

import json
from pathlib import Path

from typing import Any

from tasks import kinds
from tasks.core import stagecode
from tasks.core.artifacts import PRETRAIN_MANIFEST, SOURCE_MANIFEST, STAGE_CODE_DIR
from tasks.core.common import load_params, run_main, write_json
from tasks.readers import profiles
from tasks.readers.sources import download_limits, manifest, pretrain_manifest

HASH_CACHE = Path(".dvc/tmp/rnnflow-source-hashes.json")
IMPORTS_CACHE = Path(".dvc/tmp/rnnflow-code-imports.json")  # each code file's imports by its md5


def _scratch(path: Path) -> dict[str, Any]:
    """A cache this stage kept in DVC's scratch folder, or nothing (missing or unreadable)."""
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return stored if isinstance(stored, dict) else {}


def stage_manifests(ingest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each later stage's code and params for the data ``ingest`` names (its profile's kind, or
    ``ingest.kind``): what DVC reruns the stage on (:mod:`tasks.core.stagecode`)."""
    profile = profiles.get(ingest["dataset"])
    kind = kinds.check(profile.kind if ingest.get("kind", "auto") == "auto" else ingest["kind"])
    reader = profile.reader.partition(":")[0]
    manifests = {}
    for stage in stagecode.MANIFEST_STAGES:
        section = load_params(stage)
        params = kinds.settings(section, kind, f"params.yaml: {stage}") if stage in stagecode.KIND_SECTIONS else section
        manifests[stage] = stagecode.stage_manifest(stage, kind, reader, params)
    return manifests


def main() -> None:
    """Run the source stage with ``params.yaml`` ``ingest`` (and each stage's section for its manifest)."""
    cache, imports = _scratch(HASH_CACHE), _scratch(IMPORTS_CACHE)
    stagecode.reuse_imports(imports)
    ingest = load_params("ingest")
    result = manifest(ingest, cache)
    corpus = pretrain_manifest(load_params("pretrain").get("source"), cache, download_limits(ingest))
    write_json(SOURCE_MANIFEST, result)
    write_json(PRETRAIN_MANIFEST, corpus)
    for stage, listing in stage_manifests(ingest).items():
        write_json(STAGE_CODE_DIR / f"{stage}.json", listing)
    if HASH_CACHE.parent.is_dir():
        write_json(HASH_CACHE, cache)
        write_json(IMPORTS_CACHE, stagecode.known_imports())
    tested = f" and {len(result['test_files'])} test file(s) for {result['test_source']}" if "test_files" in result else ""
    print(f"source: {len(result['files'])} file(s) for {result['source']}{tested} -> {SOURCE_MANIFEST}; "
          f"{len(corpus['files'])} pretraining source(s) -> {PRETRAIN_MANIFEST}")


if __name__ == "__main__":
    run_main(main)
