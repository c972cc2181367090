"""Text classification: a document in, one of K classes out (two classes: a tuned threshold).

Input: text (NLTK cleaning, :mod:`tasks.inputs.textclean`; the vocabulary, :mod:`tasks.inputs.vocabulary`).
Target: classes (:mod:`tasks.targets.classification`). The saved model takes cleaned text (the
vocabulary is inside, in a TextVectorization layer) and returns class probabilities.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.targets import classification
from tasks.inputs import vocabulary
from tasks.core.splits import Cleaned, require_classes, split_frame
from tasks.core.common import PipelineError, atomic_path, read_parquet
from tasks.inputs.textclean import CleanOptions, clean_column

SUITE = "text_classification"


# --------------------------------------------------------------------------- ingest and validate


def adopt(frame: pd.DataFrame, metadata: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
    raise PipelineError(f"ingest.kind text_classification: the {metadata.get('dataset')} profile's data "
                        f"({metadata.get('kind')}) has no text classes to learn")


def ingest_summary(frame: pd.DataFrame, metadata: dict[str, Any]) -> dict[str, Any]:
    classes = metadata["classes"]
    return {
        "rows_without_text": int(frame["text"].isna().sum()),
        "classes": classes,
        "rating_scale": metadata.get("rating_scale"),
        "labels": classification.label_counts(frame, classes),
    }


def checked_table(frame: pd.DataFrame, metadata: dict[str, Any]) -> pd.DataFrame:
    return frame


def write_eda(frame: pd.DataFrame, metadata: dict[str, Any], folder: Path) -> list[Path]:
    from tasks.checks.eda import write_eda_plots

    return write_eda_plots(frame, folder, metadata["classes"])


# --------------------------------------------------------------------------- clean and tokenize


def deduplicate(frame: pd.DataFrame) -> tuple[pd.DataFrame, int, int]:
    """Drop exact duplicate cleaned texts; texts seen with different labels are dropped entirely."""
    labels_per_text = frame.groupby("text")["label"].nunique()
    conflicting = labels_per_text.index[labels_per_text > 1]
    unambiguous = frame[~frame["text"].isin(conflicting)]
    deduplicated = unambiguous.drop_duplicates("text", keep="first")
    return deduplicated, len(unambiguous) - len(deduplicated), len(frame) - len(unambiguous)


def clean(frame: pd.DataFrame, metadata: dict[str, Any], params: dict[str, Any]) -> Cleaned:
    """NLTK cleaning, de-duplication on the cleaned text (no text shared between splits), the split."""
    options = CleanOptions.from_params(params)
    cleaned = frame.rename(columns={"text": "raw_text"})
    cleaned.insert(1, "text", clean_column(frame["text"].tolist(), options, params.get("workers") or 0))
    cleaned["n_tokens"] = cleaned["text"].str.count(" ") + (cleaned["text"] != "")
    empty = cleaned["n_tokens"] == 0
    cleaned, duplicates, conflicting = deduplicate(cleaned[~empty])
    splits = split_frame(cleaned, params)
    require_classes(splits)
    classes = metadata["classes"]
    summary = {
        "rows_in": len(frame),
        "empty_after_cleaning": int(empty.sum()),
        "duplicates_removed": duplicates,
        "conflicting_labels_removed": conflicting,
        "rows": {name: len(part) for name, part in splits.items()},
        "class_shares": {name: {classes[int(label)]: round(float(share), 4)
                                for label, share in part["label"].value_counts(normalize=True).sort_index().items()}
                         for name, part in splits.items()},
        "mean_tokens": round(float(cleaned["n_tokens"].mean()), 1),
    }
    return Cleaned(splits, summary, {"clean": asdict(options)})


def featurize(splits: dict[str, pd.DataFrame], clean_meta: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The vocabulary fitted on train, and train and validation as token ids."""
    vocabulary.check_size(params["vocab_size"], params["min_count"], "tokenize.text_classification")
    train = splits["train"]
    words = vocabulary.fit_vocabulary(train["text"], params["vocab_size"], params["min_count"])
    max_len = vocabulary.sequence_length(train["n_tokens"], params["max_len"], params["length_percentile"])
    tables = {
        name: pd.DataFrame({"id": part["id"], "label": part["label"].astype("int16"),
                            "ids": vocabulary.encode(part["text"], words, max_len)})
        for name, part in splits.items()
    }
    train_lengths = np.minimum(train["n_tokens"].to_numpy(), max_len)
    padded = len(train_lengths) * max_len
    meta = {
        **{key: clean_meta[key] for key in ("kind", "classes", "clean", "dataset") if key in clean_meta},
        "oov_token": vocabulary.OOV_TOKEN,
        "vocab_size": len(words) + vocabulary.RESERVED,
        "max_len": max_len,
        "train_rows": len(train),
        "train_oov_rate": round(float(np.mean([(ids == 1).mean() if len(ids) else 0 for ids in tables["train"]["ids"]])), 4),
        "padding_fraction_fixed_length": round(float(1 - train_lengths.sum() / padded), 4) if padded else 0.0,
    }
    return {vocabulary.VOCAB_FILE: vocabulary.vocabulary_text(words), vocabulary.META_FILE: meta,
            **{f"{name}.parquet": table for name, table in tables.items()}}


