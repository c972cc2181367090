"""Language model, evaluate: exact perplexity, accuracy, samples and curves."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from tasks.core.common import write_json
from tasks.inputs import vocabulary
from tasks.kinds.language_model.predict import Generator
from tasks.networks import lm


def evaluate(model_dir: Path, test: pd.DataFrame, params: dict[str, Any], baseline: dict[str, Any] | None,
             plots_dir: Path, report_dir: Path) -> dict[str, Any]:
    """Exact test perplexity, top-1/top-5 accuracy, OOV rate, the baseline beside them,
    learning curves (CSV for DVC and PNG) and sample continuations of fixed prompts."""
    generator = Generator(model_dir)
    stream = vocabulary.encode_stream(test["text"], generator.words)
    scored = lm.score(generator.model, stream)
    metrics: dict[str, Any] = {
        "perplexity": scored["perplexity"],
        "top1_accuracy": scored["top1_accuracy"],
        "top5_accuracy": scored["top5_accuracy"],
        "oov_rate": float((stream == 1).mean()) if len(stream) else 0.0,
        "n_test_tokens": scored["tokens"],
        "vocab_size": generator.card["vocab_size"],
    }
    if baseline:
        test_baseline = baseline["test"]
        metrics["baseline"] = {"model": baseline.get("model"), **test_baseline}
        metrics["perplexity_vs_baseline"] = metrics["perplexity"] / test_baseline["perplexity"]
    history = pd.DataFrame(generator.card.get("history") or [])
    if not history.empty:
        history.rename(columns={"epoch": "step"}).to_csv(plots_dir / "learning_curves.csv", index=False)
        _plot_history(history, plots_dir / "learning_curves.png", baseline)
    samples = [generator.continue_text(prompt, params["words"], params["temperature"], params["top_k"], params["seed"])
               for prompt in params["prompts"]]
    write_json(report_dir / "samples.json", samples)
    (report_dir / "samples.md").write_text(samples_markdown(samples, params), encoding="utf-8")
    return metrics


def samples_markdown(samples: list[dict[str, Any]], params: dict[str, Any]) -> str:
    lines = ["# Sample continuations", "",
             f"{params['words']} tokens each, temperature {params['temperature']}, top-k {params['top_k']}, seed {params['seed']}.", ""]
    for sample in samples:
        unknown = f" (unknown words: {', '.join(sample['unknown_prompt_words'])})" if sample["unknown_prompt_words"] else ""
        lines += [f"**{sample['prompt']}**{unknown} ...", "", "> " + sample["text"].replace("\n", " / "), ""]
    return "\n".join(lines)


def _plot_history(history: pd.DataFrame, path: Path, baseline: dict[str, Any] | None) -> None:
    from tasks.checks.eda import figure, save

    plot = figure(6.4, 4.0)
    axis = plot.subplots()
    axis.plot(history["epoch"], history["val_perplexity"], marker="o", label="LSTM validation perplexity")
    if baseline:
        axis.axhline(baseline["validation"]["perplexity"], color="tab:gray", linestyle="--", label="n-gram baseline (validation)")
    axis.set(xlabel="epoch", ylabel="perplexity", title="Validation perplexity per epoch")
    axis.legend()
    save(plot, path)


def headline(metrics: dict[str, Any]) -> str:
    ratio = metrics.get("perplexity_vs_baseline")
    versus = f", {ratio:.3f} x the n-gram baseline's {metrics['baseline']['perplexity']:.1f}" if ratio else ""
    return (f"test perplexity {metrics['perplexity']:.2f}{versus}; top-1 {metrics['top1_accuracy']:.4f}, "
            f"top-5 {metrics['top5_accuracy']:.4f}, OOV rate {metrics['oov_rate']:.4f} (n={metrics['n_test_tokens']})")
