"""Stage 5, train: fit the RNN classifier on the tokenized train split and save the text model.

Reads ``data/tokenized/`` and ``params.yaml`` ``train``. Writes ``models/`` together:
``model.keras`` (cleaned text in, probability out; vocabulary inside) and ``model.json``
(decision threshold chosen on validation, cleaning options, sequence length, data hashes).
Per-epoch metrics go to ``dvclive/train`` (DVCLive); ``metrics/train.json`` sums up.

Batches are grouped by length (tf.data ``bucket_by_sequence_length``), so little compute
goes to padding. A run killed mid-training resumes from its last finished epoch
(Keras ``BackupAndRestore`` under ``checkpoints/<fingerprint>/``, keyed by params and data;
each backup is written under a new name and committed by an atomic rename of its metadata,
so a kill while saving leaves the previous epoch's backup, and a backup that cannot be read
is discarded with a warning instead of failing every later run).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.common import PipelineError, atomic_path, load_params, read_parquet, run_main, write_json
from tasks.tokenize import OUTPUT_DIR as TOKENIZED_DIR
from tasks.tokenize import read_vocabulary

MODEL_DIR = Path("models")
SUMMARY = Path("metrics/train.json")
LIVE_DIR = Path("dvclive/train")
CHECKPOINT_ROOT = Path("checkpoints")
PROGRESS_FILE = CHECKPOINT_ROOT / "progress.json"
BACKUP_METADATA = "training_metadata.json"  # Keras BackupAndRestore's name for it
LENGTH_BUCKETS = 8


def configure_tensorflow(params: dict[str, Any]) -> dict[str, Any]:
    """Seed everything, make ops deterministic, pick mixed precision; return device facts."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(params["seed"])
    gpus = tf.config.list_physical_devices("GPU")
    mixed = params["mixed_precision"]
    mixed = bool(gpus) if mixed == "auto" else bool(mixed)
    if not gpus:
        # Deterministic kernels make CPU runs repeat bit for bit; on GPU they would cost cuDNN speed.
        tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    return {"gpus": len(gpus), "mixed_precision": mixed}


def length_boundaries(lengths: np.ndarray, buckets: int = LENGTH_BUCKETS) -> list[int]:
    """Bucket edges at length quantiles, so each bucket holds a similar number of texts."""
    edges = np.unique(np.quantile(lengths, np.linspace(0, 1, buckets + 1)[1:-1]).astype(int) + 1)
    return [int(edge) for edge in edges if edge > 1]


def make_dataset(table: pd.DataFrame, batch_size: int, seed: int, shuffle: bool):
    """A tf.data pipeline of length-bucketed, right-padded batches of (ids, label)."""
    import tensorflow as tf

    lengths = table["ids"].map(len).to_numpy()
    # An empty text becomes one OOV step, as in tasks.predict: cuDNN rejects all-padding sequences.
    lengths = np.maximum(lengths, 1)
    flat = np.concatenate([ids if len(ids) else np.ones(1, np.int32) for ids in table["ids"]]).astype(np.int32)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    labels = table["label"].to_numpy().astype(np.float32)
    flat_ids = tf.constant(flat)
    dataset = tf.data.Dataset.from_tensor_slices((starts, lengths.astype(np.int64), labels)).map(
        lambda start, length, label: (flat_ids[start : start + length], label)
    )
    if shuffle:
        dataset = dataset.shuffle(len(table), seed=seed, reshuffle_each_iteration=True)
    boundaries = length_boundaries(lengths)
    dataset = dataset.bucket_by_sequence_length(
        lambda ids, label: tf.shape(ids)[0],
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
    )
    return dataset.prefetch(tf.data.AUTOTUNE)


def padding_fraction(dataset) -> float:
    """The share of padded positions over all batches of a dataset."""
    padded = real = 0
    for ids, _ in dataset:
        padded += int(np.prod(ids.shape))
        real += int(np.count_nonzero(ids.numpy()))
    return 1 - real / padded if padded else 0.0


def class_weights(labels: np.ndarray, mode: str) -> dict[int, float] | None:
    """'balanced': weights inversely proportional to class frequency; 'none': no weights."""
    if mode == "none":
        return None
    if mode != "balanced":
        raise PipelineError(f"params.yaml: train.class_weight must be 'balanced' or 'none', not {mode!r}")
    counts = np.bincount(labels.astype(int), minlength=2)
    return {label: float(len(labels) / (2 * count)) for label, count in enumerate(counts) if count}


