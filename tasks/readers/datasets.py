"""Text-classification profiles: how each known source maps onto rnnflow's canonical table.

The canonical table has one row per document: ``id`` (stable string), ``text``, ``label``
(the class index, <NA> when the source's label is unusable) and any metadata columns the
source carries (``rating``, ``age``, ``department``...). The class names travel in the
table's metadata (``classes``; index 1 is the positive class of a two-class task). Each
profile function takes the files the source stage listed and returns :class:`Ingested`;
the per-table mapping functions are pure, so they can be tested without files.
"""
from __future__ import annotations

import hashlib
import io
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from tasks.core.common import PipelineError
from tasks.readers.tables import SourceFile, read_table

CLOTHING_COLUMNS = {
    "Clothing ID": "clothing_id",
    "Age": "age",
    "Title": "title",
    "Review Text": "review_text",
    "Rating": "rating",
    "Recommended IND": "recommended",
    "Positive Feedback Count": "positive_feedback_count",
    "Division Name": "division",
    "Department Name": "department",
    "Class Name": "class_name",
}
SENTIMENT_CLASSES = ["negative", "positive"]
POSITIVE_WORDS = {"1", "pos", "positive", "true", "yes"}
NEGATIVE_WORDS = {"0", "neg", "negative", "false", "no"}


def only_file(files: list[SourceFile], params: dict[str, Any]) -> SourceFile:
    """The one file a single-file profile reads; a clear error when the source matched more."""
    if len(files) != 1:
        raise PipelineError(f"ingest.source {params.get('source')!r}: the {params.get('dataset')} profile reads one file, "
                            f"the source matched {len(files)} ({', '.join(file.name for file in files[:3])}...)")
    return files[0]


@dataclass
class Ingested:
    """A profile's result: the canonical table, metadata for the later stages, rows read."""

    frame: pd.DataFrame
    metadata: dict[str, Any] = field(default_factory=dict)
    rows_read: int = 0


def content_id(text: str) -> str:
    """A stable id from content, for sources without one."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def require_columns(raw: pd.DataFrame, columns: list[str], source: str) -> None:
    """Fail with the missing column's name and what the file does have."""
    missing = [column for column in columns if column not in raw.columns]
    if missing:
        found = ", ".join(map(str, raw.columns[:12]))
        hint = " (wrong delimiter?)" if len(raw.columns) == 1 else ""
        raise PipelineError(f"{source}: missing column(s) {missing}; found: {found}{hint}")


def binary_labels(values: pd.Series) -> pd.Series:
    """Map 0/1, pos/neg, true/false... to a nullable 0/1 integer; anything else becomes <NA>."""
    words = values.astype("string").str.strip().str.replace(r"\.0$", "", regex=True).str.lower()
    labels = pd.Series(pd.NA, index=values.index, dtype="Int16")
    labels[words.isin(POSITIVE_WORDS)] = 1
    labels[words.isin(NEGATIVE_WORDS)] = 0
    return labels


def natural_key(name: str) -> tuple:
    """Numbers in numeric order, before words: 2 < 10 < 'a'."""
    try:
        return (0, float(name), name)
    except ValueError:
        return (1, 0.0, name)


def class_labels(values: pd.Series, declared: list[str] | None = None) -> tuple[pd.Series, list[str]]:
    """Class indices and names for a label column.

    ``declared`` (``ingest.classes``) lists the classes in index order; any other label is
    <NA> (quarantined by validate). Without it: labels that are all binary words (0/1,
    pos/neg, true/false, yes/no) become the pair ``negative``/``positive``; any other labels
    are classes named as written, in natural order (numbers numerically). Blank labels are <NA>.
    """
    names = values.astype("string").str.strip().str.replace(r"\.0$", "", regex=True)
    if declared:
        classes = [str(name) for name in declared]
        return names.map({name: index for index, name in enumerate(classes)}).astype("Int16"), classes
    present = names.dropna().str.lower()
    if present[present != ""].isin(POSITIVE_WORDS | NEGATIVE_WORDS).all():
        return binary_labels(values), list(SENTIMENT_CLASSES)
    classes = sorted(set(names.dropna()) - {""}, key=natural_key)
    return names.map({name: index for index, name in enumerate(classes)}).astype("Int16"), classes


def rating_labels(ratings: pd.Series, positive_above: float, negative_below: float) -> pd.Series:
    """Rating > positive_above is 1, < negative_below is 0; ratings in between are dropped by the caller."""
    labels = pd.Series(pd.NA, index=ratings.index, dtype="Int16")
    labels[ratings > positive_above] = 1
    labels[ratings < negative_below] = 0
    return labels


