"""Batch inference: ``python -m tasks.predict INPUT.csv[.gz] --text-column text -o OUT.csv``.

Loads ``models/`` (Keras safe mode), cleans each row's text with the options the model
was trained with, and writes per row the positive probability and the label at the
model's decision threshold.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.common import PipelineError, atomic_path, run_main
from tasks.textclean import CleanOptions, clean_texts
from tasks.tokenize import OOV_TOKEN

MODEL_DIR = Path("models")


class Predictor:
    """The trained text model with its cleaning and threshold: raw text in, probability out."""

    def __init__(self, model_dir: Path = MODEL_DIR) -> None:
        from tasks.model import load_text_model

        if not (model_dir / "model.keras").exists():
            raise PipelineError(f"{model_dir}/model.keras: no trained model; run the pipeline first (dvc repro)")
        self.card = json.loads((model_dir / "model.json").read_text())
        self.options = CleanOptions.from_params(self.card["clean"])
        self.threshold = self.card["threshold"]
        self.model = load_text_model(str(model_dir / "model.keras"))

    def probabilities_of_clean(self, cleaned: list[str], batch_size: int = 256) -> np.ndarray:
        """Positive probabilities for already-cleaned texts."""
        import tensorflow as tf

        if not cleaned:
            return np.zeros(0, dtype=np.float32)
        # A text that cleans to nothing becomes one OOV step: cuDNN rejects all-padding sequences.
        cleaned = [text or OOV_TOKEN for text in cleaned]
        dataset = tf.data.Dataset.from_tensor_slices(tf.constant(cleaned, dtype=tf.string)).batch(batch_size)
        return np.concatenate([np.asarray(self.model(batch, training=False)).ravel() for batch in dataset])

    def probabilities(self, texts: list[str]) -> np.ndarray:
        """Positive probabilities for raw texts."""
        return self.probabilities_of_clean(clean_texts(texts, self.options))


def predict_file(source: Path, text_column: str, output: Path, model_dir: Path = MODEL_DIR) -> int:
    """Score every row of a CSV; write it with ``probability`` and ``label`` columns; return the row count."""
    from tasks.ingest import read_source

    [(name, frame)] = read_source(str(source))
    if text_column not in frame.columns:
        raise PipelineError(f"{name}: no column '{text_column}'; found: {', '.join(map(str, frame.columns))}")
    predictor = Predictor(model_dir)
    probabilities = predictor.probabilities(frame[text_column].fillna("").astype(str).tolist())
    frame["probability"] = probabilities.round(6)
    frame["label"] = (probabilities >= predictor.threshold).astype(int)
    with atomic_path(output) as tmp:
        frame.to_csv(tmp, index=False)
    return len(frame)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", type=Path, help="CSV (optionally .gz), Parquet or JSONL with a text column")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--model-dir", type=Path, default=MODEL_DIR)
    args = parser.parse_args(argv)
    rows = predict_file(args.input, args.text_column, args.output, args.model_dir)
    print(f"predict: {rows} rows -> {args.output}")


if __name__ == "__main__":
    run_main(main)
