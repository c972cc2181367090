"""Exploratory plots of validated data (the review tutorial's EDA and its kin), as PNG files.

Pure plotting: :func:`write_eda_plots` takes a DataFrame and a folder and writes
files into it; the caller decides where that folder lives (validate writes into a
temporary folder and moves it into place). Matplotlib is driven through its
object API on the Agg canvas, so no display and no global pyplot state is used.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

SENTIMENT_COLOURS = {"negative": "tab:red", "positive": "tab:blue"}


def figure(width: float = 6.4, height: float = 4.0):
    """A fresh Figure on an Agg canvas (no pyplot, no display)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save(figure, path: Path) -> Path:
    # No timestamp in the metadata: the same data gives the same bytes.
    figure.savefig(path, format="png", metadata={"Software": None})
    return path


def class_counts(frame: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    """Rows per class as a two-column table ``label,count`` (class names; every class listed, even when 0)."""
    counts = frame["label"].value_counts(dropna=True)
    return pd.DataFrame({"label": classes, "count": [int(counts.get(index, 0)) for index in range(len(classes))]})


def _bar(path: Path, counts: pd.Series, title: str, xlabel: str, colours=None, unit: str = "reviews") -> Path:
    plot = figure()
    axes = plot.subplots()
    positions = range(len(counts))
    bars = axes.bar(positions, counts.to_numpy(), color=colours)
    axes.bar_label(bars)
    axes.set_xticks(list(positions), [str(value) for value in counts.index],
                    rotation=45 if len(counts) > 6 else 0, ha="right" if len(counts) > 6 else "center")
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(unit)
    return save(plot, path)


def _histogram(path: Path, values: pd.Series, title: str, xlabel: str, bins: int = 40) -> Path:
    plot = figure()
    axes = plot.subplots()
    data = values.dropna().to_numpy(dtype=float)
    if len(data) and (data == data.round()).all():  # whole numbers: whole-number bins, no aliasing
        low, high = int(data.min()), int(data.max())
        width = max(1, -(-(high - low + 1) // bins))
        bins = list(range(low, high + width + 1, width))
    axes.hist(data, bins=bins, color="tab:gray", edgecolor="white")
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("reviews")
    return save(plot, path)


def _text_length_histogram(path: Path, frame: pd.DataFrame, classes: list[str]) -> Path:
    """Words per text, one density histogram per class, the top 1% tail folded into the last bin."""
    words = frame["text"].astype("string").fillna("").str.split().str.len().astype(float)
    cap = max(int(words.quantile(0.99)), 1) if len(words) else 1
    width = -(-cap // 40)  # whole words per bin: fractional edges alias integer counts
    bins = list(range(0, cap + width + 1, width))
    plot = figure()
    axes = plot.subplots()
    for index, name in enumerate(classes):
        values = words[(frame["label"] == index).fillna(False).to_numpy()]
        if len(values):
            # Density per class: the classes are often unbalanced, and counts would hide the rarer one.
            axes.hist(values.clip(upper=cap).to_numpy(), bins=bins, density=True, histtype="step", linewidth=1.5,
                      label=f"{name} ({len(values)})", color=SENTIMENT_COLOURS.get(name))
    axes.set_title("Text length")
    axes.set_xlabel(f"words per text (texts over {cap} words counted in the last bin)")
    axes.set_ylabel("density (each class sums to 1)")
    if axes.get_legend_handles_labels()[0] and len(classes) <= 12:
        axes.legend()
    return save(plot, path)


def write_class_counts(frame: pd.DataFrame, classes: list[str], out_dir: Path, unit: str) -> list[Path]:
    """``class_counts.csv`` (``label,count``, for DVC plots and the flow) and ``class_counts.png``."""
    counts = class_counts(frame, classes)
    csv_path = out_dir / "class_counts.csv"
    counts.to_csv(csv_path, index=False)
    named = pd.Series(counts["count"].to_numpy(), index=counts["label"].to_numpy())
    colours = [SENTIMENT_COLOURS.get(name, "tab:gray") for name in counts["label"]]
    return [csv_path, _bar(out_dir / "class_counts.png", named, f"{unit.capitalize()} per class", "class", colours, unit)]


def write_eda_plots(frame: pd.DataFrame, out_dir: str | Path, classes: list[str]) -> list[Path]:
    """Write the EDA plots of a labelled text table into ``out_dir`` (created if needed); return the files.

    Always: ``class_counts.png``, ``class_counts.csv`` and ``text_length_histogram.png``.
    Where the columns exist: ``rating_counts.png`` (``rating``), ``recommended_counts.png``
    (``recommended``) and ``age_histogram.png`` (``age``).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = write_class_counts(frame, classes, out_dir, "texts")
    written.append(_text_length_histogram(out_dir / "text_length_histogram.png", frame, classes))
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


def write_corpus_plots(frame: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """A corpus's plots: ``document_length_histogram.png`` (words per document) and
    ``top_words.png`` (the 30 most frequent lowercase words)."""
    from collections import Counter

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    words = frame["text"].astype("string").fillna("").str.split()
    written = [_histogram(out_dir / "document_length_histogram.png", words.str.len().astype(float),
                          f"Document length ({len(frame)} documents)", "words per document")]
    counts = Counter(word.lower() for document in words for word in document)
    top = pd.Series(dict(counts.most_common(30)))
    written.append(_bar(out_dir / "top_words.png", top, "Most frequent words", "word", unit="occurrences"))
    return written


def write_series_plots(frame: pd.DataFrame, items: list, classes: list[str], out_dir: str | Path,
                       examples_per_class: int = 3) -> list[Path]:
    """A series table's plots: ``class_counts`` (PNG and CSV), ``series_length_histogram.png``
    and ``series_examples.png`` (a few series of each class, their first feature)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = write_class_counts(frame, classes, out_dir, "series")
    written.append(_histogram(out_dir / "series_length_histogram.png", frame["n_steps"].astype(float),
                              "Series length", "steps per series"))
    shown = [index for index in range(len(classes)) if (frame["label"] == index).any()][:12]
    plot = figure(6.4, 1.2 + 0.9 * max(len(shown), 1))
    axes = plot.subplots(max(len(shown), 1), 1, sharex=True, squeeze=False)[:, 0]
    for axis, index in zip(axes, shown):
        rows = frame.index[(frame["label"] == index).fillna(False).to_numpy()][:examples_per_class]
        for row in rows:
            axis.plot(items[row][:, 0], linewidth=1)
        axis.set_ylabel(classes[index], rotation=0, ha="right", fontsize=8)
    axes[0].set_title(f"Examples per class (first feature; {len(shown)} of {len(classes)} classes)")
    axes[-1].set_xlabel("step")
    written.append(save(plot, out_dir / "series_examples.png"))
    return written
