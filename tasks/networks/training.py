"""Training machinery every kind shares: TensorFlow set-up, batches, resumable backups, progress.

- :func:`configure_tensorflow`: seeds, deterministic kernels on CPU, mixed precision on GPU;
  :func:`distribution`: ``MirroredStrategy`` over several GPUs.
- :func:`ragged_dataset`: length-bucketed, right-padded batches, so little compute goes to
  padding and masks stay right-padded (the cuDNN kernels need that); a shuffled epoch's order
  comes from (seed, epoch) alone.
- :func:`save_backup` / :func:`load_backup`: a backup committed atomically after each epoch
  (``checkpoints/<stage>-<fingerprint>/``, keyed by params and data) holding all that makes a
  resumed training the same run: the weights, the random generators' state (dropout), the
  optimizer's state and what the caller adds (early stopping, the phase, the epochs' logs);
  :func:`resumable_epoch` says where a backup resumes and discards one it cannot read.
- :func:`log_epoch`: per-epoch metrics to DVCLive and to ``checkpoints/progress.json``
  (the Prefect flow shows "epoch n of N" from it while the stage runs); a resumed training
  logs the epochs its backup holds again first, so the curves keep every epoch.
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

from tasks.core.artifacts import CHECKPOINT_ROOT
from tasks.core.common import PipelineError

BACKUP_METADATA = "training_metadata.json"  # the commit point of a backup: it names the files
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
                   pad_value: float = 0, epoch: int = 0):
    """A tf.data pipeline of length-bucketed, right-padded batches of (sequence, label).

    ``items`` are int32 token ids (padded with 0) or float32 ``(steps, features)`` arrays
    (padded with ``pad_value``, NaN for series: it marks padding unambiguously).

    ``shuffle``: the examples come in a permutation drawn from ``(seed, epoch)`` alone, so
    epoch k reads the same batches whether or not earlier epochs ran in this process (a
    resumed training is the run it resumes). Iterating the dataset again repeats that order:
    training builds one dataset per epoch.
    """
    import tensorflow as tf

    lengths = np.asarray([len(item) for item in items], dtype=np.int64)
    flat = tf.constant(np.concatenate(items) if items else np.zeros((0,)))
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    order = epoch_order(len(items), seed, epoch, shuffle)
    dataset = tf.data.Dataset.from_tensor_slices((starts[order], lengths[order], np.asarray(labels)[order])).map(
        lambda start, length, label: (flat[start : start + length], label)
    )
    boundaries = length_boundaries(lengths)
    dataset = dataset.bucket_by_sequence_length(
        lambda sequence, label: tf.shape(sequence)[0],
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        padding_values=(tf.constant(pad_value, dtype=flat.dtype), None),
    )
    return dataset.prefetch(tf.data.AUTOTUNE)


def epoch_order(count: int, seed: int, epoch: int, shuffle: bool) -> np.ndarray:
    """The order :func:`ragged_dataset` reads ``count`` examples in: a permutation drawn from
    ``(seed, epoch)`` alone, or as given."""
    return np.random.default_rng([seed, epoch]).permutation(count) if shuffle else np.arange(count)


def padding_fraction(lengths: np.ndarray, batch_size: int, seed: int, shuffle: bool = True, epoch: int = 0) -> float:
    """The share of padded steps in the batches :func:`ragged_dataset` makes of sequences of
    these ``lengths``, worked out from the lengths alone (no pass over the data): as
    ``bucket_by_sequence_length`` does, each length goes to the bucket between its boundaries,
    a bucket is emitted as a batch once it holds ``batch_size``, the partial ones at the end,
    and a batch is padded to its longest sequence."""
    lengths = np.asarray(lengths, np.int64)
    buckets = np.searchsorted(length_boundaries(lengths), lengths, side="right")
    waiting: dict[int, list[int]] = {}
    padded = 0
    for row in epoch_order(len(lengths), seed, epoch, shuffle):
        batch = waiting.setdefault(int(buckets[row]), [])
        batch.append(int(lengths[row]))
        if len(batch) == batch_size:
            padded += batch_size * max(batch)
            batch.clear()
    padded += sum(len(batch) * max(batch) for batch in waiting.values() if batch)
    return float(1 - lengths.sum() / padded) if padded else 0.0


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


def _discard(checkpoint_dir: Path, error: BaseException) -> None:
    print(f"train: warning: discarding the unusable backup in {checkpoint_dir} ({type(error).__name__}: {error}); "
          "training starts from epoch 0", file=sys.stderr)
    shutil.rmtree(checkpoint_dir, ignore_errors=True)


def resumable_epoch(checkpoint_dir: Path) -> int:
    """The epoch a backup in ``checkpoint_dir`` resumes training from; 0 when there is none.

    A backup that cannot be used (metadata unreadable, weights missing or not HDF5, state
    missing, e.g. left by a kill inside an older, non-atomic save) is removed with a warning,
    so training starts over instead of failing on every later run.
    """
    if not checkpoint_dir.exists():
        return 0
    try:
        metadata = json.loads((checkpoint_dir / BACKUP_METADATA).read_text())
        epoch = int(metadata["epoch"])
        import h5py

        with h5py.File(checkpoint_dir / metadata["weights"], "r"):
            pass
        with np.load(checkpoint_dir / metadata["state"], allow_pickle=False) as stored:
            stored.files  # noqa: B018  (reads the archive's index)
        return epoch
    except Exception as error:  # any unreadable backup means the same thing: start over
        _discard(checkpoint_dir, error)
        return 0


def random_state(model) -> list:
    """The model's random generators' state: the ``SeedGenerator`` counters of its dropout (and
    any other random) layers. Keras keeps them in ``model.variables`` but not in its weights,
    so ``save_weights`` leaves them out: a model rebuilt from a backup would draw the dropout
    masks of epoch 1 again."""
    weights = {id(variable) for variable in model.weights}
    return [variable for variable in model.variables if id(variable) not in weights]


def _value(variable) -> np.ndarray:
    return variable.numpy() if hasattr(variable, "numpy") else np.asarray(variable)


def _assign(variables: list, values: list[np.ndarray], what: str) -> None:
    """Assign ``values`` to ``variables``, all checked first (nothing changes on a mismatch)."""
    if len(values) != len(variables):
        raise ValueError(f"the backup holds {len(values)} {what} values, the model has {len(variables)}")
    for variable, value in zip(variables, values):
        if tuple(variable.shape) != value.shape:
            raise ValueError(f"{what} {variable.path}: shape {tuple(variable.shape)}, the backup's {value.shape}")
    for variable, value in zip(variables, values):
        variable.assign(value)


def save_backup(checkpoint_dir: Path, model, record: dict[str, Any], optimizer=None,
                arrays: dict[str, list] | None = None) -> None:
    """Commit the state at the end of epoch ``record["epoch"]`` (the number of epochs done).

    The weights (HDF5) and the rest (.npz: the random generators' state, the ``optimizer``'s
    variables, the caller's ``arrays``, e.g. the best weights so far) go to new files; the
    metadata (``record`` and the files' names) then replaces the old atomically: the commit
    point. A kill anywhere leaves the previous backup or this one, never a mix. Older files go
    afterwards.
    """
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    tag = f"epoch-{int(record['epoch']):04d}"
    weights, state = f"{tag}.weights.h5", f"{tag}.state.npz"
    model.save_weights(str(checkpoint_dir / weights), overwrite=True)
    groups = {"random": random_state(model), "optimizer": list(optimizer.variables) if optimizer is not None else [],
              **(arrays or {})}
    np.savez(checkpoint_dir / state, **{f"{group}.{index:05d}": _value(value)
                                        for group, values in groups.items() for index, value in enumerate(values)})
    pending = checkpoint_dir / f".{BACKUP_METADATA}.pending"
    pending.write_text(json.dumps({**record, "weights": weights, "state": state, "groups": list(groups)}))
    os.replace(pending, checkpoint_dir / BACKUP_METADATA)
    for old in checkpoint_dir.iterdir():
        if old.name.startswith("epoch-") and old.name not in (weights, state):
            old.unlink(missing_ok=True)


def load_backup(checkpoint_dir: Path, model, optimizer=None) -> tuple[dict[str, Any], dict[str, list]] | None:
    """The committed backup restored: weights and random generators into ``model``, the
    optimizer's variables into ``optimizer`` (built; or a function of the backup's record
    returning it, or None when the record holds no optimizer state). Returns the record and
    the caller's arrays; None when there is no backup. One that cannot be used is discarded
    with a warning and the model is left as it was: training starts over."""
    if not (checkpoint_dir / BACKUP_METADATA).exists():
        return None
    variables = list(model.variables)
    before = [_value(variable) for variable in variables]
    try:
        record = json.loads((checkpoint_dir / BACKUP_METADATA).read_text())
        with np.load(checkpoint_dir / record["state"], allow_pickle=False) as stored:
            groups: dict[str, list] = {group: [] for group in record["groups"]}
            for key in sorted(stored.files):
                group, _ = key.rsplit(".", 1)
                groups[group].append(stored[key])
        target = optimizer(record) if callable(optimizer) else optimizer
        if target is not None and not groups["optimizer"]:
            raise ValueError("the backup holds no optimizer state")
        model.load_weights(str(checkpoint_dir / record["weights"]))
        _assign(random_state(model), groups.pop("random"), "random generator")
        optimizer_values = groups.pop("optimizer")
        if target is not None:
            _assign(list(target.variables), optimizer_values, "optimizer")
        return record, groups
    except Exception as error:  # any unreadable backup means the same thing: start over
        for variable, value in zip(variables, before):
            variable.assign(value)
        _discard(checkpoint_dir, error)
        return None


def write_progress(progress_file: Path, record: dict[str, Any]) -> None:
    """Replace the progress file atomically: readers never see a half-written one."""
    progress_file.parent.mkdir(parents=True, exist_ok=True)
    pending = progress_file.with_name(f".{progress_file.name}.pending")
    pending.write_text(json.dumps(record))
    os.replace(pending, progress_file)


def log_epoch(live, progress_file: Path, epoch: int, epochs: int, resumed_from: int, logs: dict[str, float]) -> None:
    """One finished epoch to DVCLive (step = epoch index) and to the progress file. A resumed
    training calls it for the epochs its backup holds first: DVCLive's curves then hold every
    epoch, as in a run never killed."""
    live.step = epoch
    for name, value in logs.items():
        live.log_metric(name if name.startswith("val_") else f"train_{name}", value)
    live.next_step()
    write_progress(progress_file, {"epoch": epoch + 1, "epochs": epochs, "resumed_from": resumed_from, **logs})
