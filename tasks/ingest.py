"""Stage 1, ingest: read the configured source into the canonical table.

``params.yaml`` ``ingest.dataset`` names a profile (see :mod:`tasks.datasets`),
``ingest.source`` a file, directory, glob or http(s) URL. Writes
``data/ingested/reviews.parquet`` and ``metrics/ingest.json``.
"""
from __future__ import annotations

import glob
import gzip
import io
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pandas as pd

from tasks import datasets
from tasks.common import PipelineError, ensure_nltk_resource, load_params, run_main, write_json, write_parquet

OUTPUT = Path("data/ingested/reviews.parquet")
SUMMARY = Path("metrics/ingest.json")
TABULAR_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".parquet", ".jsonl", ".jsonl.gz", ".json")


def fetch_url(url: str, attempts: int = 3, timeout_s: float = 30.0) -> bytes:
    """Download ``url``, retrying transient failures with backoff."""
    last_error: Exception | None = None
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:
                return response.read()
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            last_error = error
            time.sleep(min(2**attempt, 10) if attempt + 1 < attempts else 0)
    raise PipelineError(f"{url}: could not download after {attempts} attempts ({last_error})")


def _check_bytes(data: bytes, source: str) -> None:
    """Reject NUL bytes and non-UTF-8 text with the line they are on."""
    if not data.strip():
        raise PipelineError(f"{source}: file is empty")
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise PipelineError(f"{source}: NUL byte at line {line} (binary or corrupt file?)")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise PipelineError(
            f"{source}: line {line} is not UTF-8 (byte 0x{data[error.start]:02x} at offset {error.start}); "
            "re-save the file as UTF-8"
        ) from error


def read_table(data: bytes, name: str, source: str) -> pd.DataFrame:
    """Parse one tabular file's bytes by its suffix."""
    lower = name.lower()
    if lower.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as error:
            raise PipelineError(f"{source}: not a valid gzip file ({error})") from error
        lower = lower[:-3]
    try:
        if lower.endswith(".parquet"):
            frame = pd.read_parquet(io.BytesIO(data))
        else:
            _check_bytes(data, source)
            if lower.endswith((".jsonl", ".json")):
                frame = pd.read_json(io.BytesIO(data), lines=lower.endswith(".jsonl"), dtype=False)
            else:
                frame = pd.read_csv(io.BytesIO(data), sep="\t" if lower.endswith(".tsv") else ",", dtype=str)
    except PipelineError:
        raise
    except pd.errors.EmptyDataError as error:
        raise PipelineError(f"{source}: file is empty") from error
    except Exception as error:  # every parser has its own error types; all mean "cannot read this file"
        raise PipelineError(f"{source}: cannot be read as {Path(lower).suffix or 'CSV'} ({error})") from error
    if frame.empty:
        raise PipelineError(f"{source}: no data rows (header only?)")
    return frame


def read_source(source: str) -> list[tuple[str, pd.DataFrame]]:
    """Read every file a source names: a URL, a file, a directory or a glob."""
    if source.startswith(("http://", "https://")):
        name = source.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
        return [(source, read_table(fetch_url(source), name, source))]
    path = Path(source)
    if path.is_dir():
        files = sorted(str(p) for p in path.iterdir() if p.name.lower().endswith(TABULAR_SUFFIXES))
    elif any(char in source for char in "*?["):
        files = sorted(glob.glob(source))
    else:
        files = [source]
    if not files:
        raise PipelineError(f"{source}: no such file, or no {'/'.join(TABULAR_SUFFIXES)} files match")
    tables = []
    for file in files:
        try:
            data = Path(file).read_bytes()
        except FileNotFoundError as error:
            raise PipelineError(f"{file}: no such file") from error
        except OSError as error:
            raise PipelineError(f"{file}: cannot be read ({error.strerror})") from error
        tables.append((file, read_table(data, file, file)))
    return tables


def resolve_movie_reviews(source: str) -> str:
    """The corpus path: the source itself, or NLTK's data path when the source is 'nltk'."""
    if source == "nltk":
        corpus = ensure_nltk_resource("corpora/movie_reviews", "movie_reviews")
        return corpus.zipfile.filename if hasattr(corpus, "zipfile") else corpus.path
    if not Path(source).exists():
        raise PipelineError(f"{source}: no such corpus file or directory")
    return source


def ingest(params: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read the source and map it onto the canonical table; return the table and a summary."""
    dataset, source = params["dataset"], str(params["source"])
    if dataset not in datasets.PROFILES:
        raise PipelineError(f"params.yaml: ingest.dataset '{dataset}' is not one of {datasets.PROFILES}")
    if dataset == "movie_reviews":
        frame = datasets.movie_reviews(resolve_movie_reviews(source), source)
        rows_read = len(frame)
    else:
        profile = datasets.TABULAR_PROFILES[dataset]
        raw_tables = read_source(source)
        rows_read = sum(len(raw) for _, raw in raw_tables)
        frame = pd.concat([profile(raw, params, name) for name, raw in raw_tables], ignore_index=True)
    summary = {
        "dataset": dataset,
        "source": source,
        "rows_read": rows_read,
        "rows": len(frame),
        "rows_without_text": int(frame["text"].isna().sum()),
        "rating_scale": datasets.RATING_SCALES.get(dataset),
        "labels": {str(k): int(v) for k, v in frame["label"].value_counts(dropna=False).items()},
    }
    return frame, summary


def main() -> None:
    """Run the ingest stage with ``params.yaml`` ``ingest``."""
    frame, summary = ingest(load_params("ingest"))
    write_parquet(frame, OUTPUT, metadata={"dataset": summary["dataset"], "rating_scale": summary["rating_scale"]})
    write_json(SUMMARY, summary)
    print(f"ingest: {summary['rows']} rows from {summary['source']} -> {OUTPUT}")


if __name__ == "__main__":
    run_main(main)