def joined_text(*parts: pd.Series) -> pd.Series:
    """Join text columns with '. ', skipping blanks."""
    cleaned = [part.astype("string").fillna("").str.strip() for part in parts]
    joined = cleaned[0]
    for part in cleaned[1:]:
        both = (joined != "") & (part != "")
        joined = (joined + ". " + part).where(both, joined + part)
    return joined


def _snake(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")


def read_tables(files: list[SourceFile]) -> list[tuple[str, pd.DataFrame]]:
    """Each tabular file parsed (CSV, TSV, Parquet, JSONL; optionally gzipped), with its source."""
    return [(file.source, raw) for file, raw in tables_by_file(files)]


def tables_by_file(files: list[SourceFile]) -> list[tuple[SourceFile, pd.DataFrame]]:
    """Each tabular file parsed, with the file (its source for messages, its split for :func:`from_file`)."""
    return [(file, read_table(file.data, file.name, file.source)) for file in files]


TEST_ID_PREFIX = "test-"  # a test_source row's id: its own id after this, never one of the main source's


def from_file(file: SourceFile, frame: pd.DataFrame) -> pd.DataFrame:
    """One file's canonical rows, marked with the file's split when ``ingest.test_source`` gave
    the files one (:class:`SourceFile`): a ``split`` column (which the clean stage keeps: test
    rows are the test split, validation is drawn from the train rows), and the test file's ids
    prefixed with ``test-``, so that they stay distinct from the main source's (clothing's row
    numbers restart in every file) and stable (they depend on the test file alone)."""
    if file.split is None:
        return frame
    if "split" in frame:
        raise PipelineError(f"{file.source}: has a split column of its own, and ingest.test_source names the test "
                            "rows too; drop the column or leave ingest.test_source null")
    marked = frame.assign(split=pd.Series(file.split, index=frame.index, dtype="string"))
    if file.split == "test":
        marked["id"] = TEST_ID_PREFIX + marked["id"].astype("string")
    return marked


def by_split(files: list[SourceFile]) -> list[list[SourceFile]]:
    """The files in batches of one split each, in order: one batch without ``ingest.test_source``
    (for readers that build one table from many files; :func:`from_file` marks each batch's)."""
    return [[file for file in files if file.split == split] for split in dict.fromkeys(file.split for file in files)]


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)


# --------------------------------------------------------------------------- per-table mappings (pure)


def clothing_table(raw: pd.DataFrame, params: dict[str, Any], source: str) -> pd.DataFrame:
    """Women's E-Commerce Clothing Reviews: text = Title + Review Text, label from Rating."""
    require_columns(raw, ["Review Text", "Rating"], source)
    frame = raw.rename(columns=CLOTHING_COLUMNS)
    # The unnamed first column is the row number of the published file: a stable key.
    key = frame.iloc[:, 0] if str(raw.columns[0]).startswith("Unnamed") else pd.Series(frame.index, index=frame.index)
    ratings = pd.to_numeric(frame["rating"], errors="coerce")
    table = pd.DataFrame(
        {
            "id": "clothing-" + key.astype("string"),
            "text": joined_text(frame.get("title", pd.Series("", index=frame.index)), frame["review_text"]),
            "label": rating_labels(ratings, params["positive_above"], params["negative_below"]),
            "rating": ratings,
        }
    )
    # Rows without review text are no review: the tutorial drops them, so do we (counted by ingest).
    table.loc[frame["review_text"].astype("string").fillna("").str.strip() == "", "text"] = pd.NA
    for column in ("age", "recommended", "positive_feedback_count"):
        if column in frame:
            table[column] = pd.to_numeric(frame[column], errors="coerce")
    for column in ("clothing_id", "division", "department", "class_name"):
        if column in frame:
            table[column] = frame[column].astype("string")
    neutral = ratings.notna() & table["label"].isna()
    return table[~neutral].reset_index(drop=True)


IMDB_ID = re.compile(r"^(?:train|test)_(pos|neg|unsup)_(\d+)$")
# aclImdb numbers the reviews of one movie consecutively (at most 30 a movie): consecutive
# reviews share a tenth of their capitalised words, reviews 40 apart no more than random ones.
# Blocks of 30 stand in for movies, so that a test split holds mostly unseen movies, as the
# official test set does.
IMDB_MOVIE_BLOCK = 30


