"""Language model, clean: corpus cleaning and the split by document or of the token stream."""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd

from tasks.core.common import PipelineError
from tasks.core.splits import SPLITS, Cleaned, split_frame
from tasks.inputs.textclean import END_TOKEN, CorpusOptions, corpus_texts, parallel_map

SPLIT_METHODS = ("auto", "document", "contiguous")


def split_method(params: dict[str, Any], metadata: dict[str, Any]) -> dict[str, Any]:
    """``split: auto`` follows the profile's protocol (Brown: Bengio et al.'s), else by document."""
    method = params.get("split", "auto")
    if method not in SPLIT_METHODS:
        raise PipelineError(f"params.yaml: clean.language_model.split must be one of {list(SPLIT_METHODS)}, not {method!r}")
    protocol = metadata.get("split")
    if method == "auto":
        return protocol or {"method": "document"}
    if method == "contiguous" and protocol and protocol.get("method") == "contiguous":
        return protocol
    return {"method": method}


def contiguous_splits(documents: pd.DataFrame, plan: dict[str, Any], params: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """Cut the corpus's token stream, in corpus order, into train, validation and test.

    Token counts from the plan (a profile's protocol; they count the corpus's own tokens, end
    tokens not included) or the clean fractions. A document cut in two becomes two segments
    (``id#1``, ``id#2``).
    """
    words = documents["text"].str.split()
    own = words.map(lambda tokens: sum(token != END_TOKEN for token in tokens))
    total = int(own.sum())
    if "train_tokens" in plan:
        train_end = plan["train_tokens"]
        validation_end = train_end + plan["validation_tokens"]
    else:
        train_end = round(total * (1 - params["validation_fraction"] - params["test_fraction"]))
        validation_end = round(total * (1 - params["test_fraction"]))
    if not 0 < train_end < validation_end < total:
        raise PipelineError(f"clean: the corpus has {total} tokens, too few for a {train_end}/{validation_end - train_end}/rest "
                            "contiguous split")
    edges = np.asarray([train_end, validation_end])
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in SPLITS}
    seen = 0
    for (_, document), tokens in zip(documents.iterrows(), words):
        own = np.fromiter((token != END_TOKEN for token in tokens), dtype=bool, count=len(tokens))
        # Each own token's position in the corpus; an end token goes with the token before it.
        position = seen + np.cumsum(own) - 1
        part_of = np.searchsorted(edges, np.maximum(position, 0), side="right")
        seen += int(own.sum())
        used = [index for index in range(len(SPLITS)) if (part_of == index).any()]
        for number, index in enumerate(used, 1):
            piece = [token for token, part in zip(tokens, part_of) if part == index]
            rows[SPLITS[index]].append({**document.to_dict(), "id": f"{document['id']}#{number}" if len(used) > 1 else document["id"],
                                        "text": " ".join(piece), "n_tokens": len(piece)})
    return {name: pd.DataFrame(rows[name], columns=[*documents.columns]) for name in SPLITS}


def clean(frame: pd.DataFrame, metadata: dict[str, Any], params: dict[str, Any]) -> Cleaned:
    """Language-model cleaning of every document, then a split by document or of the token stream."""
    options = CorpusOptions.from_params(params)
    pretokenized = bool(metadata.get("tokenized"))
    documents = frame.rename(columns={"text": "raw_text"})
    documents.insert(1, "text", parallel_map(corpus_texts, frame["text"].fillna("").tolist(), (options, pretokenized),
                                             params.get("workers") or 0))
    documents["n_tokens"] = documents["text"].str.count(" ") + (documents["text"] != "")
    empty = documents["n_tokens"] == 0
    documents = documents[~empty].drop(columns="raw_text").reset_index(drop=True)
    plan = split_method(params, metadata)
    splits = contiguous_splits(documents, plan, params) if plan["method"] == "contiguous" else split_frame(documents, params)
    for name, part in splits.items():
        if part.empty:
            raise PipelineError(f"clean: the {name} split has no text ({len(documents)} documents); need more data")
    summary = {
        "rows_in": len(frame),
        "empty_after_cleaning": int(empty.sum()),
        "split": plan,
        "rows": {name: len(part) for name, part in splits.items()},
        "tokens": {name: int(part["n_tokens"].sum()) for name, part in splits.items()},
    }
    return Cleaned(splits, summary, {"clean": asdict(options), "tokenized": pretokenized, "split": plan,
                                     "end_token": END_TOKEN})
