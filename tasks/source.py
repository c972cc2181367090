"""Stage 0, source: what ``ingest.source`` (and ``pretrain.source``) name right now, as manifests DVC can track.

DVC cannot depend on a glob (``data/*.csv``), a name such as ``nltk`` or a URL's current
content, so this stage (``always_changed`` in dvc.yaml) resolves the source on every run
and writes ``data/source.json``: every matched file with its size and md5 (a URL with its
ETag / Last-Modified / length). Ingest depends on that manifest, so it reruns exactly when
the matched set or a file's content changed, and reads the files the manifest lists. The
pretraining corpora go to their own manifest, ``data/pretrain_source.json``, so a change to
one never reruns the other's stages.

Standard library only, as are :mod:`tasks.readers.sources` and what it imports (a no-change ``dvc repro`` pays this stage's start-up every time).
Known md5s are reused while a file's size and mtime stay the same
(``.dvc/tmp/rnnflow-source-hashes.json``, DVC's own scratch folder).
"""
from __future__ import annotations

import json
from pathlib import Path

from tasks.core.artifacts import PRETRAIN_MANIFEST, SOURCE_MANIFEST
from tasks.core.common import load_params, run_main, write_json
from tasks.readers.sources import download_limits, manifest, pretrain_manifest

HASH_CACHE = Path(".dvc/tmp/rnnflow-source-hashes.json")


def main() -> None:
    """Run the source stage with ``params.yaml`` ``ingest``."""
    try:
        cache = json.loads(HASH_CACHE.read_text())
    except (OSError, ValueError):
        cache = {}
    ingest = load_params("ingest")
    result = manifest(ingest, cache)
    corpus = pretrain_manifest(load_params("pretrain").get("source"), cache, download_limits(ingest))
    write_json(SOURCE_MANIFEST, result)
    write_json(PRETRAIN_MANIFEST, corpus)
    if HASH_CACHE.parent.is_dir():
        write_json(HASH_CACHE, cache)
    print(f"source: {len(result['files'])} file(s) for {result['source']} -> {SOURCE_MANIFEST}; "
          f"{len(corpus['files'])} pretraining source(s) -> {PRETRAIN_MANIFEST}")


if __name__ == "__main__":
    run_main(main)
