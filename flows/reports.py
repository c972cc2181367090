"""What the flow shows in the Prefect UI: artifact contents built from the stages' outputs.

Pure functions from files and dicts to Markdown or tables; flows/pipeline.py publishes
them under stable keys, so each key keeps a version per run in the UI's Artifacts page.
"""
from __future__ import annotations

import base64
import csv
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

from tasks.core.artifacts import EDA_DIR, EVALUATE_METRICS, PLOTS_DIR, REPORT_DIR

# Stable artifact keys (lowercase letters, digits and dashes, as Prefect requires).
KEYS = {
    "validation": "rnnflow-validation",
    "class_balance": "rnnflow-class-balance",
    "progress": "rnnflow-train-progress",
    "metrics": "rnnflow-metrics",
    "confusion": "rnnflow-confusion",
    "versions": "rnnflow-versions",
    "champion": "rnnflow-champion",
    "experiment": "rnnflow-experiment",
    "samples": "rnnflow-samples",
    "eda_figures": "rnnflow-eda-figures",
    "figures": "rnnflow-figures",
}

# Stage outputs the reports read (paths relative to the checkout root).
CLASS_COUNTS = EDA_DIR / "class_counts.csv"
METRICS = EVALUATE_METRICS
CONFUSION = PLOTS_DIR / "confusion.csv"
SAMPLES = REPORT_DIR / "samples.md"  # a language model's continuations of fixed prompts

# Figures are inlined into markdown artifacts as data URIs (the Prefect UI renders them; an
# http image would need the worker's files served to every reviewer): downscaled and reduced
# to a palette, a figure of the stages is 5-15 KB.
FIGURE_MAX_WIDTH = 640
FIGURE_COLOURS = 64
SITE_COMMAND = "python -m flows.reportsite"


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON file's content, or None when it is missing or (mid-write) unreadable."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def site_link(text: str, url: str | None, served: bool) -> str:
    """A markdown link to ``url`` on the reports site when it answers; otherwise the URL as text
    with what to start (a link the browser cannot open would only mislead)."""
    if url is None:
        return f"{text}: not published (see the run's log)"
    if served:
        return f"[{text}]({url})"
    return f"{text}: `{url}` (the reports site is not answering: start `{SITE_COMMAND}`, README \"Reviewing a run\")"


