"""The numeric-series kind and K classes: profiles, cleaning, scaling fitted on train only,
K-class metrics, masking, the pipeline end to end on tiny generated series, broken files."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import SHARED, commit_all, make_project, run, up_to_date
from tasks.targets import classification
from tasks.targets.classifier.baseline import macro_f1_scorer
from tasks.inputs import series
from tasks.core.common import PipelineError, load_params
from tasks.ingest import ingest
from tasks import kinds

VOWELS = SHARED / "data" / "sequences"
SHAPES = ("sine", "square", "ramp")


def shape_series(kind: str, steps: int, rng: np.random.Generator) -> np.ndarray:
    """Two features of a noisy periodic shape: the class is visible over time, not at one step."""
    t = np.linspace(0, 4 * np.pi, steps) + rng.uniform(0, 2 * np.pi)
    base = {"sine": np.sin(t), "square": np.sign(np.sin(t)), "ramp": (t % (2 * np.pi)) / np.pi - 1}[kind]
    return np.stack([base, np.cos(t) * (kind == "sine")], axis=1) + rng.normal(0, 0.2, (steps, 2))


def ts_text(items: list[np.ndarray], labels: list[str], name: str = "Shapes") -> str:
    lines = [f"@problemName {name}", "@timeStamps false", "@missing true", "@univariate false", "@dimensions 2",
             "@equalLength false", f"@classLabel true {' '.join(SHAPES)}", "@data"]
    for item, label in zip(items, labels):
        dims = [",".join("?" if np.isnan(v) else f"{v:.4f}" for v in item[:, d]) for d in range(item.shape[1])]
        lines.append(":".join(dims) + f":{label}")
    return "\n".join(lines) + "\n"


def write_archive(folder: Path, train: int, test: int, seed: int = 0, name: str = "Shapes") -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in (("TRAIN", train), ("TEST", test)):
        labels = [SHAPES[number % 3] for number in range(count)]
        items = [shape_series(label, int(rng.integers(12, 30)), rng) for label in labels]
        (folder / f"{name}_{split}.ts").write_text(ts_text(items, labels, name))


# --------------------------------------------------------------------------- profiles


def test_ts_archive_keeps_its_split_and_declared_classes(tmp_path: Path):
    write_archive(tmp_path, train=12, test=6)
    frame, metadata, summary = ingest({"dataset": "ts", "source": str(tmp_path / "Shapes_*.ts")})
    assert metadata["kind"] == "series_classification" and metadata["classes"] == list(SHAPES)
    assert metadata["n_features"] == 2 and summary["source_split"] == {"train": 12, "test": 6}
    first = series.unpack(frame["values"], 2)[0]
    assert first.shape == (frame["n_steps"].iloc[0], 2)


@pytest.mark.skipif(not (VOWELS / "JapaneseVowels_TRAIN.ts").exists(), reason="../shared JapaneseVowels not present")
def test_japanese_vowels_through_a_glob():
    frame, metadata, _ = ingest({"dataset": "ts", "source": str(VOWELS / "JapaneseVowels_*.ts")})
    assert len(frame) == 640 and (frame["split"] == "test").sum() == 370
    assert metadata["n_features"] == 12 and metadata["classes"] == [str(n) for n in range(1, 10)]
    assert frame["n_steps"].between(7, 29).all()


def test_mnist_npz_layout_reads_rows_as_steps(tmp_path: Path):
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 255, (20, 6, 5), dtype=np.uint8), "y_train": rng.integers(0, 10, 20),
              "x_test": rng.integers(0, 255, (8, 6, 5), dtype=np.uint8), "y_test": rng.integers(0, 10, 8)}
    np.savez(tmp_path / "mnist.npz", **arrays)
    frame, metadata, _ = ingest({"dataset": "mnist_npz", "source": str(tmp_path / "mnist.npz")})
    assert len(frame) == 28 and metadata["n_features"] == 5 and set(frame["n_steps"]) == {6}
    assert (series.unpack(frame["values"], 5)[0] == arrays["x_train"][0]).all()
    assert (frame["split"] == "test").sum() == 8
    np.savez(tmp_path / "bad.npz", x_train=arrays["x_train"])
    with pytest.raises(PipelineError, match="bad.npz: missing array"):
        ingest({"dataset": "mnist_npz", "source": str(tmp_path / "bad.npz")})


def test_digits_are_eight_steps_of_eight_pixels():
    frame, metadata, _ = ingest({"dataset": "digits", "source": "sklearn"})
    assert len(frame) == 1797 and metadata["n_features"] == 8 and set(frame["n_steps"]) == {8}
    assert metadata["classes"] == [str(n) for n in range(10)] and "split" not in frame


def test_long_table_groups_orders_and_names_bad_values(tmp_path: Path):
    rows = pd.DataFrame({"sensor": ["b", "a", "a", "b", "a"], "t": [2, 3, 1, 1, 2], "x": [4, 3, 1, 3, 2],
                         "y": [0.4, 0.3, "", 0.3, 0.2], "activity": ["run", "walk", "walk", "run", "walk"]})
    rows.to_csv(tmp_path / "long.csv", index=False)
    params = {"dataset": "long_table", "source": str(tmp_path / "long.csv"), "id_column": "sensor", "order_column": "t",
              "feature_columns": ["x", "y"], "label_column": "activity"}
    frame, metadata, _ = ingest(params)
    items = dict(zip(frame["id"], series.unpack(frame["values"], 2)))
    assert items["a"][:, 0].tolist() == [1, 2, 3] and np.isnan(items["a"][0, 1])  # ordered by t; blank is missing
    assert metadata["classes"] == ["run", "walk"] and metadata["feature_names"] == ["x", "y"]
    rows["x"] = rows["x"].astype(object)
    rows.loc[4, "x"] = "high"
    rows.to_csv(tmp_path / "long.csv", index=False)
    with pytest.raises(PipelineError, match=r"long.csv: column 'x' has a non-numeric value 'high' \(row 6, series a\)"):
        ingest(params)
    rows.loc[4, "x"], rows.loc[4, "activity"] = 2, "run"
    rows.to_csv(tmp_path / "long.csv", index=False)
    with pytest.raises(PipelineError, match="series a has 2 labels"):
        ingest(params)


# --------------------------------------------------------------------------- cleaning, scaling, metrics


def test_missing_values_policies_and_length_rules():
    item = np.asarray([[1.0, np.nan], [np.nan, 2.0], [3.0, np.nan], [4.0, 6.0]], np.float32)
    filled = series.prepare(item, series.SeriesOptions(missing="interpolate"))
    assert filled.tolist() == [[1, 2], [2, 2], [3, 4], [4, 6]]
    assert series.prepare(item, series.SeriesOptions(missing="fill", fill_value=-1))[0, 1] == -1
    assert series.prepare(item, series.SeriesOptions(missing="drop")) is None
    assert series.prepare(filled, series.SeriesOptions(max_steps=2)).shape == (2, 2)
    assert series.prepare(filled, series.SeriesOptions(resample_to=7))[[0, -1], 0].tolist() == [1, 4]
    with pytest.raises(PipelineError, match="clean.series_classification.missing"):
        series.SeriesOptions.from_params({"missing": "guess"})


def test_per_series_normalisation_is_chosen_by_one_nn_on_train_and_repeated_at_inference(tmp_path: Path):
    """auto: z-normalised when the classes differ by shape under random offsets and amplitudes
    (1-NN on raw values is confused by the scale), as given when the amplitude is the class."""
    rng = np.random.default_rng(3)
    shapes = [shape_series(SHAPES[row % 3], 40, rng) * rng.uniform(0.2, 5) + rng.uniform(-20, 20) for row in range(60)]
    labels = np.arange(60) % 3
    chosen = series.choose_normalisation(shapes, labels, seed=0)
    assert chosen["chosen"] == "series" and chosen["one_nn_accuracy"]["series"] > chosen["one_nn_accuracy"]["none"]
    amplitudes = [np.sin(np.linspace(0, 6, 40))[:, None] * (1 + 3 * label) + rng.normal(0, 0.1, (40, 1)) for label in labels]
    assert series.choose_normalisation(amplitudes, labels, seed=0)["chosen"] == "none"
    normalised = series.z_normalise(shapes[0])
    assert np.allclose(normalised.mean(axis=0), 0, atol=1e-6) and np.allclose(normalised.std(axis=0), 1)
    assert (series.z_normalise(np.ones((5, 1))) == 0).all()  # a constant feature becomes 0, not NaN

    (tmp_path / "Scaled_TRAIN.ts").write_text(ts_text(shapes, [SHAPES[label] for label in labels], "Scaled"))
    (tmp_path / "Scaled_TEST.ts").write_text(ts_text(shapes[:12], [SHAPES[label] for label in labels[:12]], "Scaled"))
    frame, metadata, _ = ingest({"dataset": "ts", "source": str(tmp_path / "Scaled_*.ts")})
    params = {"validation_fraction": 0.2, "test_fraction": 0.2, "seed": 1, "missing": "interpolate", "normalise": "auto"}
    cleaned = kinds.part("series_classification", "clean").clean(frame, metadata, params)
    assert cleaned.meta["clean"]["normalise"] == "series" and cleaned.summary["normalise"]["chosen"] == "series"
    options = series.SeriesOptions(**cleaned.meta["clean"])  # what predict and serve read from the card
    raw = dict(zip(frame["id"], series.unpack(frame["values"], 2)))
    for row in cleaned.splits["test"].itertuples():
        assert np.allclose(series.prepare(raw[row.id], options), series.unpack(pd.Series([row.values]), 2)[0], atol=1e-5)
    with pytest.raises(PipelineError, match="clean.series_classification.normalise"):
        series.SeriesOptions.from_params({"normalise": "always"})


def test_scaling_is_fitted_on_the_train_split_only(tmp_path: Path):
    write_archive(tmp_path, train=30, test=12)
    frame, metadata, _ = ingest({"dataset": "ts", "source": str(tmp_path / "Shapes_*.ts")})
    params = {"validation_fraction": 0.2, "test_fraction": 0.2, "seed": 1, "missing": "interpolate"}
    cleaned = kinds.part("series_classification", "clean").clean(frame, metadata, params)
    meta = {**metadata, **cleaned.meta, "kind": "series_classification"}
    scaler = kinds.part("series_classification", "tokenize").featurize(cleaned.splits, meta, {})["scaler.json"]
    train = np.concatenate(series.unpack(cleaned.splits["train"]["values"], 2))
    assert np.allclose(scaler["mean"], train.mean(axis=0)) and np.allclose(scaler["variance"], train.var(axis=0))
    shifted = cleaned.splits["test"].assign(values=[values + 100 for values in cleaned.splits["test"]["values"]])
    again = kinds.part("series_classification", "tokenize").featurize({**cleaned.splits, "test": shifted}, meta, {})["scaler.json"]
    assert again == scaler  # test data never moves the scaling


def test_a_small_archive_keeps_every_class_in_validation(tmp_path: Path):
    """5 series per class and a 10% validation share: each class's share rounds to no series, so
    the first train series of each class by hash goes to validation instead of stopping the run."""
    rng = np.random.default_rng(4)
    labels = [SHAPES[number % 3] for number in range(15)]
    (tmp_path / "Small_TRAIN.ts").write_text(ts_text([shape_series(label, 20, rng) for label in labels], labels, "Small"))
    (tmp_path / "Small_TEST.ts").write_text(ts_text([shape_series(label, 20, rng) for label in labels], labels, "Small"))
    frame, metadata, _ = ingest({"dataset": "ts", "source": str(tmp_path / "Small_*.ts")})
    params = {"validation_fraction": 0.1, "test_fraction": 0.2, "seed": 42, "missing": "interpolate"}
    cleaned = kinds.part("series_classification", "clean").clean(frame, metadata, params)
    assert cleaned.summary["rows"] == {"train": 12, "validation": 3, "test": 15}
    assert all(count == 1 for count in cleaned.summary["class_counts"]["validation"].values())
    from tasks.core.splits import assign_splits

    unsplit = pd.DataFrame({"id": [f"s{n}" for n in range(15)], "label": np.arange(15) % 3})
    split = assign_splits(unsplit, 0.1, 0.2, seed=1, stratify=True)  # no source split: test and validation both
    assert (pd.crosstab(unsplit["label"], split)[["test", "validation"]] >= 1).all().all()


def test_k_class_metrics_match_scikit_learn():
    from sklearn import metrics

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, 300)
    probabilities = rng.dirichlet(np.ones(4), 300)
    probabilities[np.arange(300), labels] += rng.uniform(0, 0.6, 300)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    ours = classification.classification_metrics(labels, probabilities, ["a", "b", "c", "d"], None)
    predicted = probabilities.argmax(axis=1)
    assert ours["accuracy"] == pytest.approx(metrics.accuracy_score(labels, predicted))
    assert ours["macro_f1"] == pytest.approx(metrics.f1_score(labels, predicted, average="macro"))
    assert list(ours["f1_per_class"].values()) == pytest.approx(metrics.f1_score(labels, predicted, average=None).tolist())
    assert ours["roc_auc"] == pytest.approx(metrics.roc_auc_score(labels, probabilities, multi_class="ovr"))
    assert ours["majority_rate"] == pytest.approx(np.bincount(labels).max() / 300)
    smallest = int(np.argmin(np.bincount(labels)))
    assert ours["minority_class"] == "abcd"[smallest]


def test_padding_never_changes_a_prediction():
    from tasks.networks.model import build_series_classifier

    scaler = {"mean": [0.5, -1.0], "variance": [2.0, 0.5]}
    cases = (("last", 1, False), ("max", 1, False), ("mean", 1, False), ("max", 3, False), ("last", 4, False),
             ("max", 1, True), ("last", 3, True))  # True: LSTM-FCN's convolutional branch beside the RNN
    for pooling, stride, conv in cases:
        model = build_series_classifier({"model": "gru", "bidirectional": True, "layers": 2, "units": 6, "dropout": 0.0,
                                         "pooling": pooling}, scaler, 3, stride, conv)
        rng = np.random.default_rng(0)
        if conv:  # batch statistics that are not the initial ones, learned with padded series in the batch
            batch = rng.normal(size=(8, 12, 2)).astype(np.float32)
            batch[:4, 7:] = np.nan
            model.compile("adam", "sparse_categorical_crossentropy")
            model.fit(batch, rng.integers(0, 3, 8), epochs=2, verbose=0)
            assert model.get_layer("conv").norms[0].moving_mean.numpy().any()
        short = rng.normal(size=(1, 5, 2)).astype(np.float32)
        for extra in (1, 4, 6):  # batches padded to lengths that are and are not multiples of the stride
            padded = np.concatenate([short, np.full((1, extra, 2), np.nan, np.float32)], axis=1)
            assert np.allclose(model(short), model(padded), atol=1e-6), (pooling, stride, conv, extra)


def test_long_series_reach_the_rnn_as_window_means_beside_a_conv_branch_and_small_sets_get_small_models():
    import keras

    from tasks.networks.model import MaskedDownsample, SeriesMask, downsample_stride, series_capacity, uses_conv_branch

    assert [downsample_stride(steps, 100) for steps in (29, 100, 101, 251, 1344)] == [1, 1, 2, 3, 14]
    assert downsample_stride(5000, None) == 1
    stride = downsample_stride(1200, 100)
    inputs = keras.Input((None, 1))
    reader = keras.Model(inputs, MaskedDownsample(stride)(SeriesMask()(inputs)))
    rng = np.random.default_rng(1)
    long = rng.normal(size=(1, 1200, 1)).astype(np.float32)
    shorter = np.concatenate([long[:, :1000], np.full((1, 200, 1), np.nan, np.float32)], axis=1)  # unequal: padded
    read = reader(np.concatenate([long, shorter])).numpy()
    assert read.shape == (2, 100, 1)  # the RNN reads 100 steps, not 1,200
    np.testing.assert_allclose(read[0, :, 0], long[0, :, 0].reshape(100, 12).mean(axis=1), rtol=1e-5, atol=1e-6)
    # the shorter series: 83 full windows, then the mean of its last 4 steps, then padding
    windows = [long[0, start : min(start + 12, 1000), 0].mean() for start in range(0, 1000, 12)]
    np.testing.assert_allclose(read[1, :84, 0], windows, rtol=1e-5, atol=1e-6)
    # the convolutional branch: series of 64 steps or more (before downsampling), unless forced
    assert [uses_conv_branch({"conv_branch": "auto"}, steps) for steps in (8, 29, 63, 64, 1344)] == [False] * 3 + [True] * 2
    assert uses_conv_branch({"conv_branch": True}, 8) and not uses_conv_branch({"conv_branch": False}, 1344)
    params = {"layers": 2, "units": 128, "capacity": "auto"}
    assert series_capacity(params, 36) == {**params, "layers": 1, "units": 32}
    assert series_capacity(params, 270) == {**params, "units": 64}
    assert series_capacity(params, 1437) == params and series_capacity({**params, "capacity": "fixed"}, 36)["units"] == 128


def test_the_conv_branch_also_reads_each_series_standardised_over_its_own_steps():
    import keras

    from tasks.networks.model import SeriesMask, WithOwnScale

    inputs = keras.Input((None, 2))
    reader = keras.Model(inputs, WithOwnScale()(SeriesMask()(inputs)))
    rng = np.random.default_rng(3)
    series_ = np.stack([rng.normal(size=7), np.full(7, 5.0)], axis=-1).astype(np.float32)  # the second is constant
    padded = np.concatenate([series_, np.full((3, 2), np.nan, np.float32)])[None]
    quiet, loud = reader(padded).numpy(), reader(padded * 1000 + 7).numpy()
    assert quiet.shape == (1, 10, 4)
    np.testing.assert_allclose(quiet[0, :7, :2], series_)  # as given
    expected = (series_[:, 0] - series_[:, 0].mean()) / series_[:, 0].std()
    np.testing.assert_allclose(quiet[0, :7, 2], expected, rtol=1e-5, atol=1e-5)
    assert not quiet[0, :7, 3].any() and not quiet[0, 7:].any()  # a constant feature, and padding: 0
    np.testing.assert_allclose(loud[0, :, 2:], quiet[0, :, 2:], rtol=1e-4, atol=1e-4)  # level and amplitude gone


def test_early_stopping_watches_the_loss_where_a_few_validation_series_saturate_auc():
    from tasks.networks.fit import early_stopping_monitor

    assert early_stopping_monitor("auto", binary=True) == ("val_auc", "max")
    assert early_stopping_monitor("auto", binary=False) == ("val_loss", "min")
    assert early_stopping_monitor("loss", binary=True) == ("val_loss", "min")
    with pytest.raises(PipelineError, match="train.series_classification.early_stopping_monitor auc needs two classes"):
        early_stopping_monitor("auc", binary=False, where="train.series_classification")
    assert load_params("train")["series_classification"]["early_stopping_monitor"] == "loss"  # the project's default


def test_a_large_archive_trains_fewer_epochs_within_the_compute_budget():
    from tasks.networks.model import series_epochs

    budget = {"epochs": 150, "max_series_steps": 12_000_000}
    assert series_epochs(budget, 537, 96) == 150  # PLAID, downsampled: far within it
    assert series_epochs(budget, 3601, 100) == 33  # 3,601 series of 100 steps read: 33 epochs fit
    assert series_epochs(budget, 1_000_000, 100) == 1  # at least one
    assert series_epochs({"epochs": 150, "max_series_steps": None}, 1_000_000, 100) == 150


# --------------------------------------------------------------------------- end to end

TINY_SERIES = {
    "ingest": {"dataset": "ts", "source": "data/raw/shapes/Shapes_*.ts"},
    "validate": {"min_rows": 20, "min_class_count": 5},
    "train": {"series_classification": {"units": 8, "epochs": 12, "batch_size": 16, "early_stopping_patience": 5,
                                        "learning_rate": 0.01}},
    "evaluate": {"series_classification": {"length_buckets": [0, 20, 100]}},
}


@pytest.fixture(scope="module")
def series_project(tmp_path_factory) -> Path:
    root = make_project(tmp_path_factory.mktemp("series") / "project", overrides=TINY_SERIES)
    write_archive(root / "data/raw/shapes", train=120, test=45)
    commit_all(root, "tiny series")
    return root


@pytest.mark.slow
def test_pipeline_classifies_series_and_predicts_a_ts_file(series_project: Path):
    root = series_project
    run(["dvc", "repro"], root)
    metrics = json.loads((root / "metrics/evaluate.json").read_text())
    assert metrics["n_test"] == 45 and metrics["n_classes"] == 3
    assert metrics["accuracy"] > 0.8 and metrics["accuracy"] > metrics["majority_rate"] + 0.3
    assert set(metrics["f1_per_class"]) == set(SHAPES) and "baseline" in metrics
    confusion = pd.read_csv(root / "plots/evaluate/confusion.csv")
    assert len(confusion) == 45 and set(confusion["actual"]) == set(SHAPES)
    assert (root / "plots/evaluate/confusion.png").exists() and (root / "reports/eda/series_examples.png").exists()
    slices = json.loads((root / "reports/evaluation/slices.json").read_text())
    assert sum(bucket["n"] for bucket in slices["length_bucket"].values()) == 45
    run(["python", "-m", "tasks.predict", "data/raw/shapes/Shapes_TEST.ts", "-o", "scored.csv"], root)
    scored = pd.read_csv(root / "scored.csv")
    assert list(scored.columns) == ["id", "actual", "predicted_label", *(f"predicted_probability_{name}" for name in SHAPES)]
    assert np.allclose(scored.filter(like="predicted_probability_").sum(axis=1), 1, atol=1e-5)
    assert (scored["actual"] == scored["predicted_label"]).mean() == pytest.approx(metrics["accuracy"], abs=1e-6)
    assert up_to_date(run(["dvc", "status"], root).stdout)


@pytest.mark.slow
def test_bad_series_are_quarantined_or_stop_the_run_naming_the_line(series_project: Path):
    root = series_project
    archive = root / "data/raw/shapes/Shapes_TRAIN.ts"
    good = archive.read_text()
    try:
        lines = good.splitlines()
        dims = lines[9].split(":")
        lines[9] = ":".join([",".join(["?"] * len(dims[0].split(",")))] + dims[1:])  # a whole feature missing
        archive.write_text("\n".join(lines) + "\n")
        run(["dvc", "repro", "validate"], root)
        quarantine = pd.read_parquet(root / "data/validated/quarantine.parquet")
        assert quarantine["reason"].str.contains("of its values missing").all() and len(quarantine) == 1
        lines[12] = lines[12].replace(",", ",abc,", 1)
        archive.write_text("\n".join(lines) + "\n")
        result = run(["dvc", "repro", "ingest"], root, check=False)
        assert result.returncode != 0 and "Shapes_TRAIN.ts: line 13: dimension 1 has a non-numeric value 'abc'" in result.stderr
    finally:
        archive.write_text(good)
        run(["dvc", "repro", "validate"], root)


def test_baseline_reads_each_series_shape_resampled_and_saves_it(tmp_path: Path):
    rng = np.random.default_rng(3)
    items = [shape_series(kind, int(steps), rng) for kind in SHAPES for steps in rng.integers(9, 30, 20)]
    labels = np.repeat(np.arange(len(SHAPES)), 20)
    features = series.summary_features(items[:2], shape_steps=5)
    assert features.shape == (2, 7 * 2 + 1 + 5 * 2)
    np.testing.assert_allclose(features[0, 15:], series.resample(items[0], 5).ravel())
    assert series.summary_features(items[:2]).shape == (2, 15)  # shape_steps 0: summaries only
    from tasks.core.splits import stratified_folds
    from tasks.kinds.series_classification.served import load_baseline, save_baseline

    model = series.SummaryLogistic.fit(items, labels, macro_f1_scorer(list(SHAPES)), [0.1, 1.0], 5,
                                       stratified_folds(labels, 0))
    assert model.out_of_fold.shape == (60, 3) and (model.out_of_fold.argmax(axis=1) == labels).mean() > 0.8
    save_baseline(model, "summary_logistic", tmp_path / "baseline.npz")
    loaded = load_baseline(tmp_path / "baseline.npz")
    assert loaded.shape_steps == 5 and "resampled to 5 steps" in loaded.description
    np.testing.assert_allclose(loaded.probabilities(items), model.probabilities(items))
    assert (loaded.probabilities(items).argmax(axis=1) == labels).mean() > 0.9


def test_stratified_folds_fit_on_every_class_and_hold_out_each_row_once():
    from tasks.core.splits import stratified_folds

    labels = np.array([0] * 7 + [1] * 3 + [2])  # class 2 has one row: never held out
    folds = stratified_folds(labels, seed=1)
    assert len(folds) == 3  # the smallest class with two rows or more has 3
    held = np.concatenate([held for _, held in folds])
    assert sorted(held) == list(range(10))
    assert all(set(labels[fit]) == {0, 1, 2} for fit, _ in folds)
    assert stratified_folds(np.array([0, 1, 2]), seed=1) == []


def test_the_baseline_is_the_candidate_with_the_best_cross_validated_accuracy(tmp_path: Path):
    """Two classes told apart only by where a short bump sits: the summaries (mean, spread, ends,
    slope) and a 4-step shape cannot see it, MiniRocket's dilated kernels can."""
    from tasks.kinds.series_classification.baseline import choose_baseline
    from tasks.kinds.series_classification.served import load_baseline

    rng = np.random.default_rng(5)
    labels = np.repeat([0, 1], 20)
    items = []
    for label in labels:
        item = rng.normal(0, 0.3, (40, 1))
        start = int(rng.integers(5, 12)) if label == 0 else int(rng.integers(22, 30))
        item[start : start + 4, 0] += 3 * (1 if rng.random() < 0.5 else -1) * np.array([1, 2, 2, 1]) / 2
        items.append(item)
    chosen = choose_baseline(items, labels, ["early", "late"], {"C": [0.1, 1], "shape_steps": 4,
                                                                "minirocket_features": 840})
    assert set(chosen.evidence) == {"summary_logistic", "minirocket"}
    assert chosen.name == "minirocket" and chosen.evidence["minirocket"]["accuracy"] >= 0.8
    assert chosen.evidence["summary_logistic"]["accuracy"] < chosen.evidence["minirocket"]["accuracy"]
    assert "cross-validation on train" in chosen.description and chosen.report["chosen"] == "minirocket"
    chosen.save(tmp_path / "b.npz")
    with np.load(tmp_path / "b.npz", allow_pickle=False) as stored:
        assert all(stored[name].dtype != object for name in stored.files)
    np.testing.assert_allclose(load_baseline(tmp_path / "b.npz").probabilities(items), chosen.probabilities(items), rtol=1e-5)