# --------------------------------------------------------------------------- baseline

BASELINE_FILE = "tfidf_logistic.npz"


def baseline(tokenized_dir: Path, clean_dir: Path, params: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """TF-IDF of word n-grams (of the same cleaned text) with logistic regression (:mod:`tasks.baselines.tfidf`).

    C is chosen on the validation split (log-loss), a two-class threshold too (macro-F1). Saves the
    model and its validation probabilities (an ensemble with the RNN is weighted on them).
    """
    from tasks.baselines.tfidf import TfidfLogistic

    meta = json.loads((tokenized_dir / vocabulary.META_FILE).read_text())
    classes = meta["classes"]
    splits = {name: read_parquet(clean_dir / f"{name}.parquet", "clean") for name in ("train", "validation", "test")}
    labels = {name: part["label"].to_numpy().astype(int) for name, part in splits.items()}
    model = TfidfLogistic.fit(splits["train"]["text"], labels["train"], splits["validation"]["text"], labels["validation"],
                              classification.log_loss_scorer(classes), params["ngram_range"], params["min_df"], params["max_features"], params["C"],
                              params.get("weighting", "tfidf"))
    model.save(out_dir / BASELINE_FILE)
    probabilities = {name: model.probabilities(splits[name]["text"]) for name in ("validation", "test")}
    return classification.baseline_report(model.description, labels, probabilities, classes, out_dir)


def baseline_headline(metrics: dict[str, Any]) -> str:
    return f"accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}, ROC-AUC {metrics.get('roc_auc')}"


# --------------------------------------------------------------------------- train

def _sequences(table: pd.DataFrame) -> list[np.ndarray]:
    # An empty text becomes one OOV step, as at inference: cuDNN rejects all-padding sequences.
    return [ids if len(ids) else np.ones(1, np.int32) for ids in table["ids"]]


def build(params: dict[str, Any], meta: dict[str, Any], words: list[str], pretrained_dir: Path):
    """The classifier over token ids and its training phases: from scratch, or (``init: pretrained``)
    with the pretrain stage's embedding and recurrent layers, head first, then all at a lower rate."""
    from tasks.networks.model import build_text_classifier

    classes = meta["classes"]
    if params.get("init", "scratch") == "scratch":
        return build_text_classifier(params, meta["vocab_size"], len(classes)), None, None
    if params["init"] != "pretrained":
        raise PipelineError(f"params.yaml: train.text_classification.init must be scratch or pretrained, not {params['init']!r}")
    from tasks.networks import lm
    from tasks.networks.model import initialise_from_language_model
    from tasks.core.artifacts import read_pretrained_card
    from tasks.inputs.vocabulary import vocabulary_digest

    card = read_pretrained_card(pretrained_dir)
    if not card.get("pretrained"):
        raise PipelineError("train.text_classification.init is pretrained but the pretrain stage trained nothing: "
                            "set pretrain.source (e.g. [train] or an unlabelled corpus)")
    if card["vocabulary"] != vocabulary_digest(words):
        raise PipelineError(f"{pretrained_dir}: the pretrained model has another vocabulary than data/tokenized; "
                            "run the pipeline again (dvc repro)")
    architecture = card["architecture"]
    shaped = {**params, "model": architecture["model"], "layers": architecture["layers"], "units": architecture["units"],
              "embedding_dim": architecture["embedding_dim"], "bidirectional": False}
    classifier = build_text_classifier(shaped, meta["vocab_size"], len(classes))
    encoder = initialise_from_language_model(classifier, lm.load(pretrained_dir, card))
    phases = [classification.Phase(params["freeze_epochs"], params["learning_rate"], tuple(encoder)),
              classification.Phase(params["epochs"], params["finetune_learning_rate"])]
    return classifier, [phase for phase in phases if phase.until > 0], {"pretrained": architecture}


WIDTH_STEP = 32  # prediction batches are padded to a multiple of this (masked: padding never changes an answer)


def in_order(classifier, sequences: list[np.ndarray], binary: bool, batch_size: int = 256) -> np.ndarray:
    """Probabilities for token-id sequences in their given order (batches of similar length, reordered back)."""
    order = np.argsort([len(sequence) for sequence in sequences], kind="stable")
    outputs = np.zeros((len(sequences),) if binary else (len(sequences), classifier.output_shape[-1]), np.float32)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        width = -(-max(len(sequences[row]) for row in rows) // WIDTH_STEP) * WIDTH_STEP  # few shapes, few retraces
        batch = np.zeros((len(rows), width), np.int32)
        for position, row in enumerate(rows):
            batch[position, : len(sequences[row])] = sequences[row]
        output = np.asarray(classifier.predict_on_batch(batch))
        outputs[rows] = output.ravel() if binary else output
    return outputs


def train(params: dict[str, Any], tokenized_dir: Path, model_dir: Path, live_dir: Path, checkpoint_dir: Path,
          devices: list[str] | None = None) -> dict[str, Any]:
    """Fit the classifier over token ids, decide its threshold (and ensemble weight), save the text-in model.

    ``devices``: train over these devices with MirroredStrategy (tests); by default several GPUs are used when visible.
    """
    from tasks.core.artifacts import BASELINE_DIR
    from tasks.networks.model import build_text_model
    from tasks.core.artifacts import PRETRAINED_DIR, write_card
    from tasks.networks.training import configure_tensorflow, distribution, padding_fraction, ragged_dataset

    device = configure_tensorflow(params)
    words, meta = vocabulary.read_vocabulary(tokenized_dir)
    classes = meta["classes"]
    binary = classification.is_binary(classes)
    tables = {name: read_parquet(tokenized_dir / f"{name}.parquet", "tokenize") for name in ("train", "validation")}
    with distribution(params, devices) as replicas:
        inputs = {name: (_sequences(table), classification.label_array(table, classes)) for name, table in tables.items()}
        data = {name: ragged_dataset(*inputs[name], params["batch_size"] * replicas, params["seed"], shuffle=name == "train")
                for name in tables}

        def train_epoch(epoch: int):  # epoch k's order from (seed, k) alone: a resumed run reads the same batches
            return ragged_dataset(*inputs["train"], params["batch_size"] * replicas, params["seed"], shuffle=True, epoch=epoch)

        classifier, phases, init = build(params, meta, words, PRETRAINED_DIR)
        summary = classification.fit_classifier(classifier, train_epoch, data["validation"],
                                                       classification.label_array(tables["train"], classes), classes, params, live_dir,
                                                       checkpoint_dir, "train.text_classification", phases)
    labels = tables["validation"]["label"].to_numpy().astype(int)
    rnn = in_order(classifier, _sequences(tables["validation"]), binary)
    combined, ensemble = classification.ensemble(params, labels, rnn, BASELINE_DIR, BASELINE_FILE, model_dir,
                                                 "train.text_classification")
    decision, rnn_threshold = classification.decide_served(labels, combined, rnn, ensemble is not None, classes, params,
                                                           "train.text_classification")
    build_text_model(classifier, words, meta["max_len"]).save(model_dir / "model.keras")
    write_card(model_dir, {
        "kind": meta["kind"],
        "classes": classes,
        "threshold": decision["threshold"],
        "rnn_threshold": rnn_threshold,
        "ensemble": ensemble,
        "init": init,
        "max_len": meta["max_len"],
        "vocab_size": meta["vocab_size"],
        "clean": meta["clean"],
        "params": params,
    })
    return {
        **device,
        "replicas": replicas,
        **summary,
        **decision,
        "ensemble_rnn_weight": ensemble["rnn_weight"] if ensemble else None,
        "padding_fraction": round(padding_fraction(data["train"], lambda ids: ids == 0), 4),
        "padding_fraction_fixed_length": meta["padding_fraction_fixed_length"],
    }


# --------------------------------------------------------------------------- inference and evaluate


class Predictor(classification.Served):
    """The trained text model with its cleaning, threshold and (optionally) the baseline it is
    averaged with: text in, class probabilities out."""

    def __init__(self, model_dir: Path) -> None:
        from tasks.core.common import check_model_archive, damaged_model, load_model_part
        from tasks.core.artifacts import read_card

        self.card = read_card(model_dir)
        self.classes = card_classes(self.card, model_dir)
        try:
            self.options = CleanOptions.from_params(self.card["clean"])
            self.threshold = self.card["threshold"]
            self.ensemble = self.card.get("ensemble")
            baseline = self.ensemble and model_dir / self.ensemble["baseline"]
        except (KeyError, TypeError, ValueError) as error:
            raise damaged_model(Path(model_dir) / "model.json", "a text classifier's model card",
                                f"missing {error}" if isinstance(error, KeyError) else error) from error
        check_model_archive(model_dir / "model.keras", "a Keras model file")  # before TensorFlow loads
        from tasks.networks.model import load_model

        self.model = load_model(str(model_dir / "model.keras"))
        if self.ensemble:
            from tasks.baselines.tfidf import TfidfLogistic

            self.baseline = load_model_part(baseline, "the baseline's arrays (.npz)", TfidfLogistic.load)

    def rnn_probabilities(self, cleaned: list[str], batch_size: int = 256) -> np.ndarray:
        """The recurrent network's own probabilities of cleaned texts (two classes: the positive one)."""
        import tensorflow as tf

        width = 1 if classification.is_binary(self.classes) else len(self.classes)
        if not cleaned:
            return np.zeros((0,) if width == 1 else (0, width), dtype=np.float32)
        # A text that cleans to nothing becomes one OOV step: cuDNN rejects all-padding sequences.
        cleaned = [text or vocabulary.OOV_TOKEN for text in cleaned]
        dataset = tf.data.Dataset.from_tensor_slices(tf.constant(cleaned, dtype=tf.string)).batch(batch_size)
        # predict_on_batch runs one traced graph (texts in, a fixed max_len inside); an eager call
        # would step the recurrent loop in Python.
        outputs = np.concatenate([np.asarray(self.model.predict_on_batch(batch)) for batch in dataset])
        return outputs.ravel() if width == 1 else outputs

    def probabilities(self, texts: list[str]) -> np.ndarray:
        """Class probabilities for raw texts."""
        from tasks.inputs.textclean import clean_texts

        return self.probabilities_of_clean(clean_texts(texts, self.options))


def evaluate(model_dir: Path, test: pd.DataFrame, params: dict[str, Any], baseline: dict[str, Any] | None,
             plots_dir: Path, report_dir: Path) -> dict[str, Any]:
    """Test metrics, plots (confusion, ROC, PR), per-slice metrics and the worst errors."""
    from tasks.core.common import write_json

    predictor = Predictor(model_dir)
    texts = test["text"].tolist()
    rnn = predictor.rnn_probabilities(texts)
    probabilities = predictor.probabilities_of_clean(texts, rnn)
    labels = test["label"].to_numpy().astype(int)
    classes, threshold = predictor.classes, predictor.threshold
    metrics = classification.score_test_split(predictor, labels, rnn, probabilities, plots_dir)
    write_json(report_dir / "slices.json", classification.slice_metrics(
        test, probabilities, threshold, params["slice_columns"], "n_tokens", params["length_buckets"]))
    classification.worst_examples(test, probabilities, classes, threshold, params["worst_examples"],
                                  ["raw_text", "text"]).to_csv(report_dir / "worst_examples.csv", index=False)
    if baseline:
        metrics["baseline"] = baseline.get("test", baseline)
    return metrics


def headline(metrics: dict[str, Any]) -> str:
    auc = metrics.get("roc_auc")
    return (f"accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}, "
            f"minority F1 {metrics['minority_f1']:.4f}, ROC-AUC {auc if auc is None else round(auc, 4)} "
            f"(majority rate {metrics['majority_rate']:.4f}, n={metrics['n_test']})")


PREDICTED = "predicted_"  # the prefix of every column predict adds: never an input column's name


def card_classes(card: dict[str, Any], model_dir: Path) -> list[str]:
    """The class names a classifier's card lists (a card without them is damaged)."""
    from tasks.core.common import damaged_model

    classes = card.get("classes")
    if not isinstance(classes, list) or len(classes) < 2:
        raise damaged_model(Path(model_dir) / "model.json", "a classifier's model card", "no list of classes")
    return classes


def prediction_columns(classes: list[str]) -> list[str]:
    """The columns predict adds: ``predicted_label``, then ``predicted_probability`` (two
    classes) or ``predicted_probability_<class>`` per class."""
    empty = np.zeros((0,) if classification.is_binary(classes) else (0, len(classes)))
    return [f"{PREDICTED}label", *(PREDICTED + name for name in classification.probability_columns(empty, classes))]


def refuse_taken_columns(columns, classes: list[str], source: Path) -> None:
    """An input that already has a column predict would write is refused, naming the column."""
    taken = [name for name in prediction_columns(classes) if name in {str(column) for column in columns}]
    if taken:
        raise PipelineError(f"{source}: already has a column '{taken[0]}', a name predict writes its answers under; "
                            "rename that column (input columns are never overwritten)")


def predict_file(source: Path, output: Path, model_dir: Path, text_column: str = "text", **_: Any) -> int:
    """Score every row of a table; write it, every input column as it was, with the predicted
    label and the class probabilities in ``predicted_*`` columns. The input and the model card
    are checked before the model loads."""
    from tasks.readers.tables import read_one_table
    from tasks.core.artifacts import read_card

    classes = card_classes(read_card(model_dir), model_dir)
    frame = read_one_table(source)
    if text_column not in frame.columns:
        raise PipelineError(f"{source}: no column '{text_column}'; found: {', '.join(map(str, frame.columns))}")
    refuse_taken_columns(frame.columns, classes, source)
    predictor = Predictor(model_dir)
    probabilities = predictor.probabilities(frame[text_column].fillna("").astype(str).tolist())
    predicted = classification.predictions(probabilities, predictor.threshold)
    added = {f"{PREDICTED}label": predicted if classification.is_binary(predictor.classes)
             else np.asarray(predictor.classes, dtype=object)[predicted]}
    for column, values in classification.probability_columns(probabilities, predictor.classes).items():
        added[PREDICTED + column] = values
    frame = frame.assign(**added)
    with atomic_path(output, kind="file") as tmp:
        frame.to_csv(tmp, index=False)
    return len(frame)
