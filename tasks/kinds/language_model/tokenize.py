"""Language model, tokenize: the vocabulary and the token streams."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tasks.inputs import vocabulary


def featurize(splits: dict[str, pd.DataFrame], clean_meta: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The vocabulary fitted on the train tokens (rarer words map to the OOV id), train and validation as ids."""
    vocabulary.check_size(params["vocab_size"], params["min_count"], "tokenize.language_model")
    words = vocabulary.fit_vocabulary(splits["train"]["text"], params["vocab_size"], params["min_count"])
    tables = {name: pd.DataFrame({"id": part["id"], "ids": vocabulary.encode(part["text"], words)})
              for name, part in splits.items()}
    oov = {name: round(float(np.mean(np.concatenate([*table["ids"], np.zeros(0, np.int32)]) == 1)), 4)
           for name, table in tables.items()}
    meta = {
        **{key: clean_meta[key] for key in ("kind", "clean", "dataset", "end_token", "tokenized") if key in clean_meta},
        "oov_token": vocabulary.OOV_TOKEN,
        "vocab_size": len(words) + vocabulary.RESERVED,
        "tokens": {name: int(table["ids"].map(len).sum()) for name, table in tables.items()},
        "oov_rate": oov,
    }
    return {vocabulary.VOCAB_FILE: vocabulary.vocabulary_text(words), vocabulary.META_FILE: meta,
            **{f"{name}.parquet": table for name, table in tables.items()}}
