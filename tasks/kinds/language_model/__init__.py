"""Language modelling: a corpus in, a model that predicts the next token and continues text.

Input: text as a token stream (:func:`tasks.inputs.textclean.corpus_text`: NLTK tokens, punctuation
kept, an end token after each sentence or document; the vocabulary, :mod:`tasks.inputs.vocabulary`).
Target: the next token (:mod:`tasks.networks.lm`). The baseline is a (modified) Kneser-Ney n-gram
model (:mod:`tasks.baselines.ngram`) on the same training tokens and vocabulary; evaluate reports both
and their ratio, ``perplexity_vs_baseline``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tasks.core.common import read_parquet
from tasks.inputs import vocabulary

NGRAM_FILE = "ngram.npz"


def token_stream(table: pd.DataFrame) -> np.ndarray:
    return np.concatenate([*table["ids"], np.zeros(0, np.int32)]).astype(np.int32)


def test_stream(clean_dir: Path, words: list[str]) -> np.ndarray:
    """The test split as one id stream in the training vocabulary (unknown words -> OOV id)."""
    test = read_parquet(clean_dir / "test.parquet", "clean")
    return vocabulary.encode_stream(test["text"], words)
