"""The vocabulary: fitted on the train split only, shared by training, inference and pretraining.

``vocab.txt`` holds one token a line, most frequent first; index 0 is padding and 1 the OOV
token, as in Keras' TextVectorization, which the saved text models use with this same list.
No TensorFlow here: the mapping is a dict lookup, checked against TextVectorization in tests.
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from tasks.core.common import PipelineError

RESERVED = 2  # index 0: padding, index 1: OOV
OOV_TOKEN = "[UNK]"  # the name Keras' TextVectorization gives index 1
VOCAB_FILE = "vocab.txt"
META_FILE = "meta.json"


def fit_vocabulary(texts: Iterable[str], vocab_size: int | None, min_count: int) -> list[str]:
    """The most frequent tokens seen at least ``min_count`` times (ties by token), at most
    ``vocab_size - 2`` of them (``None``: no cap)."""
    counts = Counter(token for text in texts for token in text.split())
    ranked = sorted((item for item in counts.items() if item[1] >= min_count), key=lambda item: (-item[1], item[0]))
    if vocab_size is not None:
        ranked = ranked[: max(vocab_size - RESERVED, 0)]
    return [token for token, _ in ranked]


def check_size(vocab_size: Any, min_count: Any, where: str) -> None:
    if vocab_size is not None and (not isinstance(vocab_size, int) or vocab_size <= RESERVED):
        raise PipelineError(f"params.yaml: {where}.vocab_size must be an integer above {RESERVED} or null, not {vocab_size!r}")
    if not isinstance(min_count, int) or min_count < 1:
        raise PipelineError(f"params.yaml: {where}.min_count must be a positive integer, not {min_count!r}")


def sequence_length(lengths: pd.Series, max_len: int | str, percentile: float) -> int:
    """``max_len`` itself, or the ``percentile`` of the train lengths when it is ``auto``."""
    if max_len == "auto":
        return max(int(np.ceil(np.percentile(lengths, percentile))), 1)
    if not isinstance(max_len, int) or max_len < 1:
        raise PipelineError(f"params.yaml: tokenize max_len must be a positive integer or 'auto', not {max_len!r}")
    return max_len


def index_of(vocabulary: list[str]) -> dict[str, int]:
    return {token: position + RESERVED for position, token in enumerate(vocabulary)}


def encode(texts: Iterable[str], vocabulary: list[str], max_len: int | None = None) -> list[np.ndarray]:
    """Token indices per text (OOV = 1), keeping the first ``max_len`` tokens (all when None)."""
    index = index_of(vocabulary)
    return [np.fromiter((index.get(t, 1) for t in text.split()[:max_len]), dtype=np.int32) for text in texts]


def encode_stream(texts: Iterable[str], vocabulary: list[str]) -> np.ndarray:
    """All texts' token indices as one contiguous stream, in order (a language model's input)."""
    index = index_of(vocabulary)
    return np.fromiter((index.get(t, 1) for text in texts for t in text.split()), dtype=np.int32)


def vocabulary_text(vocabulary: list[str]) -> str:
    return "".join(token + "\n" for token in vocabulary)


def read_vocabulary(directory: Path) -> tuple[list[str], dict[str, Any]]:
    """The vocabulary and its metadata, as training and inference load them."""
    vocabulary = (directory / VOCAB_FILE).read_text(encoding="utf-8").split("\n")[:-1]
    return vocabulary, json.loads((directory / META_FILE).read_text())


def vocabulary_digest(words: list[str]) -> str:
    """Identifies a vocabulary: a pretrained model only fits a classifier with the same one."""
    return hashlib.sha256(vocabulary_text(words).encode()).hexdigest()[:16]
