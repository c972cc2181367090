"""Training machinery every kind shares: TensorFlow set-up, batches, resumable backups, progress.

- :func:`configure_tensorflow`: seeds, deterministic kernels on CPU, mixed precision on GPU;
  :func:`distribution`: ``MirroredStrategy`` over several GPUs.
- :func:`ragged_dataset`: length-bucketed, right-padded batches, so little compute goes to
  padding and masks stay right-padded (the cuDNN kernels need that).
- :func:`backup_callback`: Keras ``BackupAndRestore`` whose backups are committed atomically, so
  a run killed mid-training resumes from its last finished epoch (``checkpoints/<fingerprint>/``,
  keyed by params and data), and :func:`resumable_epoch`, which discards a backup it cannot read.
- :func:`progress_callback`: per-epoch metrics to DVCLive and to ``checkpoints/progress.json``
  (the Prefect flow shows "epoch n of N" from it while the stage runs).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from tasks.common import PipelineError

CHECKPOINT_ROOT = Path("checkpoints")
PROGRESS_FILE = CHECKPOINT_ROOT / "progress.json"
BACKUP_METADATA = "training_metadata.json"  # Keras BackupAndRestore's name for it
LENGTH_BUCKETS = 8
OPTIMIZERS = ("adam", "rmsprop")


def configure_tensorflow(params: dict[str, Any]) -> dict[str, Any]:
    """Seed everything, make ops deterministic, pick mixed precision; return device facts."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(params["seed"])
    gpus = tf.config.list_physical_devices("GPU")
    mixed = params.get("mixed_precision", "auto")
    mixed = bool(gpus) if mixed == "auto" else bool(mixed)
    if not gpus:
        # Deterministic kernels make CPU runs repeat bit for bit; on GPU they would cost cuDNN speed.
        tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    return {"gpus": len(gpus), "mixed_precision": mixed}


DISTRIBUTE = ("auto", "off")


@contextlib.contextmanager
def distribution(params: dict[str, Any], devices: list[str] | None = None) -> Iterator[int]:
    """Build and train inside ``tf.distribute.MirroredStrategy`` when several GPUs are visible
    (``train.distribute: auto``), or over ``devices`` when given; yields the number of replicas,
    by which the caller multiplies its batch size (each replica keeps the per-device batch).
    One device (or ``off``): no strategy, one replica. The saved model is the same file either way."""
    import tensorflow as tf

    mode = params.get("distribute", "auto")
    if mode not in DISTRIBUTE:
        raise PipelineError(f"params.yaml: train.distribute must be one of {list(DISTRIBUTE)}, not {mode!r}")
    gpus = tf.config.list_logical_devices("GPU")
    if devices is None and (mode == "off" or len(gpus) < 2):
        yield 1
        return
    strategy = tf.distribute.MirroredStrategy(devices=devices)
    print(f"train: MirroredStrategy over {strategy.num_replicas_in_sync} devices "
          f"({', '.join(devices or [gpu.name for gpu in gpus])})")
    with strategy.scope():
        yield strategy.num_replicas_in_sync


def optimizer(params: dict[str, Any], where: str):
    """The Keras optimizer ``params`` name, with learning rate and gradient clipping."""
    import keras

    if params["optimizer"] not in OPTIMIZERS:
        raise PipelineError(f"params.yaml: {where}.optimizer '{params['optimizer']}' is not one of {list(OPTIMIZERS)}")
    cls = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop}[params["optimizer"]]
    return cls(learning_rate=params["learning_rate"], clipnorm=params.get("clipnorm"))


def length_boundaries(lengths: np.ndarray, buckets: int = LENGTH_BUCKETS) -> list[int]:
    """Bucket edges at length quantiles, so each bucket holds a similar number of sequences."""
    edges = np.unique(np.quantile(lengths, np.linspace(0, 1, buckets + 1)[1:-1]).astype(int) + 1)
    return [int(edge) for edge in edges if edge > 1]


