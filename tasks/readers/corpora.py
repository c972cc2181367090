"""Language-model profiles: corpora of documents (``id``, ``text``), no labels.

- ``brown``: NLTK's Brown corpus, one document per file in corpus order, one sentence per line
  of tokens (the corpus comes tokenized: the metadata says ``tokenized``, so cleaning keeps its
  tokens). Its split protocol, Bengio et al. (2003): the first 800,000 tokens train, the next
  200,000 validate, the rest test; the clean stage follows it unless told otherwise.
- ``imdb_unsup``: a table with ``text`` (and ``id``): IMDB's 50,000 unlabelled reviews.
- ``text_corpus``: ``.txt`` files, one document per file, or per blank-line paragraph with
  ``ingest.paragraphs: true``. Bytes that are not UTF-8 are decoded with U+FFFD in their place
  and NUL bytes kept, so validate quarantines such a document with the reason instead of the
  whole corpus failing on one bad file.

Any classification profile's texts become a corpus with ``ingest.kind: language_model``
(:func:`tasks.kinds.language_model.adopt`).
"""
from __future__ import annotations

import io
import re
import zipfile
from pathlib import PurePosixPath
from typing import Any

import pandas as pd

from tasks.core.common import PipelineError
from tasks.readers.datasets import (
    Ingested,
    by_split,
    content_id,
    from_file,
    only_file,
    require_columns,
    tables_by_file,
)
from tasks.readers.tables import SourceFile

BENGIO_SPLIT = {"method": "contiguous", "train_tokens": 800_000, "validation_tokens": 200_000,
                "reference": "Bengio et al. 2003, A Neural Probabilistic Language Model: Brown corpus split"}
PARAGRAPH = re.compile(r"\n\s*\n")
BROWN_FILE = re.compile(r"c[a-z]\d\d")


def _corpus(frame: pd.DataFrame, rows_read: int, **metadata: Any) -> Ingested:
    return Ingested(frame.reset_index(drop=True), metadata, rows_read)


def brown(files: list[SourceFile], params: dict[str, Any]) -> Ingested:
    """The Brown corpus zip: each file a document, each sentence a line of space-separated tokens.

    Read as NLTK's ``TaggedCorpusReader`` reads it (a sentence per non-blank line, ``word/tag``
    tokens split at the last ``/``), files in ``fileids()`` order: ``nltk.corpus.brown.words()``.
    """
    file = only_file(files, params)
    try:
        with zipfile.ZipFile(io.BytesIO(file.data)) as archive:
            names = {PurePosixPath(name).name: name for name in archive.namelist() if BROWN_FILE.fullmatch(PurePosixPath(name).name)}
            categories = {}
            cats = next((name for name in archive.namelist() if PurePosixPath(name).name == "cats.txt"), None)
            if cats:
                categories = dict(line.split()[:2] for line in archive.read(cats).decode("ascii").splitlines() if line.strip())
            rows = []
            for fileid in sorted(names):
                lines = archive.read(names[fileid]).decode("ascii").splitlines()
                sentences = [" ".join(token[: token.rfind("/")] if "/" in token else token for token in line.split())
                             for line in lines if line.strip()]
                rows.append({"id": f"brown-{fileid}", "text": "\n".join(sentences), "category": categories.get(fileid, "")})
    except (zipfile.BadZipFile, UnicodeDecodeError) as error:
        raise PipelineError(f"{file.source}: not the Brown corpus zip ({error})") from error
    if not rows:
        raise PipelineError(f"{file.source}: no Brown corpus files (ca01 ... cr09) inside")
    frame = pd.DataFrame(rows).astype({"id": "string", "text": "string", "category": "string"})
    return _corpus(frame, len(frame), tokenized=True, split=BENGIO_SPLIT)


def imdb_unsup(files: list[SourceFile], params: dict[str, Any]) -> Ingested:
    """IMDB's unlabelled reviews (or any table with a ``text`` column): one review per document."""
    frames = []
    tables = tables_by_file(files)
    for file, raw in tables:
        require_columns(raw, ["text"], file.source)
        text = raw["text"].astype("string")
        ids = raw["id"].astype("string") if "id" in raw else text.fillna("").map(content_id)
        frames.append(from_file(file, pd.DataFrame({"id": ids, "text": text})))
    return _corpus(pd.concat(frames, ignore_index=True), sum(len(raw) for _, raw in tables))


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def text_corpus(files: list[SourceFile], params: dict[str, Any]) -> Ingested:
    """Plain-text files: one document per file, or per blank-line paragraph (``ingest.paragraphs``)."""
    frames = []
    for batch in by_split(files):
        rows = []
        for file in batch:
            text = _decode(file.data)
            if params.get("paragraphs"):
                parts = [part for part in PARAGRAPH.split(text) if part.strip()] or [""]
                rows += [{"id": f"{file.source}#{number}", "text": part, "file": file.source} for number, part in enumerate(parts, 1)]
            else:
                rows.append({"id": file.source, "text": text, "file": file.source})
        frames.append(from_file(batch[0], pd.DataFrame(rows).astype({"id": "string", "text": "string", "file": "string"})))
    return _corpus(pd.concat(frames, ignore_index=True), len(files))
