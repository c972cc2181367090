"""MiniRocket on numpy against aeon 1.6's features (a fixture computed once with aeon in a
throwaway environment: /tmp-only, never a project dependency), and its saved state."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tasks.baselines.minirocket import MiniRocket, fit_dilations

FIXTURE = Path(__file__).parent / "data" / "minirocket_aeon.npz"


@pytest.fixture(scope="module")
def aeon() -> dict[str, np.ndarray]:
    with np.load(FIXTURE, allow_pickle=False) as stored:
        return {name: stored[name] for name in stored.files}


def same_features(ours: np.ndarray, theirs: np.ndarray) -> None:
    """Equal but for an output that lands on its bias exactly (float sums in another order):
    at most one step's worth (1/steps) on a handful of features."""
    assert ours.shape == theirs.shape
    difference = np.abs(ours - theirs)
    assert (difference > 1e-6).mean() < 0.002 and difference.max() <= 1 / 20 + 1e-6


def test_dilations_and_feature_counts_are_aeons(aeon):
    for prefix, steps, features in (("uni", 40, 840), ("multi", 30, 840), ("long", 1460, 10_000)):
        dilations, counts = fit_dilations(steps, features, 32)
        assert dilations.tolist() == aeon[f"{prefix}_dilations"].tolist()
        assert counts.tolist() == aeon[f"{prefix}_features_per_dilation"].tolist()


def test_fitted_on_one_series_the_biases_and_features_are_aeons(aeon):
    model = MiniRocket.fit(aeon["uni_fit"], n_features=840)  # one series: no random draw to differ
    np.testing.assert_allclose(model.biases, aeon["uni_biases"], rtol=1e-5, atol=1e-5)
    same_features(model.transform(aeon["uni_test"]), aeon["uni_features"])


def test_multivariate_features_with_aeons_kernels_are_aeons(aeon):
    model = MiniRocket(aeon["multi_channels_per_combination"], aeon["multi_channel_indices"], aeon["multi_dilations"],
                       aeon["multi_features_per_dilation"], aeon["multi_biases"], 30)
    same_features(model.transform(aeon["multi_test"]), aeon["multi_features"])
    assert not np.allclose(model.transform(aeon["multi_test"][:, ::-1]), aeon["multi_features"])  # channels matter


def test_state_round_trips_as_arrays_and_fitting_is_seeded(tmp_path: Path):
    series = np.random.default_rng(0).normal(size=(6, 2, 25)).astype(np.float32)
    model = MiniRocket.fit(series, n_features=168, seed=4)
    np.savez(tmp_path / "m.npz", **model.arrays())
    with np.load(tmp_path / "m.npz", allow_pickle=False) as stored:
        loaded = MiniRocket.from_arrays(stored)
    np.testing.assert_array_equal(loaded.transform(series), model.transform(series))
    np.testing.assert_array_equal(MiniRocket.fit(series, n_features=168, seed=4).biases, model.biases)
    with pytest.raises(ValueError, match="9 steps or more"):
        MiniRocket.fit(series[:, :, :8])