def ragged_dataset(items: list[np.ndarray], labels: np.ndarray, batch_size: int, seed: int, shuffle: bool,
                   pad_value: float = 0):
    """A tf.data pipeline of length-bucketed, right-padded batches of (sequence, label).

    ``items`` are int32 token ids (padded with 0) or float32 ``(steps, features)`` arrays
    (padded with ``pad_value``, NaN for series: it marks padding unambiguously).
    """
    import tensorflow as tf

    lengths = np.asarray([len(item) for item in items], dtype=np.int64)
    flat = tf.constant(np.concatenate(items) if items else np.zeros((0,)))
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    dataset = tf.data.Dataset.from_tensor_slices((starts, lengths, labels)).map(
        lambda start, length, label: (flat[start : start + length], label)
    )
    if shuffle:
        dataset = dataset.shuffle(len(items), seed=seed, reshuffle_each_iteration=True)
    boundaries = length_boundaries(lengths)
    dataset = dataset.bucket_by_sequence_length(
        lambda sequence, label: tf.shape(sequence)[0],
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        padding_values=(tf.constant(pad_value, dtype=flat.dtype), None),
    )
    return dataset.prefetch(tf.data.AUTOTUNE)


def padding_fraction(dataset, is_padding) -> float:
    """The share of padded steps over all batches of a dataset (``is_padding(batch)`` marks them)."""
    padded = real = 0
    for sequences, _ in dataset:
        mask = is_padding(sequences.numpy())
        padded += mask.size
        real += int(mask.size - mask.sum())
    return 1 - real / padded if padded else 0.0


def fingerprint(params: dict[str, Any], *directories: Path) -> str:
    """A digest of params and directories' files: resumed runs only resume the same training."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    for directory in directories:
        if directory.is_dir():
            for path in sorted(directory.rglob("*")):
                if path.is_file():
                    digest.update(str(path.relative_to(directory)).encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def checkpoint_dir(stage: str, params: dict[str, Any], *inputs: Path) -> Path:
    """``checkpoints/<stage>-<fingerprint of params and inputs>``, the stage's older backups removed
    (a backup of other params or data can never be resumed)."""
    current = CHECKPOINT_ROOT / f"{stage}-{fingerprint(params, *inputs)}"
    if CHECKPOINT_ROOT.exists():
        for stale in CHECKPOINT_ROOT.glob(f"{stage}-*"):
            if stale.is_dir() and stale != current:
                shutil.rmtree(stale, ignore_errors=True)
    return current


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


def backup_callback(checkpoint_dir: Path, delete_at_end: bool = True):
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

    return AtomicBackupAndRestore(str(checkpoint_dir), delete_checkpoint=delete_at_end)


def write_progress(progress_file: Path, record: dict[str, Any]) -> None:
    """Replace the progress file atomically: readers never see a half-written one."""
    progress_file.parent.mkdir(parents=True, exist_ok=True)
    pending = progress_file.with_name(f".{progress_file.name}.pending")
    pending.write_text(json.dumps(record))
    os.replace(pending, progress_file)


def log_epoch(live, progress_file: Path, epoch: int, epochs: int, resumed_from: int, logs: dict[str, float]) -> None:
    """One finished epoch to DVCLive (step = epoch index) and to the progress file."""
    live.step = epoch
    for name, value in logs.items():
        live.log_metric(name if name.startswith("val_") else f"train_{name}", value)
    live.next_step()
    write_progress(progress_file, {"epoch": epoch + 1, "epochs": epochs, "resumed_from": resumed_from, **logs})


def progress_callback(live, progress_file: Path, epochs: int, resumed_from: int = 0):
    """A Keras callback calling :func:`log_epoch` after each epoch (counted from the start of
    training, also after a resume)."""
    import keras

    class Progress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            log_epoch(live, progress_file, epoch, epochs, resumed_from,
                      {name: float(value) for name, value in (logs or {}).items()})

    return Progress()
