"""Reading one tabular file (CSV/TSV, gzip, Parquet, JSON lines) or a source's files, with ingest's checks and messages."""
from __future__ import annotations

import csv
import gzip
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.core.common import PipelineError
from tasks.readers import profiles, sources


@dataclass(frozen=True)
class SourceFile:
    """One file of a source: where it came from (for messages), its name (for its type) and bytes.

    ``split``: ``test`` for a file of ``ingest.test_source``, ``train`` for the main source's
    files beside one, None without one; the profile readers carry it into each row's ``split``
    (:func:`tasks.readers.datasets.from_file`)."""

    source: str
    name: str
    data: bytes
    split: str | None = None


def check_text_bytes(data: bytes, source: str) -> None:
    """Reject empty files, NUL bytes and non-UTF-8 text, naming the line."""
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


def first_overlong_row(text: str, sep: str) -> str:
    """Which line has more fields than the header (pandas would read its first field as an index)."""
    rows = csv.reader(io.StringIO(text), delimiter=sep)
    header = next(rows)
    for row in rows:
        if len(row) > len(header):
            return (f"line {rows.line_num} has {len(row)} fields, the header {len(header)} ({', '.join(header)}); "
                    f"quote fields that contain {sep!r}")
    return "rows have more fields than the header"


def read_delimited(data: bytes, sep: str, source: str) -> pd.DataFrame:
    """CSV/TSV as strings; a row with more fields than the header is an error, never an index.
    Only an empty field is missing: a text that says ``NA``, ``null`` or ``None`` stays that text."""
    with warnings.catch_warnings():
        # index_col=False makes pandas warn (and drop fields) instead of silently using them as an index
        warnings.simplefilter("error", pd.errors.ParserWarning)
        try:
            return pd.read_csv(io.BytesIO(data), sep=sep, dtype=str, index_col=False, keep_default_na=False,
                               na_values=[""])
        except pd.errors.ParserWarning:
            raise PipelineError(f"{source}: {first_overlong_row(data.decode('utf-8'), sep)}") from None


def read_table(data: bytes, name: str, source: str) -> pd.DataFrame:
    """Parse one tabular file's bytes by its suffix."""
    lower = name.lower()
    if lower.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as error:
            raise PipelineError(f"{source}: not a valid gzip file ({error})") from error
        lower = lower[:-3]
    if lower.endswith(".ts"):  # read as CSV it would fail on its @ header with a parser's message
        raise PipelineError(f"{source}: a .ts file is a numeric series archive, not a table; a series model reads it "
                            "(ingest.dataset=ts, then tasks.predict with that model)")
    try:
        if lower.endswith(".parquet"):
            frame = pd.read_parquet(io.BytesIO(data))
        else:
            check_text_bytes(data, source)
            if lower.endswith((".jsonl", ".json")):
                frame = pd.read_json(io.BytesIO(data), lines=lower.endswith(".jsonl"), dtype=False)
            else:
                frame = read_delimited(data, "\t" if lower.endswith(".tsv") else ",", source)
    except PipelineError:
        raise
    except pd.errors.EmptyDataError as error:
        raise PipelineError(f"{source}: file is empty") from error
    except Exception as error:  # every parser has its own error types; all mean "cannot read this file"
        raise PipelineError(f"{source}: cannot be read as {Path(lower).suffix or 'CSV'} ({error})") from error
    if frame.empty:
        raise PipelineError(f"{source}: no data rows (header only?)")
    return frame


def read_file(entry: dict[str, Any]) -> SourceFile:
    """One manifest entry's bytes, checked against the md5 the source stage recorded."""
    if "url" in entry:
        data = sources.fetch_url(entry["url"], entry.get("max_bytes", sources.DEFAULT_MAX_BYTES),
                                entry.get("timeout_s", sources.DEFAULT_TIMEOUT_S))
        sources.verify(entry, data)
        name = entry["url"].split("?")[0].rstrip("/").rsplit("/", 1)[-1]
        return SourceFile(entry["url"], name, data)
    path = entry["path"]
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError as error:
        raise PipelineError(f"{path}: no such file") from error
    except OSError as error:
        raise PipelineError(f"{path}: cannot be read ({error.strerror})") from error
    sources.verify(entry, data)
    return SourceFile(path, path, data)


def read_source(source_text: str, profile: profiles.Profile | None = None) -> list[SourceFile]:
    """Every file a source names, read (used where no manifest exists: tests, predict)."""
    profile = profile or profiles.PROFILES["table"]
    return [read_file({"url": item} if sources.is_url(item) else {"path": item})
            for item in sources.resolve(source_text, profile)]


def read_one_table(path: str | Path) -> pd.DataFrame:
    """The one table a path names (predict's input), with ingest's checks and messages."""
    files = read_source(str(path))
    if len(files) != 1:
        raise PipelineError(f"{path}: expected one file, it names {len(files)}")
    return read_table(files[0].data, files[0].name, files[0].source)