def imdb_table(raw: pd.DataFrame, source: str) -> pd.DataFrame:
    """The Large Movie Review Dataset as CSV: id, rating, label, text (and ``group``: a block of
    consecutive review numbers, standing in for a movie, when the ids are aclImdb's)."""
    require_columns(raw, ["text", "label"], source)
    table = pd.DataFrame(
        {
            "id": raw["id"].astype("string") if "id" in raw else raw["text"].astype("string").map(content_id),
            "text": raw["text"].astype("string"),
            "label": binary_labels(raw["label"]),
        }
    )
    if "rating" in raw:
        table["rating"] = pd.to_numeric(raw["rating"], errors="coerce")
    parts = table["id"].astype("string").str.extract(IMDB_ID)
    if parts.notna().all().all():
        table["group"] = parts[0] + "-" + (parts[1].astype(int) // IMDB_MOVIE_BLOCK).astype("string")
    return table


def generic_table(raw: pd.DataFrame, params: dict[str, Any], source: str) -> pd.DataFrame:
    """Any table with configurable text and label columns; the other columns are metadata.

    ``label`` holds the label as written here; :func:`table` turns it into class indices over
    all files together.
    """
    text_columns = params["text_columns"]
    label_column = params["label_column"]
    id_column = params.get("id_column")
    require_columns(raw, [*text_columns, label_column, *([id_column] if id_column else [])], source)
    text = joined_text(*(raw[column] for column in text_columns))
    out = pd.DataFrame(
        {
            "id": raw[id_column].astype("string") if id_column else text.fillna("").map(content_id),
            "text": text,
            "label": raw[label_column].astype("string"),
        }
    )
    used = {*text_columns, label_column, id_column}
    for column in raw.columns:
        if column not in used and not str(column).startswith("Unnamed"):
            out[_snake(str(column))] = raw[column]
    return out


def movie_review_files(files: list[SourceFile]) -> list[tuple[str, str]]:
    """``(pos/NAME.txt, text)`` pairs from the corpus zip(s) or its unpacked .txt files, sorted."""
    reviews: list[tuple[str, str]] = []
    pattern = re.compile(r"(?:^|/)((pos|neg)/[^/]+\.txt)$")
    for file in files:
        try:
            if zipfile.is_zipfile(io.BytesIO(file.data)):
                with zipfile.ZipFile(io.BytesIO(file.data)) as archive:
                    for name in sorted(archive.namelist()):
                        if match := pattern.search(name):
                            reviews.append((match.group(1), archive.read(name).decode("utf-8")))
            elif match := pattern.search(file.name.replace("\\", "/")):
                reviews.append((match.group(1), file.data.decode("utf-8")))
        except (OSError, UnicodeDecodeError, zipfile.BadZipFile) as error:
            raise PipelineError(f"{file.source}: cannot read the movie_reviews corpus ({error})") from error
    return sorted(reviews)


# --------------------------------------------------------------------------- profiles (tasks/readers/profiles.py)


def _classification(frame: pd.DataFrame, classes: list[str], rows_read: int, **metadata: Any) -> Ingested:
    return Ingested(frame, {"classes": classes, **metadata}, rows_read)


def movie_reviews(files: list[SourceFile], params: dict[str, Any]) -> Ingested:
    """NLTK's movie_reviews corpus (polarity v2.0): ``pos/`` = positive, ``neg/`` = negative."""
    frame = _concat([from_file(batch[0], movie_review_table(movie_review_files(batch))) for batch in by_split(files)])
    if frame.empty:
        raise PipelineError(f"{params['source']}: no pos/*.txt or neg/*.txt reviews found")
    return _classification(frame, SENTIMENT_CLASSES, len(frame))


def movie_review_table(reviews: list[tuple[str, str]]) -> pd.DataFrame:
    """``(pos/NAME.txt, text)`` pairs as canonical rows: ``pos/`` = positive, ``neg/`` = negative."""
    return pd.DataFrame(
        {
            "id": pd.Series([f"movie_reviews-{name}" for name, _ in reviews], dtype="string"),
            "text": pd.Series([text for _, text in reviews], dtype="string"),
            "label": pd.Series([1 if name.startswith("pos/") else 0 for name, _ in reviews], dtype="Int16"),
        }
    )


def clothing_reviews(files: list[SourceFile], params: dict[str, Any]) -> Ingested:
    tables = tables_by_file(files)
    frame = _concat([from_file(file, clothing_table(raw, params, file.source)) for file, raw in tables])
    return _classification(frame, SENTIMENT_CLASSES, sum(len(raw) for _, raw in tables), rating_scale=[1, 5])


def imdb(files: list[SourceFile], params: dict[str, Any]) -> Ingested:
    tables = tables_by_file(files)
    frame = _concat([from_file(file, imdb_table(raw, file.source)) for file, raw in tables])
    return _classification(frame, SENTIMENT_CLASSES, sum(len(raw) for _, raw in tables), rating_scale=[1, 10])


def table(files: list[SourceFile], params: dict[str, Any]) -> Ingested:
    tables = tables_by_file(files)
    frame = _concat([from_file(file, generic_table(raw, params, file.source)) for file, raw in tables])
    frame["label"], classes = class_labels(frame["label"], params.get("classes"))
    return _classification(frame, classes, sum(len(raw) for _, raw in tables))
