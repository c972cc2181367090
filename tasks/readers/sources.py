"""Resolving what a source names (files, folders, globs, NLTK or scikit-learn data, URLs) and listing it with md5s."""
from __future__ import annotations

import glob
import hashlib
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tasks.core.common import PipelineError
from tasks.readers import profiles

# What a pretraining corpus may be made of (tasks/pretrain.py): tables with a text column, .txt files.
CORPUS = profiles.Profile("language_model", "", (*profiles.TABULAR, ".txt"))


GLOB_CHARACTERS = "*?["


DEFAULT_MAX_BYTES = 2048 * 2**20  # ingest.url_max_mb's default


DEFAULT_TIMEOUT_S = 30.0  # ingest.url_timeout_s's default


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def fetch_url(url: str, max_bytes: int = DEFAULT_MAX_BYTES, timeout_s: float = DEFAULT_TIMEOUT_S,
              attempts: int = 3) -> bytes:
    """Download ``url``, retrying transient failures with backoff; stop past ``max_bytes``
    (``ingest.url_max_mb``) and when the server sends nothing for ``timeout_s`` seconds
    (``ingest.url_timeout_s``, the socket timeout of each read)."""
    last_error: Exception | None = None
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:
                return _read_limited(url, response, max_bytes)
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            last_error = error
            time.sleep(min(2**attempt, 10) if attempt + 1 < attempts else 0)
    raise PipelineError(f"{url}: could not download after {attempts} attempts ({last_error})")


def _read_limited(url: str, response, max_bytes: int) -> bytes:
    declared = response.headers.get("Content-Length")
    too_large = f"{url}: larger than ingest.url_max_mb ({max_bytes / 2**20:g} MB)"
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise PipelineError(f"{too_large}: the server declares {int(declared)} bytes")
    chunks, received = [], 0
    while block := response.read(1 << 20):
        received += len(block)
        if received > max_bytes:
            raise PipelineError(f"{too_large}: stopped after {received} bytes")
        chunks.append(block)
    return b"".join(chunks)


def resolve_named(name: str, location: str) -> str:
    """A named source's file: ``nltk`` looks on NLTK's data path, ``sklearn`` in the installed package."""
    if name == "nltk":
        from tasks.core.common import ensure_nltk_resource, find_nltk_data

        found = find_nltk_data(location)
        if found is not None:
            return str(found)
        resource = ensure_nltk_resource(location, location.rsplit("/", 1)[-1])  # NLTK may download it
        return resource.zipfile.filename if hasattr(resource, "zipfile") else resource.path
    if name == "sklearn":
        import importlib.util

        spec = importlib.util.find_spec("sklearn")
        if spec is None or spec.origin is None:
            raise PipelineError("ingest.source 'sklearn': scikit-learn is not installed")
        return str(Path(spec.origin).parent / location)
    raise PipelineError(f"ingest.source '{name}': unknown source name")


def resolve(source: str, profile: profiles.Profile) -> list[str]:
    """The files (or the one URL) a source names, sorted; a clear error when it matches nothing."""
    if source in profile.named:
        # Relative to the project root, as the README's ../shared layout is: the listing (and so
        # dvc.lock) is then the same on every machine with that layout.
        return [os.path.relpath(resolve_named(source, profile.named[source]))]
    if is_url(source):
        return [source]
    path = Path(source)
    wanted = f"no {'/'.join(profile.suffixes)} files"
    if path.is_dir():
        files = sorted(str(p) for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(profile.suffixes))
        if not files:
            raise PipelineError(f"{source}: folder has {wanted}")
        return files
    if any(character in source for character in GLOB_CHARACTERS):
        files = sorted(p for p in glob.glob(source, recursive=True) if Path(p).is_file())
        if not files:
            raise PipelineError(f"{source}: the pattern matches no file")
        return files
    if not path.exists():
        raise PipelineError(f"{source}: no such file or folder")
    return [source]


