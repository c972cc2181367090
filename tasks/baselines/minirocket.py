"""MiniRocket (Dempster, Schmidt & Webb 2021): random convolutional features of numeric series.

84 fixed kernels of length 9 (weights -1, three of them 2), each at a set of dilations fitted to
the series length; a feature is the proportion of positive values (PPV) of one kernel's output
minus a bias, the biases being quantiles of that kernel's output on a training series. Every
kernel reads a random combination of channels (the multivariate version; one channel: the
original). The same arithmetic as aeon 1.6's ``MiniRocket``, on numpy across a batch of series
(tests/test_minirocket.py holds its features to aeon's on a committed fixture); the state is
arrays, saved in an ``.npz`` without pickle.

Series here are equal-length arrays of shape (cases, channels, steps), at least 9 steps.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from tasks.targets.classification import mean_log_loss, squash

KERNEL_LENGTH = 9
# The positions of the three weights 2 of each of the 84 kernels, in aeon's (and the paper's) order.
INDICES = np.asarray(list(combinations(range(KERNEL_LENGTH), 3)), dtype=np.int32)
BATCH = 256  # series transformed at once: bounds the memory of the 9 shifted copies


def fit_dilations(n_steps: int, n_features: int, max_dilations_per_kernel: int) -> tuple[np.ndarray, np.ndarray]:
    """Dilations spread exponentially up to (steps - 1) / 8, and how many features (biases) each gets."""
    per_kernel = n_features // len(INDICES)
    true_max = min(per_kernel, max_dilations_per_kernel)
    multiplier = per_kernel / true_max
    max_exponent = np.log2((n_steps - 1) / (KERNEL_LENGTH - 1))
    dilations, counts = np.unique(np.logspace(0, max_exponent, true_max, base=2).astype(np.int32), return_counts=True)
    counts = (counts * multiplier).astype(np.int32)
    for position in range(per_kernel - int(counts.sum())):  # the remainder, one each from the first dilation on
        counts[position % len(counts)] += 1
    return dilations, counts


def quantiles(count: int) -> np.ndarray:
    """Low-discrepancy quantiles in (0, 1): the fractional parts of k times the golden ratio."""
    return np.asarray([(k * ((np.sqrt(5) + 1) / 2)) % 1 for k in range(1, count + 1)], dtype=np.float32)


def _shifted(series: np.ndarray, dilation: int) -> tuple[np.ndarray, np.ndarray]:
    """For series (cases, channels, steps): the sum of the nine dilated taps weighted -1 (alpha) and
    each tap weighted 3 (gamma, shape 9 x cases x channels x steps); a kernel's output is alpha plus
    its three gammas (weight 2 = -1 + 3). Zero padding of 4 x dilation steps on each side."""
    negative, tripled = -series, 3 * series
    n_steps = series.shape[-1]
    padding = (KERNEL_LENGTH - 1) * dilation // 2
    alpha = negative.copy()
    gamma = np.zeros((KERNEL_LENGTH, *series.shape), dtype=np.float32)
    gamma[KERNEL_LENGTH // 2] = tripled
    end = n_steps - padding
    for tap in range(KERNEL_LENGTH // 2):
        alpha[..., -end:] += negative[..., :end]
        gamma[tap, ..., -end:] = tripled[..., :end]
        end += dilation
    start = dilation
    for tap in range(KERNEL_LENGTH // 2 + 1, KERNEL_LENGTH):
        alpha[..., :-start] += negative[..., start:]
        gamma[tap, ..., :-start] = tripled[..., start:]
        start += dilation
    return alpha, gamma


@dataclass
class MiniRocket:
    """Fitted MiniRocket: the kernels' channel combinations, dilations, features per dilation and biases."""

    channels_per_combination: np.ndarray  # one entry per (dilation, kernel)
    channel_indices: np.ndarray  # the combinations' channels, concatenated
    dilations: np.ndarray
    features_per_dilation: np.ndarray
    biases: np.ndarray
    n_steps: int

    @classmethod
    def fit(cls, series: np.ndarray, n_features: int = 10_000, max_dilations_per_kernel: int = 32,
            seed: int = 0) -> "MiniRocket":
        """Dilations from the length; each kernel's biases from the quantiles of its output on one
        training series drawn at random (seeded)."""
        series = np.asarray(series, dtype=np.float32)
        n_cases, n_channels, n_steps = series.shape
        if n_steps < KERNEL_LENGTH:
            raise ValueError(f"MiniRocket reads series of {KERNEL_LENGTH} steps or more, not {n_steps}")
        rng = np.random.default_rng(seed)
        dilations, features_per_dilation = fit_dilations(n_steps, max(n_features, len(INDICES)), max_dilations_per_kernel)
        combinations_count = len(INDICES) * len(dilations)
        per_combination = (2 ** rng.uniform(0, np.log2(min(n_channels, 9) + 1), combinations_count)).astype(np.int32)
        channel_indices = np.concatenate([rng.choice(n_channels, count, replace=False) for count in per_combination]
                                         ).astype(np.int32)
        levels = quantiles(len(INDICES) * int(features_per_dilation.sum()))
        biases = np.zeros(len(levels), dtype=np.float32)
        model = cls(per_combination, channel_indices, dilations, features_per_dilation, biases, n_steps)
        feature, drawn = 0, rng.integers(n_cases, size=combinations_count)
        for combination, (dilation, kernel, channels, count) in enumerate(model._kernels()):
            alpha, gamma = _shifted(series[drawn[combination], channels][None], int(dilation))
            output = model._output(alpha, gamma, kernel, slice(None))[0]
            biases[feature : feature + count] = np.quantile(output, levels[feature : feature + count])
            feature += count
        return model

    def _kernels(self):
        """(dilation, kernel index, its channels, its feature count) in feature order."""
        start, combination = 0, 0
        for dilation, count in zip(self.dilations, self.features_per_dilation):
            for kernel in range(len(INDICES)):
                width = int(self.channels_per_combination[combination])
                yield dilation, kernel, self.channel_indices[start : start + width], int(count)
                start, combination = start + width, combination + 1

    @staticmethod
    def _output(alpha: np.ndarray, gamma: np.ndarray, kernel: int, channels) -> np.ndarray:
        """One kernel's output (cases x steps), summed over ``channels``."""
        first, second, third = INDICES[kernel]
        return (alpha[:, channels] + gamma[first][:, channels] + gamma[second][:, channels]
                + gamma[third][:, channels]).sum(axis=1)

    @property
    def n_features(self) -> int:
        return len(self.biases)

    def transform(self, series: np.ndarray) -> np.ndarray:
        """PPV features (cases x n_features, float32) of series as long as the fitted ones."""
        series = np.asarray(series, dtype=np.float32)
        if series.shape[-1] != self.n_steps:
            raise ValueError(f"MiniRocket was fitted on series of {self.n_steps} steps, not {series.shape[-1]}")
        return np.concatenate([self._transform_batch(series[start : start + BATCH])
                               for start in range(0, len(series), BATCH)]) if len(series) else \
            np.zeros((0, self.n_features), np.float32)

    def _transform_batch(self, series: np.ndarray) -> np.ndarray:
        """Every kernel's output, PPV against its biases; every other kernel (alternating with the
        dilation) counts only the output away from the padded ends, as MiniRocket does."""
        features = np.zeros((len(series), self.n_features), dtype=np.float32)
        feature, shifted_for = 0, None
        for index, (dilation, kernel, channels, count) in enumerate(self._kernels()):
            if dilation != shifted_for:
                alpha, gamma = _shifted(series, int(dilation))
                shifted_for, dilation_index = dilation, index // len(INDICES)
            output = self._output(alpha, gamma, kernel, channels)
            if (dilation_index + kernel) % 2:
                padding = (KERNEL_LENGTH - 1) * int(dilation) // 2
                output = output[:, padding:-padding]
            biases = self.biases[feature : feature + count]
            features[:, feature : feature + count] = (output[:, :, None] > biases).mean(axis=1)
            feature += count
        return features

    def arrays(self, prefix: str = "minirocket_") -> dict[str, np.ndarray]:
        """The fitted state as arrays (names prefixed), for an ``.npz``."""
        return {prefix + name: np.asarray(getattr(self, name)) for name in self.__dataclass_fields__}

    @classmethod
    def from_arrays(cls, stored, prefix: str = "minirocket_") -> "MiniRocket":
        values = {name: np.asarray(stored[prefix + name]) for name in cls.__dataclass_fields__}
        return cls(**{**values, "n_steps": int(values["n_steps"])})


