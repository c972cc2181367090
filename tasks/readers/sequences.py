"""Numeric-series profiles: one row per series (``id``, ``label``, ``values``, ``n_steps``).

``values`` holds the series flat (steps x features, :mod:`tasks.inputs.series`); the table's metadata
carries ``n_features`` and the class names. Sources with their own train/test split keep it
in a ``split`` column (clean then takes validation from train):

- ``ts``: the UEA/UCR archive's ``.ts`` files (:mod:`tasks.readers.tsfile`); ``NAME_TRAIN.ts`` and
  ``NAME_TEST.ts`` are the archive's split.
- ``mnist_npz``: Keras' ``mnist.npz`` layout (``x_train``, ``y_train``, ``x_test``, ``y_test``),
  each image read row by row: 28 steps of 28 pixels.
- ``digits``: scikit-learn's bundled 8x8 digits (``ingest.source: sklearn``): 8 steps of 8 pixels.
- ``long_table``: long-form rows (``ingest.id_column`` names the series, ``order_column`` orders
  its steps, ``feature_columns`` are the values, ``label_column`` the class, constant per series).
"""
from __future__ import annotations

import gzip
import io
import re
import zipfile
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from tasks.core.common import PipelineError
from tasks.inputs import series as series_input
from tasks.readers.datasets import (
    Ingested,
    natural_key,
    only_file,
    read_tables,
    require_columns,
)
from tasks.readers.tables import SourceFile

ARCHIVE_SPLIT = re.compile(r"_(TRAIN|TEST)\.ts$", re.IGNORECASE)


def series_table(ids: list[str], series: list[np.ndarray], labels: list[str], rows_read: int,
                 splits: list[str] | None = None, classes: list[str] | None = None,
                 feature_names: list[str] | None = None) -> Ingested:
    """The canonical series table from parallel lists; classes in natural order unless given."""
    if not series:
        raise PipelineError("the source holds no series")
    n_features = {item.shape[1] for item in series}
    if len(n_features) != 1:
        raise PipelineError(f"the series have different numbers of features: {sorted(n_features)}")
    classes = classes or sorted({str(label) for label in labels} - {""}, key=natural_key)
    index = {name: position for position, name in enumerate(classes)}
    values, steps = series_input.pack(series)
    frame = pd.DataFrame({
        "id": pd.Series(ids, dtype="string"),
        "label": pd.Series([index.get(str(label), pd.NA) for label in labels], dtype="Int16"),
        "values": values,
        "n_steps": np.asarray(steps, dtype=np.int64),
    })
    if splits is not None:
        frame["split"] = pd.Series(splits, dtype="string")
    [width] = n_features
    metadata = {"classes": classes, "n_features": width,
                "feature_names": feature_names or [f"feature_{number}" for number in range(width)]}
    return Ingested(frame, metadata, rows_read)


def ts_archive(files: list[SourceFile], params: dict[str, Any]) -> Ingested:
    """``.ts`` files; ``*_TRAIN.ts`` / ``*_TEST.ts`` keep the archive's split."""
    from tasks.readers.tsfile import parse_ts

    ids, series, labels, splits, declared = [], [], [], [], []
    for file in files:
        try:
            text = file.data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            line = file.data.count(b"\n", 0, error.start) + 1
            raise PipelineError(f"{file.source}: line {line} is not UTF-8") from error
        data = parse_ts(text, file.source)
        if data.labels is None or data.header.get("targetLabel"):
            raise PipelineError(f"{file.source}: has no class labels (@classLabel false or a regression file); "
                                "classification needs one label per series")
        split = ARCHIVE_SPLIT.search(PurePosixPath(file.name).name)
        name = PurePosixPath(file.name).name
        ids += [f"{name}:{number}" for number in range(1, len(data.series) + 1)]
        series += data.series
        labels += data.labels
        splits += [split.group(1).lower() if split else ""] * len(data.series)
        declared += [label for label in data.header.get("classLabel") or [] if label not in declared]
    has_split = any(splits)
    if has_split and not all(splits):
        raise PipelineError(f"{params['source']}: mixes archive files (NAME_TRAIN/NAME_TEST.ts) with other .ts files")
    # The files' own @classLabel order (the reader checks every label is declared).
    classes = declared or sorted(set(labels), key=natural_key)
    return series_table(ids, series, labels, len(series), splits if has_split else None, classes)


