"""Text classification, tokenize: the vocabulary and the encoded splits."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tasks.inputs import vocabulary


def featurize(splits: dict[str, pd.DataFrame], clean_meta: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The vocabulary fitted on train, and train and validation as token ids."""
    vocabulary.check_size(params["vocab_size"], params["min_count"], "tokenize.text_classification")
    train = splits["train"]
    words = vocabulary.fit_vocabulary(train["text"], params["vocab_size"], params["min_count"])
    max_len = vocabulary.sequence_length(train["n_tokens"], params["max_len"], params["length_percentile"])
    tables = {
        name: pd.DataFrame({"id": part["id"], "label": part["label"].astype("int16"),
                            "ids": vocabulary.encode(part["text"], words, max_len)})
        for name, part in splits.items()
    }
    train_lengths = np.minimum(train["n_tokens"].to_numpy(), max_len)
    padded = len(train_lengths) * max_len
    meta = {
        **{key: clean_meta[key] for key in ("kind", "classes", "clean", "dataset") if key in clean_meta},
        "oov_token": vocabulary.OOV_TOKEN,
        "vocab_size": len(words) + vocabulary.RESERVED,
        "max_len": max_len,
        "train_rows": len(train),
        "train_oov_rate": round(float(np.mean([(ids == 1).mean() if len(ids) else 0 for ids in tables["train"]["ids"]])), 4),
        "padding_fraction_fixed_length": round(float(1 - train_lengths.sum() / padded), 4) if padded else 0.0,
    }
    return {vocabulary.VOCAB_FILE: vocabulary.vocabulary_text(words), vocabulary.META_FILE: meta,
            **{f"{name}.parquet": table for name, table in tables.items()}}
