"""Exploratory plots of the validated reviews (the review tutorial's EDA), as PNG files.

Pure plotting: :func:`write_eda_plots` takes a DataFrame and a folder and writes
files into it; the caller decides where that folder lives (validate writes into a
temporary folder and moves it into place). Matplotlib is driven through its
object API on the Agg canvas, so no display and no global pyplot state is used.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

LABEL_NAMES = {0: "negative", 1: "positive"}
LABEL_COLOURS = {0: "tab:red", 1: "tab:blue"}


def _figure(width: float = 6.4, height: float = 4.0):
    """A fresh Figure on an Agg canvas (no pyplot, no display)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path: Path) -> Path:
    # No timestamp in the metadata: the same data gives the same bytes.
    figure.savefig(path, format="png", metadata={"Software": None})
    return path


def class_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows per label as a two-column table ``label,count`` (both classes listed, even when 0)."""
    counts = frame["label"].value_counts(dropna=True)
    labels = sorted(set(LABEL_NAMES) | {int(value) for value in counts.index})
    return pd.DataFrame({"label": labels, "count": [int(counts.get(label, 0)) for label in labels]})


def _bar(path: Path, counts: pd.Series, title: str, xlabel: str, colours=None) -> Path:
    figure = _figure()
    axes = figure.subplots()
    positions = range(len(counts))
    bars = axes.bar(positions, counts.to_numpy(), color=colours)
    axes.bar_label(bars)
    axes.set_xticks(list(positions), [str(value) for value in counts.index])
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("reviews")
    return _save(figure, path)


def _histogram(path: Path, values: pd.Series, title: str, xlabel: str, bins: int = 40) -> Path:
    figure = _figure()
    axes = figure.subplots()
    data = values.dropna().to_numpy(dtype=float)
    if len(data) and (data == data.round()).all():  # whole numbers: whole-number bins, no aliasing
        low, high = int(data.min()), int(data.max())
        width = max(1, -(-(high - low + 1) // bins))
        bins = list(range(low, high + width + 1, width))
    axes.hist(data, bins=bins, color="tab:gray", edgecolor="white")
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("reviews")
    return _save(figure, path)


def _text_length_histogram(path: Path, frame: pd.DataFrame) -> Path:
    """Words per review, one density histogram per class, the top 1% tail folded into the last bin."""
    words = frame["text"].astype("string").fillna("").str.split().str.len().astype(float)
    cap = max(int(words.quantile(0.99)), 1) if len(words) else 1
    width = -(-cap // 40)  # whole words per bin: fractional edges alias integer counts
    bins = list(range(0, cap + width + 1, width))
    figure = _figure()
    axes = figure.subplots()
    for label, name in LABEL_NAMES.items():
        values = words[(frame["label"] == label).fillna(False).to_numpy()]
        if len(values):
            # Density per class: the classes are often unbalanced, and counts would hide the rarer one.
            axes.hist(values.clip(upper=cap).to_numpy(), bins=bins, density=True, histtype="step", linewidth=1.5,
                      label=f"{name} ({len(values)} reviews)", color=LABEL_COLOURS[label])
    axes.set_title("Review length")
    axes.set_xlabel(f"words per review (reviews over {cap} words counted in the last bin)")
    axes.set_ylabel("density (each class sums to 1)")
    if axes.get_legend_handles_labels()[0]:
        axes.legend()
    return _save(figure, path)


def write_eda_plots(frame: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """Write the EDA plots of ``frame`` into ``out_dir`` (created if needed); return the files written.

    Always: ``class_counts.png``, ``class_counts.csv`` (``label,count``, for DVC plots) and
    ``text_length_histogram.png``. Where the columns exist: ``rating_counts.png``
    (``rating``), ``recommended_counts.png`` (``recommended``) and ``age_histogram.png`` (``age``).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    counts = class_counts(frame)
    csv_path = out_dir / "class_counts.csv"
    counts.to_csv(csv_path, index=False)
    written.append(csv_path)
    named = pd.Series(counts["count"].to_numpy(),
                      index=[LABEL_NAMES.get(label, str(label)) for label in counts["label"]])
    colours = [LABEL_COLOURS.get(label, "tab:gray") for label in counts["label"]]
    written.append(_bar(out_dir / "class_counts.png", named, "Reviews per class", "label", colours))
    written.append(_text_length_histogram(out_dir / "text_length_histogram.png", frame))

    if "rating" in frame:
        ratings = pd.to_numeric(frame["rating"], errors="coerce").dropna()
        ratings = ratings.map(lambda value: int(value) if float(value).is_integer() else value)
        written.append(_bar(out_dir / "rating_counts.png", ratings.value_counts().sort_index(),
                            "Reviews per rating", "rating"))
    if "recommended" in frame:
        recommended = pd.to_numeric(frame["recommended"], errors="coerce").dropna().astype(int)
        written.append(_bar(out_dir / "recommended_counts.png", recommended.value_counts().sort_index(),
                            "Recommended (1) or not (0)", "recommended"))
    if "age" in frame:
        written.append(_histogram(out_dir / "age_histogram.png", pd.to_numeric(frame["age"], errors="coerce"),
                                  "Reviewer age", "age"))
    return written
