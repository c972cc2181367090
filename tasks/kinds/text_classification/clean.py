"""Text classification, clean: NLTK cleaning, de-duplication, the split."""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pandas as pd

from tasks.core.splits import Cleaned, require_classes, split_frame
from tasks.inputs.textclean import CleanOptions, clean_column


def deduplicate(frame: pd.DataFrame) -> tuple[pd.DataFrame, int, int]:
    """Drop exact duplicate cleaned texts; texts seen with different labels are dropped entirely."""
    labels_per_text = frame.groupby("text")["label"].nunique()
    conflicting = labels_per_text.index[labels_per_text > 1]
    unambiguous = frame[~frame["text"].isin(conflicting)]
    deduplicated = unambiguous.drop_duplicates("text", keep="first")
    return deduplicated, len(unambiguous) - len(deduplicated), len(frame) - len(unambiguous)


def clean(frame: pd.DataFrame, metadata: dict[str, Any], params: dict[str, Any]) -> Cleaned:
    """NLTK cleaning, de-duplication on the cleaned text (no text shared between splits), the split."""
    options = CleanOptions.from_params(params)
    cleaned = frame.rename(columns={"text": "raw_text"})
    cleaned.insert(1, "text", clean_column(frame["text"].tolist(), options, params.get("workers") or 0))
    cleaned["n_tokens"] = cleaned["text"].str.count(" ") + (cleaned["text"] != "")
    empty = cleaned["n_tokens"] == 0
    cleaned, duplicates, conflicting = deduplicate(cleaned[~empty])
    splits = split_frame(cleaned, params)
    require_classes(splits)
    classes = metadata["classes"]
    summary = {
        "rows_in": len(frame),
        "empty_after_cleaning": int(empty.sum()),
        "duplicates_removed": duplicates,
        "conflicting_labels_removed": conflicting,
        "rows": {name: len(part) for name, part in splits.items()},
        "class_shares": {name: {classes[int(label)]: round(float(share), 4)
                                for label, share in part["label"].value_counts(normalize=True).sort_index().items()}
                         for name, part in splits.items()},
        "mean_tokens": round(float(cleaned["n_tokens"].mean()), 1),
    }
    return Cleaned(splits, summary, {"clean": asdict(options)})