def inline_png(path: Path) -> str:
    """A PNG as a ``data:`` URI, at most ``FIGURE_MAX_WIDTH`` pixels wide, in ``FIGURE_COLOURS`` colours."""
    from PIL import Image

    with Image.open(path) as image:
        picture = image.convert("RGB")
    picture.thumbnail((FIGURE_MAX_WIDTH, FIGURE_MAX_WIDTH * 4))
    buffer = io.BytesIO()
    picture.quantize(colors=FIGURE_COLOURS).save(buffer, "PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def figure_title(path: Path) -> str:
    """``precision_recall.png`` -> ``Precision recall``."""
    return path.stem.replace("_", " ").capitalize()


def figures_markdown(title: str, paths: list[Path], root: Path, links: list[str] = ()) -> str:
    """Each PNG of ``paths`` (relative to ``root``) inlined under its title and file path, then ``links``."""
    lines = [f"# {title}", ""]
    for path in paths:
        lines += [f"## {figure_title(path)}", "", f"![{figure_title(path)}]({inline_png(root / path)})", "",
                  f"`{path}`", ""]
    return "\n".join(lines + [f"- {link}" for link in links])


def validation_markdown(summary: dict[str, Any], outcome: str, data_docs: list[str]) -> str:
    """Expectations passed/failed, rows quarantined and ``data_docs`` (:func:`site_link` lines: the
    GX Data Docs, each suite's result page) (``outcome``: what DVC did, e.g. "ran the stage")."""
    expectations = summary.get("expectations") or []
    failed = [e for e in expectations if not e.get("success")]
    reasons = summary.get("quarantine_reasons") or {}
    lines = [
        f"# Data validation: {'passed' if summary.get('success') else 'FAILED'}",
        "",
        f"DVC {outcome}; suite `{summary.get('suite', '?')}`.",
        "",
        "| | count |",
        "|---|---:|",
        f"| expectations passed | {len(expectations) - len(failed)} |",
        f"| expectations failed | {len(failed)} |",
        f"| rows in | {summary.get('rows_in', '—')} |",
        f"| rows accepted | {summary.get('rows_accepted', '—')} |",
        f"| rows quarantined | {summary.get('rows_quarantined', '—')} |",
    ]
    lines += [f"| quarantined: {reason} | {count} |" for reason, count in reasons.items()]
    if failed:
        lines += ["", "## Failed expectations", ""]
        lines += [f"- `{e.get('expectation')}` on `{e.get('column')}` ({e.get('scope')}): "
                  f"{e.get('unexpected_count')} unexpected" for e in failed]
    lines += ["", *(f"- {link}" for link in data_docs), "",
              f"(`{summary.get('data_docs', 'reports/data_docs/index.html')}` in the checkout)"]
    return "\n".join(lines)


def validation_failed_markdown(error: str) -> str:
    return "\n".join([
        "# Data validation: FAILED",
        "",
        "The validate stage stopped the pipeline; no later stage ran and the previous outputs are unchanged.",
        "",
        "```",
        error,
        "```",
    ])


def class_balance_table(path: Path) -> list[dict[str, Any]]:
    """``reports/eda/class_counts.csv`` (label,count: class names) with each class's share."""
    with path.open(newline="") as handle:
        rows = [(row["label"], int(row["count"])) for row in csv.DictReader(handle)]
    total = sum(count for _, count in rows) or 1
    return [{"label": label, "count": count, "share": round(count / total, 4)} for label, count in rows]


def majority_baseline(metrics: dict[str, Any]) -> dict[str, float]:
    """What always predicting the majority class scores on the same test split."""
    rate = metrics.get("majority_rate")
    if rate is None:
        return {}
    # Majority-class F1 = 2p/(1+p), the other K-1 classes score 0; a constant score has AUC 0.5.
    classes = metrics.get("n_classes") or 2
    return {"accuracy": rate, "macro_f1": 2 * rate / (1 + rate) / classes, "minority_f1": 0.0, "roc_auc": 0.5}


def flatten(metrics: dict[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    """Nested metrics as dotted keys: ``{"baseline": {"perplexity": 9}}`` -> ``{"baseline.perplexity": 9}``."""
    flat: dict[str, Any] = {}
    for key, value in (metrics or {}).items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def metrics_table(current: dict[str, Any], previous: dict[str, Any] | None) -> list[dict[str, Any]]:
    """This run's metrics beside the previous run's and the majority-class baseline (a
    classifier's; nested metrics such as the baseline model's appear as dotted names)."""
    baseline = majority_baseline(current)
    current, previous = flatten(current), flatten(previous)
    rows = []
    for name in sorted(set(current) | set(previous or {})):
        value = current.get(name)
        before = (previous or {}).get(name)
        change = value - before if isinstance(value, (int, float)) and isinstance(before, (int, float)) else None
        rows.append({
            "metric": name,
            "this_run": value,
            "previous_run": before,
            "change": round(change, 4) if change is not None else None,
            "majority_baseline": round(baseline[name], 4) if name in baseline else None,
        })
    return rows


def confusion_table(path: Path) -> list[dict[str, Any]]:
    """The K x K confusion matrix from ``plots/evaluate/confusion.csv`` (one row per test example),
    classes in the order they first appear as actual labels, then predicted-only ones."""
    with path.open(newline="") as handle:
        rows = [(row["actual"], row["predicted"]) for row in csv.DictReader(handle)]
    pairs = Counter(rows)
    labels = list(dict.fromkeys([actual for actual, _ in sorted(rows)] + [predicted for _, predicted in sorted(rows)]))
    return [
        {"actual \\ predicted": actual, **{f"predicted {p}": pairs.get((actual, p), 0) for p in labels}}
        for actual in labels
    ]


def stages_markdown(results: list[dict[str, Any]], git_rev: str, experiment: str | None) -> str:
    """Data and model versions: what DVC did per stage and the hashes of every output."""
    lines = [
        "# Data and model versions",
        "",
        f"- git revision: `{git_rev or 'no commit'}`",
        f"- DVC experiment: `{experiment}`" if experiment else "- DVC experiment: none (params.yaml as in the workspace)",
        "",
        "| stage | DVC | seconds | output | md5 |",
        "|---|---|---:|---|---|",
    ]
    for result in results:
        outs = result.get("outs") or {"—": ""}
        for number, (path, md5) in enumerate(outs.items()):
            head = f"| {result['stage']} | {result['outcome']} | {result['seconds']:.1f} " if number == 0 else "| | | "
            lines.append(f"{head}| `{path}` | `{md5}` |")
    return "\n".join(lines)


def champion_markdown(decision: dict[str, Any]) -> str:
    champion = decision.get("champion") or {}
    metric = decision.get("metric")
    lines = [
        f"# Champion: {'this run’s model (promoted)' if decision['promoted'] else 'unchanged'}",
        "",
        f"**Why:** {decision['reason']}",
        "",
    ]
    if champion:
        lines += [
            f"- model md5: `{champion.get('model_md5')}`",
            f"- {metric}: {_fmt((champion.get('metrics') or {}).get(metric))}",
            f"- git revision: `{champion.get('git_rev') or '—'}`; experiment: `{champion.get('experiment') or '—'}`",
            f"- promoted at {champion.get('promoted_at')} by flow run `{champion.get('flow_run') or '—'}`",
            f"- stored in `{decision.get('path')}`",
        ]
    else:
        lines.append("No champion yet.")
    return "\n".join(lines)


def progress_text(progress: dict[str, Any]) -> str:
    """"epoch 2 of 5 — val_auc 0.8123, val_loss 0.4567" from ``checkpoints/progress.json``."""
    shown = [f"{name} {value:.4f}" for name, value in sorted(progress.items())
             if name.startswith("val_") and isinstance(value, (int, float))]
    return f"epoch {progress.get('epoch')} of {progress.get('epochs')}" + (f" — {', '.join(shown)}" if shown else "")
