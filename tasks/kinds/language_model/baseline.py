"""Language model, baseline: a Kneser-Ney n-gram model on the same tokens (modified by default),
with interpolated Kneser-Ney's perplexity beside it."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tasks.core.common import read_parquet
from tasks.inputs import vocabulary
from tasks.kinds.language_model import NGRAM_FILE, test_stream, token_stream
from tasks.targets import VALIDATION_PROBABILITIES


def baseline(tokenized_dir: Path, clean_dir: Path, params: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """A Kneser-Ney n-gram model (``params.discount``: modified, auto = interpolated, or one
    number) on the same train tokens and vocabulary; its validation and test perplexity and
    top-1/top-5 accuracy (the model saved into ``out_dir``). With modified Kneser-Ney, also the
    interpolated model's perplexities (``interpolated``), the classical baseline of one discount
    per order."""
    import time

    from tasks.baselines.ngram import AUTO, MODIFIED, KneserNey

    words, meta = vocabulary.read_vocabulary(tokenized_dir)
    streams = {name: token_stream(read_parquet(tokenized_dir / f"{name}.parquet", "tokenize")) for name in ("train", "validation")}
    streams["test"] = test_stream(clean_dir, words)
    started = time.perf_counter()
    model = KneserNey.fit(streams["train"], meta["vocab_size"], order=params["order"], discount=params["discount"])
    fitted = time.perf_counter() - started
    model.save(out_dir / NGRAM_FILE)
    # A language model is not ensembled with its baseline (tasks/targets/classifier/train.py): an empty file,
    # so that changing the baseline never reruns training, which depends on this file.
    np.save(out_dir / VALIDATION_PROBABILITIES, np.zeros(0, np.float32))
    variant = "modified" if params["discount"] == MODIFIED else "interpolated"
    metrics: dict[str, Any] = {"model": f"{variant} Kneser-Ney, order {params['order']}",
                               "discounts": [[round(float(d), 4) for d in level] for level in model.discounts],
                               "fit_seconds": round(fitted, 2)}
    for name in ("validation", "test"):
        stream = streams[name][1:]  # the LSTM predicts every token after the first: score the same tokens
        log_probs = model.log_probs(streams[name])[1:]
        top = model.top_k(streams[name], 5)[1:]
        metrics[name] = {
            "perplexity": float(np.exp(-log_probs.mean())),
            "top1_accuracy": float((top[:, 0] == stream).mean()),
            "top5_accuracy": float((top == stream[:, None]).any(axis=1).mean()),
            "tokens": int(len(stream)),
        }
    if params["discount"] == MODIFIED:
        interpolated = KneserNey.fit(streams["train"], meta["vocab_size"], order=params["order"], discount=AUTO)
        metrics["interpolated"] = {"model": f"interpolated Kneser-Ney, order {params['order']}",
                                   **{name: {"perplexity": float(np.exp(-interpolated.log_probs(streams[name])[1:].mean()))}
                                      for name in ("validation", "test")}}
    return metrics


def baseline_headline(metrics: dict[str, Any]) -> str:
    return (f"perplexity {metrics['perplexity']:.2f}, top-1 {metrics['top1_accuracy']:.4f}, "
            f"top-5 {metrics['top5_accuracy']:.4f}")
