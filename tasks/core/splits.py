"""Splitting a cleaned table into train, validation and test: stable under added rows, leak-free, optionally stratified."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.core.artifacts import META_FILE
from tasks.core.common import PipelineError, atomic_path

SPLITS = ("train", "validation", "test")


SOURCE_SPLITS = {"train", "test"}  # values a source's own ``split`` column may hold


@dataclass
class Cleaned:
    """A kind's clean result: the three splits, a summary, and what inference must know."""

    splits: dict[str, pd.DataFrame]
    summary: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)


def split_buckets(keys: pd.Series, seed: int) -> np.ndarray:
    """A uniform number in [0, 1) per key, fixed by the key and the seed."""
    digests = (hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest() for key in keys)
    return np.fromiter((int.from_bytes(d, "big") / 2**64 for d in digests), dtype=np.float64, count=len(keys))


def check_fractions(validation_fraction: float, test_fraction: float) -> None:
    if not 0 < test_fraction < 1 or not 0 < validation_fraction < 1 or test_fraction + validation_fraction >= 1:
        raise PipelineError("params.yaml: clean.test_fraction and clean.validation_fraction must be in (0, 1), sum < 1")


def _ranks_within(groups: pd.Series, bucket: np.ndarray) -> np.ndarray:
    """Each row's position in (0, 1] within its group, by bucket order: a stratified 'bucket'."""
    frame = pd.DataFrame({"group": groups.to_numpy(), "bucket": bucket})
    rank = frame.groupby("group")["bucket"].rank(method="first")
    size = frame.groupby("group")["bucket"].transform("size")
    return ((rank - 0.5) / size).to_numpy()


def assign_splits(frame: pd.DataFrame, validation_fraction: float, test_fraction: float, seed: int,
                  stratify: bool = False) -> pd.Series:
    """Split name per row: test below ``test_fraction``, then validation, by id hash.

    With a source ``split`` column (its own, or ``ingest.test_source``'s) its test rows stay test
    and validation is drawn from its train rows (``validation_fraction`` of them; by group with a
    ``group`` column).
    """
    check_fractions(validation_fraction, test_fraction)
    train = _source_train(frame) if "split" in frame else None
    if "group" in frame:
        if train is None:
            return _assign_groups(frame, validation_fraction, test_fraction, seed)
        split = pd.Series("test", index=frame.index)
        split[train] = _assign_groups(frame[train], validation_fraction, 0.0, seed)
        return split
    bucket = split_buckets(frame["id"], seed)
    if train is not None:
        position = bucket.copy()
        if stratify:
            position[train.to_numpy()] = _ranks_within(frame.loc[train, "label"], bucket[train.to_numpy()])
        split = np.where(~train, "test", np.where(position < validation_fraction, "validation", "train"))
        if stratify:
            split[train.to_numpy()] = _at_least_one_each(split[train.to_numpy()], frame.loc[train, "label"].to_numpy(),
                                                         position[train.to_numpy()], ("validation",))
        return pd.Series(split, index=frame.index)
    position = _ranks_within(frame["label"], bucket) if stratify else bucket
    split = np.where(position < test_fraction, "test",
                     np.where(position < test_fraction + validation_fraction, "validation", "train"))
    if stratify:
        split = _at_least_one_each(split, frame["label"].to_numpy(), position, ("test", "validation"))
    return pd.Series(split, index=frame.index)


def _source_train(frame: pd.DataFrame) -> pd.Series:
    """Which rows the source's ``split`` column puts in train (the others are test)."""
    given = frame["split"].astype("string").str.lower().to_numpy()
    unknown = sorted(set(given) - SOURCE_SPLITS)
    if unknown:
        raise PipelineError(f"clean: the source's split column holds {unknown}; expected train or test")
    return pd.Series(given == "train", index=frame.index)


def _at_least_one_each(split: np.ndarray, labels: np.ndarray, position: np.ndarray, held_out: tuple[str, ...]) -> np.ndarray:
    """Stratified splits where a class's share rounds to no row (10% of 5 series): a class with
    more rows than there are ``held_out`` splits gets one row in each of them, its first train
    rows by ``position`` moving there; train keeps the rest. Shares that round to a row or more
    are left as they are."""
    split = split.astype(object)
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        if len(rows) <= len(held_out):
            continue
        for name in held_out:
            if not (split[rows] == name).any():
                train_rows = rows[split[rows] == "train"]
                split[train_rows[np.argmin(position[train_rows])]] = name
    return split.astype(str)


def _assign_groups(frame: pd.DataFrame, validation_fraction: float, test_fraction: float, seed: int) -> pd.Series:
    """Whole groups to splits: each group hashed, ranked within its (commonest) class."""
    groups = frame.groupby("group", sort=True)["label"].agg(lambda labels: labels.mode().iloc[0]).rename("label").reset_index()
    position = _ranks_within(groups["label"], split_buckets(groups["group"], seed))
    split = np.where(position < test_fraction, "test",
                     np.where(position < test_fraction + validation_fraction, "validation", "train"))
    return pd.Series(frame["group"].map(dict(zip(groups["group"], split))).to_numpy(), index=frame.index)


def stratified_folds(labels: np.ndarray, seed: int, most: int = 5) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fitting rows, held-out rows) of a stratified k-fold cross-validation of one split, k at
    most ``most`` and at most the smallest class's count, so that every fold fits on every
    class. A class with a single row is never held out (no model could learn it without it);
    fewer than two rows of every class: no folds."""
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(labels)
    shared = np.flatnonzero(counts[labels] >= 2)
    if len(shared) == 0 or len(np.unique(labels[shared])) < 2:
        return []
    k = int(min(most, counts[counts >= 2].min()))
    everywhere = np.flatnonzero(counts[labels] < 2)
    return [(np.sort(np.concatenate([shared[fit], everywhere])), shared[held])
            for fit, held in StratifiedKFold(k, shuffle=True, random_state=seed).split(shared, labels[shared])]


def split_frame(frame: pd.DataFrame, params: dict[str, Any], stratify: bool = False) -> dict[str, pd.DataFrame]:
    """The rows of each split, in input order."""
    split = assign_splits(frame, params["validation_fraction"], params["test_fraction"], params["seed"], stratify)
    return {name: frame[(split == name).to_numpy()].reset_index(drop=True) for name in SPLITS}


def require_classes(splits: dict[str, pd.DataFrame]) -> None:
    """Every split needs two classes or more, or training and evaluation are meaningless."""
    for name, part in splits.items():
        if part["label"].nunique() < 2:
            raise PipelineError(f"clean: the {name} split has {part['label'].nunique()} class(es) ({len(part)} rows); need more data")


def write_cleaned(cleaned: Cleaned, directory: Path) -> None:
    """The three splits and their metadata, replacing the old ones together."""
    with atomic_path(directory, kind="dir") as tmp:
        tmp.mkdir()
        for name, part in cleaned.splits.items():
            part.to_parquet(tmp / f"{name}.parquet", index=False)
        (tmp / META_FILE).write_text(json.dumps(cleaned.meta, indent=2, sort_keys=True) + "\n")
