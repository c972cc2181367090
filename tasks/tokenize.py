"""Stage 4, tokenize: the vocabulary, fitted on the train split only, and integer sequences.

Writes ``data/tokenized/`` together: ``vocab.txt`` (one token a line, most frequent first;
index 0 is padding and 1 the OOV token, as in Keras' TextVectorization, which the saved
model uses with this same file), ``meta.json`` (sequence length, OOV token, sizes, the clean stage's options) and
``{train,validation}.parquet`` (``ids``: token indices, truncated to the sequence length).
No TensorFlow here: the mapping is a dict lookup, checked against TextVectorization in tests.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from tasks.clean import OPTIONS_FILE
from tasks.clean import OUTPUT_DIR as INPUT_DIR
from tasks.common import PipelineError, atomic_path, load_params, read_parquet, run_main

OUTPUT_DIR = Path("data/tokenized")
RESERVED = 2  # index 0: padding, index 1: OOV
OOV_TOKEN = "[UNK]"  # the name Keras' TextVectorization gives index 1


def fit_vocabulary(texts: Iterable[str], vocab_size: int, min_count: int) -> list[str]:
    """The ``vocab_size - 2`` most frequent tokens seen at least ``min_count`` times (ties by token)."""
    counts = Counter(token for text in texts for token in text.split())
    ranked = sorted((item for item in counts.items() if item[1] >= min_count), key=lambda item: (-item[1], item[0]))
    return [token for token, _ in ranked[: max(vocab_size - RESERVED, 0)]]


def sequence_length(lengths: pd.Series, max_len: int | str, percentile: float) -> int:
    """``max_len`` itself, or the ``percentile`` of the train lengths when it is ``auto``."""
    if max_len == "auto":
        return max(int(np.ceil(np.percentile(lengths, percentile))), 1)
    if not isinstance(max_len, int) or max_len < 1:
        raise PipelineError(f"params.yaml: tokenize.max_len must be a positive integer or 'auto', not {max_len!r}")
    return max_len


def encode(texts: Iterable[str], vocabulary: list[str], max_len: int) -> list[np.ndarray]:
    """Token indices per text (OOV = 1), keeping the first ``max_len`` tokens."""
    index = {token: position + RESERVED for position, token in enumerate(vocabulary)}
    return [np.fromiter((index.get(t, 1) for t in text.split()[:max_len]), dtype=np.int32) for text in texts]


def fixed_length_padding_fraction(lengths: np.ndarray, padded_to: int) -> float:
    """The share of a fixed-length padded matrix that is padding."""
    return float(1 - np.minimum(lengths, padded_to).sum() / (len(lengths) * padded_to)) if len(lengths) else 0.0


def tokenize(splits: dict[str, pd.DataFrame], params: dict[str, Any]) -> tuple[list[str], dict[str, Any], dict[str, pd.DataFrame]]:
    """Fit the vocabulary on train, encode train and validation; return vocab, meta and tables."""
    train = splits["train"]
    vocabulary = fit_vocabulary(train["text"], params["vocab_size"], params["min_count"])
    max_len = sequence_length(train["n_tokens"], params["max_len"], params["length_percentile"])
    tables = {
        name: pd.DataFrame({"id": part["id"], "label": part["label"].astype("int8"), "ids": encode(part["text"], vocabulary, max_len)})
        for name, part in splits.items()
    }
    train_lengths = np.minimum(train["n_tokens"].to_numpy(), max_len)
    meta = {
        "oov_token": OOV_TOKEN,
        "vocab_size": len(vocabulary) + RESERVED,
        "max_len": max_len,
        "train_rows": len(train),
        "train_oov_rate": round(float(np.mean([(ids == 1).mean() if len(ids) else 0 for ids in tables["train"]["ids"]])), 4),
        "padding_fraction_fixed_length": round(fixed_length_padding_fraction(train_lengths, max_len), 4),
    }
    return vocabulary, meta, tables


def read_vocabulary(directory: Path = OUTPUT_DIR) -> tuple[list[str], dict[str, Any]]:
    """The vocabulary and its metadata, as training and inference load them."""
    vocabulary = (directory / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1]
    return vocabulary, json.loads((directory / "meta.json").read_text())


def main() -> None:
    """Run the tokenize stage with ``params.yaml`` ``tokenize``."""
    params = load_params("tokenize")
    splits = {name: read_parquet(INPUT_DIR / f"{name}.parquet", "clean") for name in ("train", "validation")}
    vocabulary, meta, tables = tokenize(splits, params)
    meta["clean"] = json.loads((INPUT_DIR / OPTIONS_FILE).read_text())
    with atomic_path(OUTPUT_DIR) as tmp:
        tmp.mkdir()
        (tmp / "vocab.txt").write_text("".join(token + "\n" for token in vocabulary), encoding="utf-8")
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        for name, table in tables.items():
            table.to_parquet(tmp / f"{name}.parquet", index=False)
    print(f"tokenize: {meta['vocab_size']} indices, max_len {meta['max_len']} -> {OUTPUT_DIR}")


if __name__ == "__main__":
    run_main(main)
