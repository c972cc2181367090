"""Stage 3, clean: NLTK text cleaning, de-duplication and the train/validation/test split.

Reads ``data/validated/reviews.parquet``; writes ``data/clean/{train,validation,test}.parquet``
(column ``text`` replaced by the cleaned tokens, ``raw_text`` keeps the original) and
``metrics/clean.json``.

Duplicates are judged on the cleaned text, so no text the model sees is shared between
splits. The split hashes each row's stable id (from ingest) with the seed: a row always
lands in the same split, whatever the cleaning options, and adding rows later never moves
a test row. The hash is uniform whatever the class, so every split keeps the whole's class balance up to
sampling noise (within 1% on the 20,000 clothing reviews); ranking within each class
would make it exact but would move rows between splits whenever data is added.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.common import PipelineError, atomic_path, load_params, read_parquet, run_main, write_json
from tasks.textclean import CleanOptions, clean_texts, lemmatizer, stopwords

INPUT = Path("data/validated/reviews.parquet")
OUTPUT_DIR = Path("data/clean")
SUMMARY = Path("metrics/clean.json")
SPLITS = ("train", "validation", "test")
OPTIONS_FILE = "options.json"
PARALLEL_MIN_ROWS = 5000  # below this, starting processes costs more than it saves
CHUNKS_PER_WORKER = 4  # equal chunks, a few per worker, so no worker idles at the end


def clean_column(texts: list[str], options: CleanOptions, workers: int) -> list[str]:
    """Clean texts, over ``workers`` forked processes when there are enough to pay for them."""
    if options.lemmatize:
        lemmatizer()  # load WordNet before forking: workers inherit it instead of each loading it
    if options.remove_stopwords:
        stopwords(options.keep_stopwords)
    if workers <= 1 or len(texts) < PARALLEL_MIN_ROWS:
        return clean_texts(texts, options)
    size = -(-len(texts) // (workers * CHUNKS_PER_WORKER))
    chunks = [texts[start : start + size] for start in range(0, len(texts), size)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return [text for chunk in pool.map(clean_texts, chunks, [options] * len(chunks)) for text in chunk]


def split_buckets(keys: pd.Series, seed: int) -> np.ndarray:
    """A uniform number in [0, 1) per key, fixed by the key and the seed."""
    digests = (hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest() for key in keys)
    return np.fromiter((int.from_bytes(d, "big") / 2**64 for d in digests), dtype=np.float64, count=len(keys))


def deduplicate(frame: pd.DataFrame) -> tuple[pd.DataFrame, int, int]:
    """Drop exact duplicate cleaned texts; texts seen with both labels are dropped entirely."""
    labels_per_text = frame.groupby("text")["label"].nunique()
    conflicting = labels_per_text.index[labels_per_text > 1]
    unambiguous = frame[~frame["text"].isin(conflicting)]
    deduplicated = unambiguous.drop_duplicates("text", keep="first")
    return deduplicated, len(unambiguous) - len(deduplicated), len(frame) - len(unambiguous)


def assign_splits(frame: pd.DataFrame, validation_fraction: float, test_fraction: float, seed: int) -> pd.Series:
    """Split name per row: test below ``test_fraction``, then validation, by id hash."""
    if not 0 < test_fraction < 1 or not 0 < validation_fraction < 1 or test_fraction + validation_fraction >= 1:
        raise PipelineError("params.yaml: clean.test_fraction and clean.validation_fraction must be in (0, 1), sum < 1")
    bucket = split_buckets(frame["id"], seed)
    split = np.where(bucket < test_fraction, "test", np.where(bucket < test_fraction + validation_fraction, "validation", "train"))
    return pd.Series(split, index=frame.index)


def clean(frame: pd.DataFrame, params: dict[str, Any]) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Clean, de-duplicate and split the validated table; return the splits and a summary."""
    options = CleanOptions.from_params(params)
    workers = params.get("workers") or os.cpu_count() or 1
    cleaned = frame.rename(columns={"text": "raw_text"})
    cleaned.insert(1, "text", clean_column(frame["text"].tolist(), options, workers))
    cleaned["n_tokens"] = cleaned["text"].str.count(" ") + (cleaned["text"] != "")
    empty = cleaned["n_tokens"] == 0
    cleaned, duplicates, conflicting = deduplicate(cleaned[~empty])
    split = assign_splits(cleaned, params["validation_fraction"], params["test_fraction"], params["seed"])
    splits = {name: cleaned[split == name].reset_index(drop=True) for name in SPLITS}
    for name, part in splits.items():
        if part["label"].nunique() < 2:
            raise PipelineError(f"clean: the {name} split has only one class ({len(part)} rows); need more data")
    summary = {
        "rows_in": len(frame),
        "empty_after_cleaning": int(empty.sum()),
        "duplicates_removed": duplicates,
        "conflicting_labels_removed": conflicting,
        "rows": {name: len(part) for name, part in splits.items()},
        "positive_rate": {name: round(float(part["label"].mean()), 4) for name, part in splits.items()},
        "mean_tokens": round(float(cleaned["n_tokens"].mean()), 1),
    }
    return splits, summary


def main() -> None:
    """Run the clean stage with ``params.yaml`` ``clean``."""
    params = load_params("clean")
    splits, summary = clean(read_parquet(INPUT, "validate"), params)
    with atomic_path(OUTPUT_DIR) as tmp:  # the three splits replace the old ones together
        tmp.mkdir()
        for name, part in splits.items():
            part.to_parquet(tmp / f"{name}.parquet", index=False)
        # Inference must clean text exactly as training data was cleaned: the options travel on.
        (tmp / OPTIONS_FILE).write_text(json.dumps(asdict(CleanOptions.from_params(params)), indent=2) + "\n")
    write_json(SUMMARY, summary)
    print(f"clean: {summary['rows']} (removed {summary['duplicates_removed']} duplicates) -> {OUTPUT_DIR}")


if __name__ == "__main__":
    run_main(main)
