"""Helper stage, baseline: a classical model on the same split, beside the recurrent one.

What "classical" means is the kind's: an interpolated Kneser-Ney n-gram model for a language
model, TF-IDF word n-grams with logistic regression for text classes, for numeric series
MiniRocket + ridge or a logistic regression over summary features, whichever cross-validates
better on train (refitted on train and validation). Its own DVC stage, so changing ``train`` never
reruns it. Reads ``data/tokenized/`` (vocabulary and encoded train/validation) and the clean
splits (the test split to score); writes ``baseline/`` (the fitted model, no pickles) and
``metrics/baseline.json`` (validation and test figures), which evaluate puts beside the
recurrent model's.
"""
from __future__ import annotations

from tasks import kinds
from tasks.core.artifacts import (
    BASELINE_DIR,
    BASELINE_METRICS,
    CLEAN_DIR,
    TOKENIZED_DIR,
    read_tokenized_meta,
)
from tasks.core.common import atomic_path, load_params, run_main, write_json


def main() -> None:
    """Run the baseline stage with ``params.yaml`` ``baseline``."""
    meta = read_tokenized_meta()
    kind = kinds.kind_of(meta)
    part = kinds.part(kind, "baseline")
    params = kinds.settings(load_params("baseline"), kind, "params.yaml: baseline")
    with atomic_path(BASELINE_DIR, kind="dir") as tmp:
        tmp.mkdir()
        metrics = part.baseline(TOKENIZED_DIR, CLEAN_DIR, params, tmp)
    write_json(BASELINE_METRICS, metrics)
    print(f"baseline: {metrics['model']}: test {part.baseline_headline(metrics['test'])} -> {BASELINE_DIR}")


if __name__ == "__main__":
    run_main(main)
