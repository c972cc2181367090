"""Numeric series as model input: storage, missing values, length, scaling.

A series is a float array of shape (steps, features). In tables it is stored flat (``values``:
steps x features numbers, row by row) with ``n_steps``; the number of features is the table's
metadata (``n_features``). Pure functions, shared by the clean stage and by inference, so
training and serving series go through the same code. Scaling statistics are fitted on the
train split only and built into the saved model (a Keras Normalization layer).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from tasks.core.common import PipelineError

MISSING_POLICIES = ("interpolate", "fill", "drop")
NORMALISATIONS = ("none", "series", "auto")
# normalise: auto judges on at most this many train series, each resampled to at most this many steps.
CHOICE_ROWS = 2000
CHOICE_STEPS = 256
CHOICE_VALUES = 16384  # ... and at most this many values (steps x features) per series: bounded memory


def pack(series: list[np.ndarray]) -> tuple[list[np.ndarray], list[int]]:
    """Flat float32 values and step counts of (steps, features) arrays, for a table."""
    return [np.ascontiguousarray(item, dtype=np.float32).ravel() for item in series], [len(item) for item in series]


def unpack(values: pd.Series, n_features: int) -> list[np.ndarray]:
    """(steps, features) float32 arrays from a table's flat ``values`` column."""
    return [np.asarray(flat, dtype=np.float32).reshape(-1, n_features) for flat in values]


def missing_share(series: np.ndarray) -> float:
    return float(np.isnan(series).mean()) if series.size else 0.0


