"""Helper stage, baseline: a classical model on the same split, beside the recurrent one.

What "classical" means is the kind's: an interpolated Kneser-Ney n-gram model for a language
model, TF-IDF word n-grams with logistic regression for text classes, a logistic regression
over summary features for numeric series. Its own DVC stage, so changing ``train`` never
reruns it. Reads ``data/tokenized/`` (vocabulary and encoded train/validation) and the clean
splits (the test split to score); writes ``baseline/`` (the fitted model, no pickles) and
``metrics/baseline.json`` (validation and test figures), which evaluate puts beside the
recurrent model's.
"""
from __future__ import annotations

from pathlib import Path

from tasks import clean, kinds, tokenize
from tasks.core.common import atomic_path, load_params, run_main, write_json

OUTPUT_DIR = Path("baseline")
METRICS = Path("metrics/baseline.json")


def main() -> None:
    """Run the baseline stage with ``params.yaml`` ``baseline``."""
    meta = tokenize.read_meta()
    kind = kinds.of(meta)
    params = kinds.settings(load_params("baseline"), kinds.name(kind), "params.yaml: baseline")
    with atomic_path(OUTPUT_DIR, kind="dir") as tmp:
        tmp.mkdir()
        metrics = kind.baseline(tokenize.OUTPUT_DIR, clean.OUTPUT_DIR, params, tmp)
    write_json(METRICS, metrics)
    print(f"baseline: {metrics['model']}: test {kind.baseline_headline(metrics['test'])} -> {OUTPUT_DIR}")


if __name__ == "__main__":
    run_main(main)
