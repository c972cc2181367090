"""Stage 6, evaluate: score the saved model on the held-out test split, beside the baseline.

What is measured is the kind's (classifiers: accuracy beside macro-F1, each class's F1,
the minority class's F1, ROC-AUC and the majority-class rate; language models: perplexity,
top-k accuracy, the OOV rate). The baseline stage's figures (``metrics/baseline.json``),
computed on the same test split, are copied in under ``baseline`` with the ratios that
compare the two. Writes ``metrics/evaluate.json``, DVC plot data and PNGs under
``plots/evaluate/`` and ``reports/evaluation/`` (per-slice metrics, worst errors, samples).
"""
from __future__ import annotations

import json
from typing import Any

from tasks import kinds
from tasks.core.artifacts import (
    BASELINE_METRICS,
    CLEAN_DIR,
    EVALUATE_METRICS,
    MODEL_DIR,
    PLOTS_DIR,
    REPORT_DIR,
    read_card,
)
from tasks.core.common import (
    atomic_path,
    load_params,
    read_parquet,
    run_main,
    write_json,
)


def rounded(value: Any) -> Any:
    """Floats to 4 decimals, recursively: metrics files that diff well."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    return value


def main() -> None:
    """Run the evaluate stage with ``params.yaml`` ``evaluate``."""
    card = read_card(MODEL_DIR)
    kind = kinds.kind_of(card)
    part = kinds.part(kind, "evaluate")
    params = kinds.settings(load_params("evaluate"), kind, "params.yaml: evaluate")
    test = read_parquet(CLEAN_DIR / "test.parquet", "clean")
    baseline = json.loads(BASELINE_METRICS.read_text()) if BASELINE_METRICS.exists() else None
    with atomic_path(PLOTS_DIR, kind="dir") as plots, atomic_path(REPORT_DIR, kind="dir") as report:
        plots.mkdir()
        report.mkdir()
        metrics = part.evaluate(MODEL_DIR, test, params, baseline, plots, report)
    write_json(EVALUATE_METRICS, rounded(metrics))
    print(f"evaluate: {part.headline(metrics)}")


if __name__ == "__main__":
    run_main(main)
