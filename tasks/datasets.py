"""Dataset profiles: how each known source maps onto rnnflow's canonical table.

The canonical table has one row per document: ``id`` (stable string), ``text``,
``label`` (1 positive, 0 negative, <NA> when the source's label is unusable) and
any metadata columns the source carries (``rating``, ``age``, ``department``...).
Profiles are pure functions of an already-read raw table, so they can be tested
without files.
"""
from __future__ import annotations

import hashlib
import re
import zipfile
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from tasks.common import PipelineError

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
# The rating scale each source uses; validate checks ratings against it (params may override).
RATING_SCALES = {"clothing_reviews": [1, 5], "imdb": [1, 10]}
POSITIVE_WORDS = {"1", "pos", "positive", "true", "yes"}
NEGATIVE_WORDS = {"0", "neg", "negative", "false", "no"}


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
    words = values.astype("string").str.strip().str.lower()
    words = words.str.replace(r"\.0$", "", regex=True)
    labels = pd.Series(pd.NA, index=values.index, dtype="Int8")
    labels[words.isin(POSITIVE_WORDS)] = 1
    labels[words.isin(NEGATIVE_WORDS)] = 0
    return labels


def rating_labels(ratings: pd.Series, positive_above: float, negative_below: float) -> pd.Series:
    """Rating > positive_above is 1, < negative_below is 0; ratings in between are dropped by the caller."""
    labels = pd.Series(pd.NA, index=ratings.index, dtype="Int8")
    labels[ratings > positive_above] = 1
    labels[ratings < negative_below] = 0
    return labels


def _texts(*parts: pd.Series) -> pd.Series:
    """Join text columns with '. ', skipping blanks."""
    cleaned = [part.astype("string").fillna("").str.strip() for part in parts]
    joined = cleaned[0]
    for part in cleaned[1:]:
        both = (joined != "") & (part != "")
        joined = (joined + ". " + part).where(both, joined + part)
    return joined


def clothing_reviews(raw: pd.DataFrame, params: dict[str, Any], source: str) -> pd.DataFrame:
    """Women's E-Commerce Clothing Reviews: text = Title + Review Text, label from Rating."""
    require_columns(raw, ["Review Text", "Rating"], source)
    frame = raw.rename(columns=CLOTHING_COLUMNS)
    # The unnamed first column is the row number of the published file: a stable key.
    key = frame.iloc[:, 0] if str(raw.columns[0]).startswith("Unnamed") else pd.Series(frame.index, index=frame.index)
    ratings = pd.to_numeric(frame["rating"], errors="coerce")
    table = pd.DataFrame(
        {
            "id": "clothing-" + key.astype("string"),
            "text": _texts(frame.get("title", pd.Series("", index=frame.index)), frame["review_text"]),
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


def imdb(raw: pd.DataFrame, params: dict[str, Any], source: str) -> pd.DataFrame:
    """The Large Movie Review Dataset as CSV: id, rating, label, text."""
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
    return table


def table(raw: pd.DataFrame, params: dict[str, Any], source: str) -> pd.DataFrame:
    """Any CSV/Parquet/JSONL with configurable text and label columns; the rest is metadata."""
    text_columns = params["text_columns"]
    label_column = params["label_column"]
    id_column = params.get("id_column")
    require_columns(raw, [*text_columns, label_column, *([id_column] if id_column else [])], source)
    text = _texts(*(raw[column] for column in text_columns))
    out = pd.DataFrame(
        {
            "id": raw[id_column].astype("string") if id_column else text.fillna("").map(content_id),
            "text": text,
            "label": binary_labels(raw[label_column]),
        }
    )
    used = {*text_columns, label_column, id_column}
    for column in raw.columns:
        if column not in used and not str(column).startswith("Unnamed"):
            out[_snake(str(column))] = raw[column]
    return out


def _snake(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")


def movie_reviews(corpus: str, source: str) -> pd.DataFrame:
    """NLTK's movie_reviews corpus (polarity v2.0), as its zip or unpacked directory.

    Files are ``[movie_reviews/]{pos,neg}/NAME.txt``; the id is that relative path.
    """
    reviews: list[tuple[str, str]] = []
    pattern = re.compile(r"(?:^|/)((pos|neg)/[^/]+\.txt)$")
    try:
        if zipfile.is_zipfile(corpus):
            with zipfile.ZipFile(corpus) as archive:
                for name in sorted(archive.namelist()):
                    if match := pattern.search(name):
                        reviews.append((match.group(1), archive.read(name).decode("utf-8")))
        else:
            for path in sorted(Path(corpus).glob("*/*.txt")):
                if match := pattern.search(path.as_posix()):
                    reviews.append((match.group(1), path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, zipfile.BadZipFile) as error:
        raise PipelineError(f"{source}: cannot read the movie_reviews corpus ({error})") from error
    if not reviews:
        raise PipelineError(f"{source}: no pos/*.txt or neg/*.txt reviews found")
    return pd.DataFrame(
        {
            "id": pd.Series([f"movie_reviews-{name}" for name, _ in reviews], dtype="string"),
            "text": pd.Series([text for _, text in reviews], dtype="string"),
            "label": pd.Series([1 if name.startswith("pos/") else 0 for name, _ in reviews], dtype="Int8"),
        }
    )


TABULAR_PROFILES: dict[str, Callable[[pd.DataFrame, dict[str, Any], str], pd.DataFrame]] = {
    "clothing_reviews": clothing_reviews,
    "imdb": imdb,
    "table": table,
}
PROFILES = sorted([*TABULAR_PROFILES, "movie_reviews"])