ALPHAS = np.logspace(-3, 3, 10)  # ridge penalties, chosen by leave-one-out (as aeon's MiniRocketClassifier)
# Scales of the ridge scores (+-1 codes), fitted to the leave-one-out log-loss; capped at 10 (a score
# of 1 is then 0.99995) so that a perfectly separated training set does not claim certainty.
TEMPERATURES = np.logspace(-1, 1, 41)


def equal_length(items: list[np.ndarray], n_steps: int) -> np.ndarray:
    """(steps, features) series as one (cases, features, n_steps) array: each series resampled
    linearly to ``n_steps`` (unequal lengths and the fitted length alike)."""
    from tasks.inputs.series import resample

    return np.stack([resample(np.asarray(item, np.float64), n_steps).T for item in items]).astype(np.float32)


@dataclass
class MiniRocketRidge:
    """MiniRocket features, scaled, and a ridge classifier (Dempster et al.'s choice): its penalty
    by leave-one-out, its scores turned into probabilities by one temperature fitted to the
    leave-one-out log-loss. Its leave-one-out probabilities of the training series are its
    cross-validated evidence (``out_of_fold``)."""

    transform: MiniRocket
    scale: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    alpha: float
    temperature: float
    out_of_fold: np.ndarray | None = None  # not saved: the fit's evidence only

    @classmethod
    def fit(cls, items: list[np.ndarray], labels: np.ndarray, n_steps: int, n_features: int = 10_000,
            seed: int = 0) -> "MiniRocketRidge":
        from sklearn.linear_model import RidgeCV

        resampled = equal_length(items, n_steps)
        transform = MiniRocket.fit(resampled, n_features=n_features, seed=seed)
        features = transform.transform(resampled)
        scale = features.std(axis=0)
        scale[scale == 0] = 1.0
        n_classes = max(int(labels.max()) + 1, 2)
        # A ridge classifier is a ridge regression on +-1 codes (one column for two classes); as a
        # regression, scikit-learn keeps each series' leave-one-out prediction, not only its error.
        codes = np.where(np.arange(n_classes)[None, :] == labels[:, None], 1.0, -1.0)
        codes = codes[:, 1:] if n_classes == 2 else codes
        ridge = RidgeCV(alphas=ALPHAS, scoring="neg_mean_squared_error", store_cv_results=True).fit(features / scale, codes)
        left_out = ridge.cv_results_[:, :, list(ALPHAS).index(ridge.alpha_)]
        left_out = left_out.ravel() if n_classes == 2 else left_out

        temperature = float(min(TEMPERATURES, key=lambda value: mean_log_loss(labels, squash(value * left_out))))
        return cls(transform, scale, np.atleast_2d(ridge.coef_), np.atleast_1d(ridge.intercept_), float(ridge.alpha_), temperature,
                   squash(temperature * left_out))

    def probabilities(self, items: list[np.ndarray]) -> np.ndarray:
        """Positive probabilities (two classes) or one row of class probabilities per series."""
        features = self.transform.transform(equal_length(items, self.transform.n_steps)) / self.scale
        scores = features @ self.coef.T + self.intercept
        return squash(self.temperature * (scores.ravel() if self.coef.shape[0] == 1 else scores))

    @property
    def description(self) -> str:
        return (f"MiniRocket ({self.transform.n_features} random-kernel features of each series resampled to "
                f"{self.transform.n_steps} steps) + ridge (alpha={self.alpha:g})")

    def arrays(self) -> dict[str, np.ndarray]:
        return {**self.transform.arrays(), "scale": self.scale, "coef": self.coef, "intercept": self.intercept,
                "alpha": np.asarray(self.alpha), "temperature": np.asarray(self.temperature)}

    @classmethod
    def from_arrays(cls, stored) -> "MiniRocketRidge":
        return cls(MiniRocket.from_arrays(stored), stored["scale"], stored["coef"], stored["intercept"],
                   float(stored["alpha"]), float(stored["temperature"]))