def mnist_npz(files: list[SourceFile], params: dict[str, Any]) -> Ingested:
    """Keras' mnist.npz: images (N, rows, columns) as ``rows`` steps of ``columns`` features."""
    file = only_file(files, params)
    try:
        with np.load(io.BytesIO(file.data), allow_pickle=False) as arrays:
            missing = [key for key in ("x_train", "y_train", "x_test", "y_test") if key not in arrays.files]
            if missing:
                raise PipelineError(f"{file.source}: missing array(s) {missing}; found {arrays.files}")
            parts = {key: arrays[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    except (ValueError, OSError, zipfile.BadZipFile) as error:
        raise PipelineError(f"{file.source}: not a readable .npz file ({error})") from error
    ids, series, labels, splits = [], [], [], []
    for split in ("train", "test"):
        images, targets = parts[f"x_{split}"], parts[f"y_{split}"]
        if images.ndim != 3 or len(images) != len(targets):
            raise PipelineError(f"{file.source}: x_{split} must be (N, rows, columns) with one y_{split} label per image; "
                                f"got {images.shape} and {targets.shape}")
        ids += [f"{split}-{number}" for number in range(len(images))]
        series += list(images.astype(np.float32))
        labels += [str(int(label)) for label in targets]
        splits += [split] * len(images)
    return series_table(ids, series, labels, len(series), splits)


def digits(files: list[SourceFile], params: dict[str, Any]) -> Ingested:
    """scikit-learn's 8x8 digits (its ``digits.csv.gz``: 64 pixels and the label per line)."""
    file = only_file(files, params)
    try:
        table = np.loadtxt(io.StringIO(gzip.decompress(file.data).decode("ascii")), delimiter=",")
    except (OSError, ValueError, EOFError) as error:
        raise PipelineError(f"{file.source}: not scikit-learn's digits.csv.gz ({error})") from error
    if table.ndim != 2 or table.shape[1] != 65:
        raise PipelineError(f"{file.source}: expected 65 columns (8x8 pixels and a label), found {table.shape}")
    images = table[:, :64].reshape(-1, 8, 8).astype(np.float32)
    labels = [str(int(label)) for label in table[:, 64]]
    return series_table([f"digit-{number}" for number in range(len(images))], list(images), labels, len(images))


def long_series(rows: pd.DataFrame, id_column: str, order_column: str, features: list[str],
                source: str) -> list[tuple[str, pd.DataFrame]]:
    """Long-form rows grouped into series: ``(id, rows in order)``, features checked numeric."""
    require_columns(rows, [id_column, order_column, *features], source)
    rows = rows.copy()
    for column in [*features, order_column]:
        numbers = pd.to_numeric(rows[column], errors="coerce")
        blank = rows[column].isna() | (rows[column].astype("string").str.strip() == "")
        bad = numbers.isna() & (~blank if column != order_column else True)
        if bad.any():
            first = bad.idxmax()
            raise PipelineError(f"{source}: column '{column}' has a non-numeric value {rows.at[first, column]!r} "
                                f"(row {first + 2}, series {rows.at[first, id_column]})")
        rows[column] = numbers
    ordered = rows.sort_values([id_column, order_column], kind="stable")
    return [(str(key), group) for key, group in ordered.groupby(id_column, sort=False)]


def long_table(files: list[SourceFile], params: dict[str, Any]) -> Ingested:
    """Long-form rows: one row per (series, step), grouped by ``id_column`` in ``order_column`` order."""
    id_column, order_column = params.get("id_column"), params.get("order_column")
    features, label_column = list(params.get("feature_columns") or []), params["label_column"]
    if not id_column or not order_column or not features:
        raise PipelineError("params.yaml: the long_table profile needs ingest.id_column, ingest.order_column and "
                            "ingest.feature_columns")
    ids, series, labels, splits = [], [], [], []
    rows_read = 0
    for name, raw in read_tables(files):
        require_columns(raw, [label_column], name)
        rows_read += len(raw)
        for key, group in long_series(raw, id_column, order_column, features, name):
            label_values = group[label_column].dropna().astype(str).unique()
            if len(label_values) > 1:
                raise PipelineError(f"{name}: series {key} has {len(label_values)} labels "
                                    f"({', '.join(label_values[:5])}); a series has one class")
            ids.append(key)
            series.append(group[features].to_numpy(dtype=np.float32))
            labels.append(label_values[0] if len(label_values) else "")
            if "split" in group:
                splits.append(str(group["split"].iloc[0]).lower())
    if splits and len(splits) != len(ids):
        raise PipelineError(f"{params['source']}: some files have a split column and some do not")
    return series_table(ids, series, labels, rows_read, splits or None, None, features)
