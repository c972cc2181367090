"""Series classification: a numeric sequence in (steps x features), one of K classes out.

Input: numeric series (:mod:`tasks.inputs.series`: missing values, length rules, scaling fitted on
train and built into the model). Target: classes (:mod:`tasks.targets.classification`). The saved
model takes a batch of series padded at the end with NaN and returns class probabilities.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.targets import classification
from tasks.inputs import series
from tasks.core.splits import Cleaned, require_classes, split_frame
from tasks.core.common import PipelineError, atomic_path, read_parquet

SUITE = "series_classification"
SCALER_FILE = "scaler.json"
META_FILE = "meta.json"
BASELINE_FILE = "summary_logistic.npz"


# --------------------------------------------------------------------------- ingest and validate


def adopt(frame: pd.DataFrame, metadata: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
    raise PipelineError(f"ingest.kind series_classification: the {metadata.get('dataset')} profile's data "
                        f"({metadata.get('kind')}) holds no numeric series")


def ingest_summary(frame: pd.DataFrame, metadata: dict[str, Any]) -> dict[str, Any]:
    classes = metadata["classes"]
    return {
        "classes": classes,
        "n_features": metadata["n_features"],
        "steps": {"min": int(frame["n_steps"].min()), "max": int(frame["n_steps"].max())},
        "source_split": frame["split"].value_counts().to_dict() if "split" in frame else None,
        "labels": classification.label_counts(frame, classes),
    }


def checked_table(frame: pd.DataFrame, metadata: dict[str, Any]) -> pd.DataFrame:
    """One summary row per series (what Great Expectations checks): length and missing share."""
    items = series.unpack(frame["values"], metadata["n_features"])
    summary = pd.DataFrame({
        "id": frame["id"],
        "label": frame["label"],
        "n_steps": frame["n_steps"].astype("int64"),
        "missing_share": [series.missing_share(item) for item in items],
    })
    if "split" in frame:
        summary["split"] = frame["split"]
    return summary


def write_eda(frame: pd.DataFrame, metadata: dict[str, Any], folder: Path) -> list[Path]:
    from tasks.checks.eda import write_series_plots

    return write_series_plots(frame, series.unpack(frame["values"], metadata["n_features"]), metadata["classes"], folder)


# --------------------------------------------------------------------------- clean and tokenize


def clean(frame: pd.DataFrame, metadata: dict[str, Any], params: dict[str, Any]) -> Cleaned:
    """Missing values by policy, length rules, then the split: stratified by class unless the
    source has its own (its test series stay test; validation comes from its train series)."""
    options = series.SeriesOptions.from_params(params)
    prepared = [series.prepare(item, options) for item in series.unpack(frame["values"], metadata["n_features"])]
    kept = np.asarray([item is not None for item in prepared])
    cleaned = frame[kept].reset_index(drop=True)
    cleaned["values"], cleaned["n_steps"] = series.pack([item for item in prepared if item is not None])
    splits = split_frame(cleaned, params, stratify=params.get("stratify", True))
    require_classes(splits)
    classes = metadata["classes"]
    summary = {
        "rows_in": len(frame),
        "dropped_for_missing_values": int((~kept).sum()),
        "rows": {name: len(part) for name, part in splits.items()},
        "class_counts": {name: {classes[int(label)]: int(count) for label, count in part["label"].value_counts().sort_index().items()}
                         for name, part in splits.items()},
        "steps": {"min": int(cleaned["n_steps"].min()), "max": int(cleaned["n_steps"].max())},
    }
    return Cleaned(splits, summary, {"clean": asdict(options)})


def featurize(splits: dict[str, pd.DataFrame], clean_meta: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Per-feature scaling statistics of the train split (a versioned artifact the model embeds)."""
    train = series.unpack(splits["train"]["values"], clean_meta["n_features"])
    scaler = series.fit_scaler(train)
    meta = {
        **{key: clean_meta[key] for key in ("kind", "classes", "clean", "dataset", "n_features", "feature_names")
           if key in clean_meta},
        "train_rows": len(train),
        "max_steps": int(splits["train"]["n_steps"].max()),
    }
    columns = ["id", "label", "values", "n_steps"]
    return {SCALER_FILE: scaler, META_FILE: meta,
            **{f"{name}.parquet": part[columns].astype({"label": "int16"}) for name, part in splits.items()}}