def best_threshold(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """The decision threshold with the best macro-F1 on validation (ties: closest to 0.5)."""
    from sklearn.metrics import f1_score

    candidates = np.round(np.arange(0.05, 0.951, 0.01), 2)
    scores = [f1_score(labels, probabilities >= t, average="macro", zero_division=0) for t in candidates]
    best = max(scores)
    return float(min((t for t, s in zip(candidates, scores) if s == best), key=lambda t: abs(t - 0.5)))


def fingerprint(params: dict[str, Any], directory: Path) -> str:
    """A digest of params and a directory's files: resumed runs only resume the same training."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    for path in sorted(directory.iterdir()):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def resumable_epoch(checkpoint_dir: Path) -> int:
    """The epoch a backup in ``checkpoint_dir`` resumes training from; 0 when there is none.

    A backup that cannot be used (metadata unreadable, weights missing or not HDF5, e.g.
    left by a kill inside an older, non-atomic save) is removed with a warning, so training
    starts over instead of failing on every later run.
    """
    if not checkpoint_dir.exists():
        return 0
    try:
        metadata = json.loads((checkpoint_dir / BACKUP_METADATA).read_text())
        epoch = int(metadata["epoch"])
        weights = checkpoint_dir / metadata.get("weights", "latest.weights.h5")
        import h5py

        with h5py.File(weights, "r"):
            pass
        return epoch
    except Exception as error:  # any unreadable backup means the same thing: start over
        print(f"train: warning: discarding the unusable backup in {checkpoint_dir} ({type(error).__name__}: {error}); "
              "training starts from epoch 0", file=sys.stderr)
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
        return 0


def backup_callback(checkpoint_dir: Path):
    """Keras ``BackupAndRestore`` whose backups are never half-written.

    Keras overwrites ``latest.weights.h5`` and then its metadata in place: a kill between
    or during those writes leaves a corrupt or inconsistent backup. Here each epoch's
    weights go to a new file; the metadata, naming that file, is then replaced atomically
    (the commit point); older weight files are removed afterwards.
    """
    import keras

    class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
        def on_train_begin(self, logs=None):
            metadata = Path(self._training_metadata_path)
            if metadata.exists():  # point Keras at the weights the committed metadata names
                name = json.loads(metadata.read_text()).get("weights")
                if name:
                    self._weights_path = str(Path(self.backup_dir) / name)
            super().on_train_begin(logs)

        def _save_model(self):
            directory = Path(self.backup_dir)
            directory.mkdir(parents=True, exist_ok=True)
            name = f"epoch-{self._current_epoch:04d}.weights.h5"
            self.model.save_weights(str(directory / name), overwrite=True)
            pending = directory / f".{BACKUP_METADATA}.pending"
            pending.write_text(json.dumps({"epoch": self._current_epoch, "batch": self._last_batch_seen, "weights": name}))
            os.replace(pending, self._training_metadata_path)
            self._weights_path = str(directory / name)
            for old in directory.glob("*.weights.h5"):
                if old.name != name:
                    old.unlink(missing_ok=True)

    return AtomicBackupAndRestore(str(checkpoint_dir), delete_checkpoint=True)


def progress_callback(live, progress_file: Path, epochs: int, resumed_from: int = 0):
    """A Keras callback that logs each epoch to DVCLive and to a small progress file.

    dvc.yaml declares the DVCLive plots; the progress file lets an orchestrator show
    "epoch n of N" while the stage is still running. Epochs are counted from the start of
    training, also after a resume (DVCLive's step is the epoch index).
    """
    import keras

    class Progress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs = {name: float(value) for name, value in (logs or {}).items()}
            live.step = epoch
            for name, value in logs.items():
                live.log_metric(name if name.startswith("val_") else f"train_{name}", value)
            live.next_step()
            progress_file.parent.mkdir(parents=True, exist_ok=True)
            pending = progress_file.with_name(f".{progress_file.name}.pending")
            pending.write_text(json.dumps({"epoch": epoch + 1, "epochs": epochs, "resumed_from": resumed_from, **logs}))
            os.replace(pending, progress_file)  # readers never see a half-written file

    return Progress()


def train(params: dict[str, Any], tokenized_dir: Path, model_dir: Path, live_dir: Path, checkpoint_dir: Path) -> dict[str, Any]:
    """Fit, pick the threshold, save the text model into ``model_dir``; return the summary."""
    device = configure_tensorflow(params)
    import keras
    from dvclive import Live

    from tasks.model import build_classifier, build_text_model

    vocabulary, meta = read_vocabulary(tokenized_dir)
    train_table = read_parquet(tokenized_dir / "train.parquet", "tokenize")
    validation_table = read_parquet(tokenized_dir / "validation.parquet", "tokenize")
    train_data = make_dataset(train_table, params["batch_size"], params["seed"], shuffle=True)
    validation_data = make_dataset(validation_table, params["batch_size"], params["seed"], shuffle=False)

    classifier = build_classifier(params, meta["vocab_size"])
    optimizer_class = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop}[params["optimizer"]]
    classifier.compile(
        optimizer=optimizer_class(learning_rate=params["learning_rate"], clipnorm=params["clipnorm"]),
        loss="binary_crossentropy",
        metrics=["accuracy", keras.metrics.AUC(name="auc")],
    )
    resumed_from = resumable_epoch(checkpoint_dir)
    if resumed_from:
        print(f"train: resuming from the backup of epoch {resumed_from} in {checkpoint_dir}")
    started = time.perf_counter()
    with Live(str(live_dir), dvcyaml=False, save_dvc_exp=False, report=None) as live:
        history = classifier.fit(
            train_data,
            validation_data=validation_data,
            epochs=params["epochs"],
            class_weight=class_weights(train_table["label"].to_numpy(), params["class_weight"]),
            callbacks=[
                backup_callback(checkpoint_dir),
                keras.callbacks.EarlyStopping(
                    monitor="val_auc", mode="max", patience=params["early_stopping_patience"], restore_best_weights=True
                ),
                progress_callback(live, PROGRESS_FILE, params["epochs"], resumed_from),
            ],
            verbose=2,
        )
    seconds = time.perf_counter() - started
    epochs_this_run = len(history.history.get("loss", []))  # a resumed run only runs the remaining epochs

    probabilities = np.concatenate([classifier.predict_on_batch(ids).ravel() for ids, _ in validation_data])
    labels = np.concatenate([label.numpy() for _, label in validation_data])
    threshold = best_threshold(labels, probabilities)
    if history.history.get("val_auc"):
        best_val_auc = float(max(history.history["val_auc"]))
    else:  # resumed from a backup of the last epoch: nothing left to fit
        from sklearn.metrics import roc_auc_score

        best_val_auc = float(roc_auc_score(labels, probabilities))

    text_model = build_text_model(classifier, vocabulary, meta["max_len"])
    model_dir.mkdir(parents=True)
    text_model.save(model_dir / "model.keras")
    card = {
        "threshold": threshold,
        "max_len": meta["max_len"],
        "vocab_size": meta["vocab_size"],
        "clean": meta["clean"],
        "params": params,
        "data_fingerprint": fingerprint({}, tokenized_dir),
    }
    (model_dir / "model.json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    return {
        **device,
        "epochs_run": resumed_from + epochs_this_run,
        "resumed_from_epoch": resumed_from,
        "best_val_auc": round(best_val_auc, 4),
        "threshold": threshold,
        "train_seconds": round(seconds, 2),
        "train_samples_per_s": round(len(train_table) * epochs_this_run / seconds, 1),
        "padding_fraction": round(padding_fraction(train_data), 4),
        "padding_fraction_fixed_length": meta["padding_fraction_fixed_length"],
        "parameters": int(classifier.count_params()),
    }


def main() -> None:
    """Run the train stage with ``params.yaml`` ``train``."""
    params = load_params("train")
    checkpoint_dir = CHECKPOINT_ROOT / fingerprint(params, TOKENIZED_DIR)
    if CHECKPOINT_ROOT.exists():  # backups of other params/data can never be resumed
        for stale in CHECKPOINT_ROOT.iterdir():
            if stale.is_dir() and stale != checkpoint_dir:
                shutil.rmtree(stale, ignore_errors=True)
    with atomic_path(MODEL_DIR) as tmp_model, atomic_path(LIVE_DIR) as tmp_live:
        summary = train(params, TOKENIZED_DIR, tmp_model, tmp_live, checkpoint_dir)
    write_json(SUMMARY, summary)
    print(f"train: {summary['epochs_run']} epochs, val AUC {summary['best_val_auc']} -> {MODEL_DIR}")


if __name__ == "__main__":
    run_main(main)