@dataclass(frozen=True)
class SeriesOptions:
    """``params.yaml`` ``clean.series_classification``: missing values and length.

    ``missing``: ``interpolate`` (linear in time within each feature; the ends take the
    nearest value), ``fill`` (``fill_value``) or ``drop`` (the series is left out);
    ``max_steps`` keeps the first steps of longer series; ``resample_to`` stretches every
    series (linearly) to that many steps; ``normalise``: ``series`` z-normalises each feature of
    each series over its own steps (:func:`z_normalise`), ``none`` leaves the values as they are
    (the model's per-feature scaler still applies), ``auto`` is resolved to one of the two by the
    clean stage (:func:`choose_normalisation`) before any model sees it.
    """

    missing: str = "interpolate"
    fill_value: float = 0.0
    max_steps: int | None = None
    resample_to: int | None = None
    normalise: str = "none"

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "SeriesOptions":
        options = cls(**{f.name: params[f.name] for f in fields(cls) if f.name in params})
        if options.missing not in MISSING_POLICIES:
            raise PipelineError(f"params.yaml: clean.series_classification.missing must be one of {list(MISSING_POLICIES)}, "
                                f"not {options.missing!r}")
        if options.normalise not in NORMALISATIONS:
            raise PipelineError(f"params.yaml: clean.series_classification.normalise must be one of {list(NORMALISATIONS)}, "
                                f"not {options.normalise!r}")
        for name in ("max_steps", "resample_to"):
            value = getattr(options, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise PipelineError(f"params.yaml: clean.series_classification.{name} must be a positive integer or null")
        return options


def interpolate(series: np.ndarray) -> np.ndarray:
    """Missing values linearly interpolated along time, feature by feature; an all-missing feature is 0."""
    filled = series.copy()
    steps = np.arange(len(series))
    for feature in range(series.shape[1]):
        column = series[:, feature]
        known = ~np.isnan(column)
        if not known.any():
            filled[:, feature] = 0.0
        elif not known.all():
            filled[:, feature] = np.interp(steps, steps[known], column[known])
    return filled


def resample(series: np.ndarray, steps: int) -> np.ndarray:
    """The series stretched or squeezed linearly to ``steps`` steps."""
    if len(series) == steps:
        return series
    source = np.linspace(0, 1, len(series)) if len(series) > 1 else np.zeros(1)
    target = np.linspace(0, 1, steps)
    return np.stack([np.interp(target, source, series[:, feature]) for feature in range(series.shape[1])], axis=1)


def prepare(series: np.ndarray, options: SeriesOptions) -> np.ndarray | None:
    """One series after the missing-value policy and the length rules; None when it is dropped."""
    if np.isnan(series).any():
        if options.missing == "drop":
            return None
        series = interpolate(series) if options.missing == "interpolate" else np.nan_to_num(series, nan=options.fill_value)
    if options.max_steps is not None:
        series = series[: options.max_steps]
    if options.resample_to is not None:
        series = resample(series, options.resample_to)
    if options.normalise == "series":
        series = z_normalise(series)
    return series.astype(np.float32)


def z_normalise(series: np.ndarray) -> np.ndarray:
    """Each feature of one series shifted and scaled to mean 0 and standard deviation 1 over its
    own steps (a constant feature becomes 0): what most UCR univariate archives ship."""
    deviation = series - series.mean(axis=0)
    scale = series.std(axis=0)
    return deviation / np.where(scale > 1e-8, scale, 1.0)


def nearest_neighbour_hits(items: list[np.ndarray], labels: np.ndarray) -> np.ndarray:
    """Whether each series' nearest other series (Euclidean, every series resampled to the
    longest one's length, at most :data:`CHOICE_STEPS` and :data:`CHOICE_VALUES` values a series)
    has its class: leave-one-out 1-NN."""
    features = items[0].shape[1]
    steps = max(min(max(len(item) for item in items), CHOICE_STEPS, CHOICE_VALUES // features), 1)
    flat = np.stack([resample(item.astype(np.float64), steps).ravel() for item in items])
    norms = (flat**2).sum(axis=1)
    distances = norms[:, None] + norms[None, :] - 2 * flat @ flat.T
    np.fill_diagonal(distances, np.inf)
    return labels[distances.argmin(axis=1)] == labels


def choose_normalisation(items: list[np.ndarray], labels: np.ndarray, seed: int) -> dict[str, Any]:
    """``normalise: auto`` resolved on the train series alone: ``series`` when per-series
    z-normalisation raises the leave-one-out 1-NN accuracy (the classical check on the UCR
    archive, raw values against z-normalised ones) by more than one standard error of the paired
    difference, else ``none``. At most
    :data:`CHOICE_ROWS` series are judged (a seeded sample). Returns the choice, the two
    accuracies and why."""
    labels = np.asarray(labels)
    rows = np.arange(len(items))
    if len(rows) > CHOICE_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(rows, CHOICE_ROWS, replace=False))
    sample, sample_labels = [items[row] for row in rows], labels[rows]
    if len(sample) < 3:
        return {"chosen": "none", "why": f"{len(sample)} train series are too few to compare", "one_nn_accuracy": {}}
    raw = nearest_neighbour_hits(sample, sample_labels).astype(float)
    normalised = nearest_neighbour_hits([z_normalise(item) for item in sample], sample_labels).astype(float)
    difference = normalised - raw
    gain, standard_error = float(difference.mean()), float(difference.std(ddof=1) / np.sqrt(len(difference)))
    chosen = "series" if gain > standard_error else "none"
    why = (f"per-series z-normalisation {'raises' if gain > 0 else 'does not raise'} the leave-one-out 1-NN accuracy "
           f"of {len(sample)} train series by {gain:+.4f}, " + ("more" if chosen == "series" else "not more")
           + f" than one standard error ({standard_error:.4f})")
    return {"chosen": chosen, "why": why,
            "one_nn_accuracy": {"none": round(float(raw.mean()), 4), "series": round(float(normalised.mean()), 4)}}


def fit_scaler(series: list[np.ndarray]) -> dict[str, list[float]]:
    """Per-feature mean and variance over every step of the train series."""
    steps = np.concatenate(series)
    variance = steps.var(axis=0)
    return {"mean": steps.mean(axis=0).tolist(), "variance": np.where(variance > 0, variance, 1.0).tolist()}


def summary_features(series: list[np.ndarray], shape_steps: int = 0) -> np.ndarray:
    """Length-independent features per series for the classical baseline: per feature the mean,
    standard deviation, minimum, maximum, first and last value and the slope, plus the length;
    with ``shape_steps``, also the series resampled to that many steps (its shape, flattened)."""
    rows = []
    for item in series:
        steps = np.arange(len(item), dtype=np.float64)
        centred = steps - steps.mean()
        slope = (centred @ (item - item.mean(axis=0))) / max(float(centred @ centred), 1e-12)
        shape = resample(item, shape_steps).ravel() if shape_steps else []
        rows.append(np.concatenate([item.mean(0), item.std(0), item.min(0), item.max(0), item[0], item[-1], slope,
                                    [len(item)], shape]))
    return np.asarray(rows, dtype=np.float64)


class SummaryLogistic:
    """Logistic regression over :func:`summary_features`, standardised on train: the classical
    series classifier beside the RNN. Saved as arrays (``.npz``, no pickle)."""

    FAMILY = "summary_logistic"

    def __init__(self, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray, intercept: np.ndarray, c: float,
                 shape_steps: int) -> None:
        self.mean, self.scale, self.coef, self.intercept, self.c = mean, scale, coef, intercept, c
        self.shape_steps = shape_steps
        self.out_of_fold: np.ndarray | None = None  # the fit's evidence, not saved

    @classmethod
    def fit(cls, items: list[np.ndarray], labels: np.ndarray, choose, cs: list[float], shape_steps: int,
            folds: list[tuple[np.ndarray, np.ndarray]]) -> "SummaryLogistic":
        """The C whose out-of-fold probabilities over ``folds`` (train and held-out indices of
        ``items``) ``choose(labels, probabilities)`` scores highest, refitted on every series; its
        out-of-fold probabilities are kept as ``out_of_fold`` (the cross-validated evidence)."""
        from sklearn.linear_model import LogisticRegression

        features = summary_features(items, shape_steps)

        def fitted(rows: np.ndarray, c: float) -> "SummaryLogistic":
            mean, scale = features[rows].mean(axis=0), features[rows].std(axis=0)
            scale[scale == 0] = 1.0
            model = LogisticRegression(C=c, max_iter=5000).fit((features[rows] - mean) / scale, labels[rows])
            return cls(mean, scale, model.coef_, model.intercept_, c, shape_steps)

        best = None
        for c in sorted(cs):
            every = fitted(np.arange(len(items)), c)
            out_of_fold = every.probabilities_of_features(features)  # rows no fold holds out (a class's only series)
            for train_rows, held_rows in folds:
                out_of_fold[held_rows] = fitted(train_rows, c).probabilities_of_features(features[held_rows])
            score = choose(labels, out_of_fold)
            if best is None or score > best[0]:
                best = (score, every, out_of_fold)
        best[1].out_of_fold = best[2]
        return best[1]

    def probabilities(self, items: list[np.ndarray]) -> np.ndarray:
        """Positive probabilities (two classes) or one row of class probabilities per series."""
        return self.probabilities_of_features(summary_features(items, self.shape_steps))

    def probabilities_of_features(self, features: np.ndarray) -> np.ndarray:
        scores = ((features - self.mean) / self.scale) @ self.coef.T + self.intercept
        if self.coef.shape[0] == 1:
            return np.exp(-np.logaddexp(0, -scores.ravel()))
        exponent = np.exp(scores - scores.max(axis=1, keepdims=True))
        return exponent / exponent.sum(axis=1, keepdims=True)

    @property
    def description(self) -> str:
        shape = f" and the series resampled to {self.shape_steps} steps" if self.shape_steps else ""
        return f"logistic regression over per-series summary features{shape} (C={self.c:g})"

    def arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "scale": self.scale, "coef": self.coef, "intercept": self.intercept,
                "c": np.asarray(self.c), "shape_steps": np.asarray(self.shape_steps)}

    @classmethod
    def from_arrays(cls, stored) -> "SummaryLogistic":
        return cls(stored["mean"], stored["scale"], stored["coef"], stored["intercept"], float(stored["c"]),
                   int(stored["shape_steps"]))