def read_features(directory: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    return json.loads((directory / SCALER_FILE).read_text()), json.loads((directory / META_FILE).read_text())


# --------------------------------------------------------------------------- baseline


def baseline(tokenized_dir: Path, clean_dir: Path, params: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Logistic regression over length-independent summary features of each series and its shape
    resampled to ``shape_steps`` steps (:class:`tasks.inputs.series.SummaryLogistic`); C chosen on
    validation (macro-F1), as is a two-class threshold. Saves the model and its validation probabilities (for an ensemble with the RNN)."""
    _, meta = read_features(tokenized_dir)
    classes = meta["classes"]
    parts = {name: read_parquet(clean_dir / f"{name}.parquet", "clean") for name in ("train", "validation", "test")}
    items = {name: series.unpack(part["values"], meta["n_features"]) for name, part in parts.items()}
    labels = {name: part["label"].to_numpy().astype(int) for name, part in parts.items()}
    model = series.SummaryLogistic.fit(items["train"], labels["train"], items["validation"], labels["validation"],
                                       classification.macro_f1_scorer(classes), params["C"], params["shape_steps"])
    model.save(out_dir / BASELINE_FILE)
    probabilities = {name: model.probabilities(items[name]) for name in ("validation", "test")}
    return classification.baseline_report(model.description, labels, probabilities, classes, out_dir)


def baseline_headline(metrics: dict[str, Any]) -> str:
    return f"accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}"


# --------------------------------------------------------------------------- train


def train(params: dict[str, Any], tokenized_dir: Path, model_dir: Path, live_dir: Path, checkpoint_dir: Path) -> dict[str, Any]:
    """Fit the classifier over scaled, masked series; save it (scaler inside) and its card."""
    from tasks.core.artifacts import BASELINE_DIR
    from tasks.networks.model import build_series_classifier
    from tasks.core.artifacts import write_card
    from tasks.networks.training import configure_tensorflow, distribution, padding_fraction, ragged_dataset

    device = configure_tensorflow(params)
    scaler, meta = read_features(tokenized_dir)
    classes = meta["classes"]
    tables = {name: read_parquet(tokenized_dir / f"{name}.parquet", "tokenize") for name in ("train", "validation")}
    with distribution(params) as replicas:
        inputs = {name: (series.unpack(table["values"], meta["n_features"]), classification.label_array(table, classes))
                  for name, table in tables.items()}
        data = {name: ragged_dataset(*inputs[name], params["batch_size"] * replicas, params["seed"], shuffle=name == "train",
                                     pad_value=np.nan)
                for name in tables}

        def train_epoch(epoch: int):  # epoch k's order from (seed, k) alone: a resumed run reads the same batches
            return ragged_dataset(*inputs["train"], params["batch_size"] * replicas, params["seed"], shuffle=True,
                                  pad_value=np.nan, epoch=epoch)

        model = build_series_classifier(params, scaler, len(classes))
        summary = classification.fit_classifier(
            model, train_epoch, data["validation"], classification.label_array(tables["train"], classes), classes, params, live_dir,
            checkpoint_dir, "train.series_classification")
    model.save(model_dir / "model.keras")
    labels = tables["validation"]["label"].to_numpy().astype(int)
    validation = series.unpack(tables["validation"]["values"], meta["n_features"])
    rnn = Predictor.of(model, classes, meta["n_features"]).probabilities_of_clean(validation)
    combined, ensemble = classification.ensemble(params, labels, rnn, BASELINE_DIR, BASELINE_FILE, model_dir,
                                                 "train.series_classification")
    decision, rnn_threshold = classification.decide_served(labels, combined, rnn, ensemble is not None, classes, params,
                                                           "train.series_classification")
    summary.update(decision)
    write_card(model_dir, {
        "kind": meta["kind"],
        "classes": classes,
        "threshold": summary["threshold"],
        "rnn_threshold": rnn_threshold,
        "ensemble": ensemble,
        "n_features": meta["n_features"],
        "feature_names": meta.get("feature_names"),
        "clean": meta["clean"],
        "params": params,
    })
    return {**device, "replicas": replicas, **summary,
            "padding_fraction": round(padding_fraction(data["train"], lambda batch: np.isnan(batch).any(axis=-1)), 4)}


# --------------------------------------------------------------------------- inference and evaluate


class Predictor(classification.Served):
    """The trained series model with its cleaning options (and the baseline it is averaged with,
    when ensembled): series in, class probabilities out."""

    def __init__(self, model_dir: Path) -> None:
        from tasks.core.common import check_model_archive, damaged_model, load_model_part
        from tasks.core.artifacts import read_card

        card = read_card(model_dir)
        card_classes(card, model_dir)
        try:
            missing = [key for key in ("n_features", "threshold", "clean") if key not in card]
            if missing:
                raise KeyError(missing[0])
            series.SeriesOptions(**card["clean"])
            baseline = card.get("ensemble") and model_dir / card["ensemble"]["baseline"]
        except (KeyError, TypeError, ValueError) as error:
            raise damaged_model(Path(model_dir) / "model.json", "a series classifier's model card",
                                f"missing {error}" if isinstance(error, KeyError) else error) from error
        check_model_archive(model_dir / "model.keras", "a Keras model file")  # before TensorFlow loads
        from tasks.networks.model import load_model

        self._setup(load_model(str(model_dir / "model.keras")), card)
        if self.ensemble:
            self.baseline = load_model_part(baseline, "the baseline's arrays (.npz)", series.SummaryLogistic.load)

    @classmethod
    def of(cls, model, classes: list[str], n_features: int) -> "Predictor":
        """A predictor around a model in memory (the train stage's, before its card exists)."""
        predictor = cls.__new__(cls)
        predictor._setup(model, {"classes": classes, "threshold": None, "n_features": n_features,
                                 "clean": asdict(series.SeriesOptions())})
        return predictor

    def _setup(self, model, card: dict[str, Any]) -> None:
        self.model, self.card = model, card
        self.classes, self.threshold = card["classes"], card["threshold"]
        self.options = series.SeriesOptions(**card["clean"])
        self.ensemble = card.get("ensemble")

    def rnn_probabilities(self, items: list[np.ndarray], batch_size: int = 256) -> np.ndarray:
        """The recurrent network's class probabilities (two classes: the positive one) of cleaned
        series, padded with NaN in batches."""
        width = 1 if classification.is_binary(self.classes) else len(self.classes)
        outputs = []
        for start in range(0, len(items), batch_size):
            batch = items[start : start + batch_size]
            padded = np.full((len(batch), max(len(item) for item in batch), self.card["n_features"]), np.nan, np.float32)
            for row, item in enumerate(batch):
                padded[row, : len(item)] = item
            outputs.append(np.asarray(self.model(padded, training=False)))
        if not outputs:
            return np.zeros((0,) if width == 1 else (0, width), np.float32)
        result = np.concatenate(outputs)
        return result.ravel() if width == 1 else result

    def probabilities(self, raw: list[np.ndarray]) -> np.ndarray:
        """Class probabilities of raw series (the training cleaning applied; a series the
        ``drop`` policy would leave out is interpolated instead: every input gets an answer)."""
        options = self.options if self.options.missing != "drop" else series.SeriesOptions(
            **{**asdict(self.options), "missing": "interpolate"})
        if any(item.shape[1] != self.card["n_features"] for item in raw):
            raise PipelineError(f"the model reads series of {self.card['n_features']} features; the input has "
                                f"{sorted({item.shape[1] for item in raw})}")
        return self.probabilities_of_clean([series.prepare(item, options) for item in raw])


def evaluate(model_dir: Path, test: pd.DataFrame, params: dict[str, Any], baseline: dict[str, Any] | None,
             plots_dir: Path, report_dir: Path) -> dict[str, Any]:
    """Test accuracy, macro-F1, each class's F1, the majority rate, a K x K confusion matrix,
    metrics by length bucket and the worst errors."""
    from tasks.core.common import write_json

    predictor = Predictor(model_dir)
    items = series.unpack(test["values"], predictor.card["n_features"])
    rnn = predictor.rnn_probabilities(items)
    probabilities = predictor.probabilities_of_clean(items, rnn)
    labels = test["label"].to_numpy().astype(int)
    classes, threshold = predictor.classes, predictor.threshold
    metrics = classification.score_test_split(predictor, labels, rnn, probabilities, plots_dir)
    table = test.drop(columns="values")
    write_json(report_dir / "slices.json", classification.slice_metrics(
        table, probabilities, threshold, [], "n_steps", params["length_buckets"]))
    classification.worst_examples(table, probabilities, classes, threshold, params["worst_examples"],
                                  ["n_steps"]).to_csv(report_dir / "worst_examples.csv", index=False)
    if baseline:
        metrics["baseline"] = baseline.get("test", baseline)
    return metrics


def headline(metrics: dict[str, Any]) -> str:
    return (f"accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}, minority F1 {metrics['minority_f1']:.4f} "
            f"({metrics['n_classes']} classes, majority rate {metrics['majority_rate']:.4f}, n={metrics['n_test']})")


def read_series_file(source: Path, id_column: str | None, order_column: str | None,
                     features: list[str]) -> tuple[list[str], list[np.ndarray], list[str] | None]:
    """Ids, raw series and labels (a ``.ts`` file's, when it has them) of a ``.ts`` file or a long table."""
    if str(source).lower().endswith(".ts"):
        from tasks.readers.tsfile import read_ts

        data = read_ts(source)
        ids = [f"{Path(source).name}:{number}" for number in range(1, len(data.series) + 1)]
        return ids, data.series, data.labels
    from tasks.readers.tables import read_one_table
    from tasks.readers.sequences import long_series

    if not id_column or not order_column:
        raise PipelineError(f"{source}: a long table needs --id-column and --order-column (which rows make a series, "
                            "in which order)")
    grouped = long_series(read_one_table(source), id_column, order_column, features, str(source))
    return [key for key, _ in grouped], [group[features].to_numpy(dtype=np.float32) for _, group in grouped], None


PREDICTED = "predicted_"  # the prefix of every column predict adds


def card_classes(card: dict[str, Any], model_dir: Path) -> list[str]:
    """The class names a classifier's card lists (a card without them is damaged)."""
    from tasks.core.common import damaged_model

    classes = card.get("classes")
    if not isinstance(classes, list) or len(classes) < 2:
        raise damaged_model(Path(model_dir) / "model.json", "a classifier's model card", "no list of classes")
    return classes


def predict_file(source: Path, output: Path, model_dir: Path, id_column: str | None = None,
                 order_column: str | None = None, **_: Any) -> int:
    """Score every series of a ``.ts`` file (or a long table); write each one's ``id``, its
    ``actual`` class (a ``.ts`` file's, when it has them), the ``predicted_label`` and each
    class's probability (``predicted_probability...``). The input is read before the model loads."""
    from tasks.core.artifacts import read_card

    card = read_card(model_dir)
    card_classes(card, model_dir)
    ids, raw, labels = read_series_file(source, id_column, order_column, card.get("feature_names") or [])
    predictor = Predictor(model_dir)
    probabilities = predictor.probabilities([np.asarray(item, np.float32) for item in raw])
    frame = pd.DataFrame({"id": ids})
    if labels is not None:
        frame["actual"] = labels
    predicted = classification.predictions(probabilities, predictor.threshold)
    frame[f"{PREDICTED}label"] = np.asarray(predictor.classes, dtype=object)[predicted]
    for column, values in classification.probability_columns(probabilities, predictor.classes).items():
        frame[PREDICTED + column] = values
    with atomic_path(output, kind="file") as tmp:
        frame.to_csv(tmp, index=False)
    return len(frame)