def _md5(path: str) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_entry(path: str, cache: dict[str, Any]) -> dict[str, Any]:
    """``{path, bytes, md5}``, the md5 reused from ``cache`` while size and mtime are unchanged."""
    try:
        stat = os.stat(path)
    except OSError as error:
        raise PipelineError(f"{path}: cannot be read ({error.strerror})") from error
    key = str(Path(path).resolve())
    known = cache.get(key)
    if known and known["bytes"] == stat.st_size and known["mtime_ns"] == stat.st_mtime_ns:
        md5 = known["md5"]
    else:
        try:
            md5 = _md5(path)
        except OSError as error:
            raise PipelineError(f"{path}: cannot be read ({error.strerror})") from error
        cache[key] = {"bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns, "md5": md5}
    return {"path": path, "bytes": stat.st_size, "md5": md5}


def url_entry(url: str, cache: dict[str, Any], limits: dict[str, Any]) -> dict[str, Any]:
    """A URL's validators from a HEAD request and the md5 of its content, which ingest checks
    what it downloads against. The content is downloaded again only when the validators
    (ETag, Last-Modified, length) changed since the md5 in ``cache`` was computed, or there are none.
    ``limits``: ``max_bytes`` and ``timeout_s``, recorded in the entry for the readers."""
    try:
        request = urllib.request.Request(url, method="HEAD")
        with urllib.request.urlopen(request, timeout=limits["timeout_s"]) as response:
            headers = {name: response.headers.get(header) for name, header in
                       (("etag", "ETag"), ("last_modified", "Last-Modified"), ("bytes", "Content-Length"))}
    except (urllib.error.URLError, TimeoutError, ConnectionError):
        headers = {}
    validators = {name: value for name, value in headers.items() if value}
    known = cache.get(url)
    if validators and known and known.get("validators") == validators:
        md5 = known["md5"]
    else:
        md5 = hashlib.md5(fetch_url(url, limits["max_bytes"], limits["timeout_s"])).hexdigest()
        cache[url] = {"validators": validators, "md5": md5}
    return {"url": url, **validators, "md5": md5, **limits}


def download_limits(params: dict[str, Any]) -> dict[str, Any]:
    """``ingest.url_max_mb`` and ``ingest.url_timeout_s`` as the manifest records them."""
    return {"max_bytes": int(params.get("url_max_mb", DEFAULT_MAX_BYTES / 2**20) * 2**20),
            "timeout_s": float(params.get("url_timeout_s", DEFAULT_TIMEOUT_S))}


AUTO = "auto"  # ingest.source: the profile's own data (movie_reviews and brown: NLTK's, digits: scikit-learn's)


def resolve_key(key: str, source: str, profile: profiles.Profile) -> list[str]:
    """:func:`resolve`, its error naming the params.yaml key that named the source."""
    try:
        return resolve(source, profile)
    except PipelineError as error:
        raise PipelineError(f"params.yaml: {key}: {error}") from error


def manifest(params: dict[str, Any], cache: dict[str, Any]) -> dict[str, Any]:
    """The manifest for ``params.yaml`` ``ingest``: the profile, the source and what it matched."""
    profile = profiles.get(params["dataset"])
    source = str(params["source"])
    if source == AUTO and not profile.named:
        raise PipelineError(f"params.yaml: ingest.source is auto but the {params['dataset']} profile has no source "
                            "of its own; set ingest.source to a file, folder, glob or URL")
    # auto: the profile's named source (nltk / sklearn: the data NLTK or scikit-learn provides)
    matched = resolve_key("ingest.source", next(iter(profile.named)) if source == AUTO else source, profile)
    limits = download_limits(params)
    listing = {"dataset": params["dataset"], "source": source, "files": _entries(matched, cache, limits)}
    test_source = params.get("test_source")
    if test_source is not None:
        # Listed beside the main source's files, so that a changed test file reruns ingest too.
        listing.update(test_source=str(test_source), test_files=_entries(test_files(params, profile, matched), cache, limits))
    return listing


def _entries(matched: list[str], cache: dict[str, Any], limits: dict[str, Any]) -> list[dict[str, Any]]:
    return [url_entry(item, cache, limits) if is_url(item) else file_entry(item, cache) for item in matched]


def test_files(params: dict[str, Any], profile: profiles.Profile, matched: list[str]) -> list[str]:
    """What ``ingest.test_source`` names, resolved like ``ingest.source`` (``matched``: what that
    named); a clear error when the profile's data has a split of its own or a file is in both."""
    if profile.own_split:
        raise PipelineError(f"params.yaml: ingest.test_source: the {params['dataset']} profile's data has its own "
                            f"train/test split ({profile.own_split}); leave ingest.test_source null")
    tested = resolve_key("ingest.test_source", str(params["test_source"]), profile)
    train = {item if is_url(item) else str(Path(item).resolve()) for item in matched}
    shared = [item for item in tested if (item if is_url(item) else str(Path(item).resolve())) in train]
    if shared:
        raise PipelineError(f"params.yaml: ingest.test_source names {shared[0]}, which ingest.source "
                            f"{params['source']!r} matches too: a test file must not be trained on")
    return tested


def pretrain_manifest(sources: list[Any] | None, cache: dict[str, Any], limits: dict[str, Any]) -> dict[str, Any]:
    """``pretrain.source`` resolved: ``train`` (the classifier's own train split) or corpus files
    (URLs downloaded within ``limits``, as for ingest)."""
    if sources is None:
        sources = []
    if not isinstance(sources, list):
        raise PipelineError(f"params.yaml: pretrain.source must be a list of corpora (or []), not {sources!r}")
    entries: list[dict[str, Any]] = []
    for item in map(str, sources):
        if item == "train":
            entries.append({"split": "train"})
        else:
            entries += [url_entry(found, cache, limits) if is_url(found) else file_entry(found, cache)
                        for found in resolve(item, CORPUS)]
    return {"source": list(map(str, sources)), "files": entries}


def verify(entry: dict[str, Any], data: bytes) -> None:
    """Stop when a file changed after the source stage hashed it (ingest would read other data)."""
    if "md5" in entry and hashlib.md5(data).hexdigest() != entry["md5"]:
        where = entry.get("path") or entry.get("url")
        raise PipelineError(f"{where}: changed since the source stage listed it; run the pipeline again")
