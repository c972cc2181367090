"""The classifiers' training loop, text and series alike: phases, resumable epochs, early stopping.

:func:`fit_classifier` compiles and fits a Keras classifier phase by phase (:class:`Phase`), one
epoch at a time, with a backup after each (:mod:`tasks.networks.training`) so that a killed run
resumes into the run it would have been; early stopping is plain state the backup holds
(:class:`_EarlyStopping`). Only the train stage runs this module.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tasks.core.common import PipelineError
from tasks.targets.labels import is_binary


def class_weights(labels: np.ndarray, n_classes: int, mode: str) -> dict[int, float] | None:
    """'balanced': weights inversely proportional to class frequency; 'none': no weights."""
    if mode == "none":
        return None
    if mode != "balanced":
        raise PipelineError(f"params.yaml: train class_weight must be 'balanced' or 'none', not {mode!r}")
    counts = np.bincount(labels.astype(int), minlength=n_classes)
    return {label: float(len(labels) / (n_classes * count)) for label, count in enumerate(counts) if count}


def early_stopping_monitor(setting: str, binary: bool, where: str = "train") -> tuple[str, str]:
    """The validation metric early stopping watches and its direction. ``auto``: AUC for two
    classes (a threshold-free ranking; a large validation split), the loss for more. ``loss``
    suits a handful of validation rows, whose AUC reaches 1.0 within an epoch or two and then
    cannot tell later, better epochs from that one."""
    if setting == "auc" and not binary:
        raise PipelineError(f"params.yaml: {where}.early_stopping_monitor auc needs two classes; use loss or auto")
    if setting == "loss" or (setting == "auto" and not binary):
        return "val_loss", "min"
    return "val_auc", "max"


@dataclass(frozen=True)
class Phase:
    """A stretch of training: up to epoch ``until``, at ``learning_rate``, with ``frozen`` layers
    (named) not trained. A pretrained encoder is fine-tuned in two: head first, then everything."""

    until: int
    learning_rate: float
    frozen: tuple[str, ...] = ()


class _EarlyStopping:
    """Keras' ``EarlyStopping(restore_best_weights=True)`` (min_delta 0, no baseline) as plain
    state a backup holds: the best value, its epoch and weights, and the epochs waited since."""

    def __init__(self, mode: str, patience: int, state: dict[str, Any] | None = None, best_weights: list | None = None):
        self.mode, self.patience = mode, patience
        state = state or {"best": -np.inf if mode == "max" else np.inf, "best_epoch": 0, "wait": 0}
        self.best, self.best_epoch, self.wait = float(state["best"]), int(state["best_epoch"]), int(state["wait"])
        self.best_weights = best_weights or None

    def state(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}

    def update(self, model, epoch: int, current: float | None) -> bool:
        """After epoch ``epoch`` (0-based, counted over all phases): True when training stops."""
        if current is None:
            return False
        if self.best_weights is None:
            self.best_weights, self.best_epoch = model.get_weights(), epoch
        self.wait += 1
        if current > self.best if self.mode == "max" else current < self.best:
            self.best, self.best_epoch, self.best_weights, self.wait = float(current), epoch, model.get_weights(), 0
            return False
        return self.wait >= self.patience and epoch > 0


def fit_classifier(model, train_data, validation_data, train_labels: np.ndarray, classes: list[str],
                   params: dict[str, Any], live_dir: Path, checkpoint_dir: Path, where: str,
                   phases: list[Phase] | None = None) -> dict[str, Any]:
    """Compile and fit a classifier phase by phase (resumable, early stopping, DVCLive); the
    training summary. Early stopping watches :func:`early_stopping_monitor`; each phase ends
    on its best weights.

    ``train_data(epoch)`` is epoch ``epoch``'s dataset (its order drawn from the seed and the
    epoch; a dataset given instead is read in the same order every epoch). After each epoch a
    backup (:func:`tasks.networks.training.save_backup`) commits everything the rest of the run depends
    on: weights, dropout's random state, the optimizer's state, early stopping (best value,
    epoch and weights, epochs waited), the phase and the epochs' logs. A run killed at any point
    resumes from its last finished epoch and ends with the model, metrics and DVCLive curves of
    a run never killed (bit for bit on CPU)."""
    import shutil
    import time

    from dvclive import Live
    from tasks.core.artifacts import PROGRESS_FILE
    from tasks.networks.training import load_backup, log_epoch, save_backup

    binary = is_binary(classes)
    phases = phases or [Phase(params["epochs"], params["learning_rate"])]
    epochs = phases[-1].until
    monitor, mode = early_stopping_monitor(params.get("early_stopping_monitor", "auto"), binary, where)
    epoch_data = train_data if callable(train_data) else (lambda epoch: train_data)
    weights = class_weights(train_labels, len(classes), params.get("class_weight", "none"))
    compiled: list[int | None] = [None]  # the phase the model is compiled for

    def phase_at(epoch: int) -> int | None:
        return next((number for number, phase in enumerate(phases) if phase.until > epoch), None)

    def compile_phase(number: int):
        import keras

        from tasks.networks.training import optimizer

        phase = phases[number]
        for layer in model.layers:
            layer.trainable = layer.name not in phase.frozen
        model.compile(
            optimizer=optimizer({**params, "learning_rate": phase.learning_rate}, where),
            loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy",
            metrics=["accuracy", keras.metrics.AUC(name="auc")] if binary else ["accuracy"],
        )
        model.optimizer.build(model.trainable_variables)  # as fit would: the backup's state is assigned into it
        compiled[0] = number
        return model.optimizer

    def resumed_optimizer(record: dict[str, Any]):
        number = phase_at(record["epoch"])
        if number is None or record.get("early_stopping") is None:  # finished, or a phase just ended
            return None
        return compile_phase(number)

    record: dict[str, Any] = {"epoch": 0, "trained": 0, "early_stopping": None, "history": []}
    best_weights = None
    restored = load_backup(checkpoint_dir, model, resumed_optimizer)
    if restored:
        record, arrays = restored
        best_weights = arrays.get("best") or None
        print(f"train: resuming from the backup of epoch {record['epoch']} in {checkpoint_dir}")
    else:
        compiled[0] = None
    resumed_from = record["epoch"]
    started = time.perf_counter()
    epochs_this_run = 0
    with Live(str(live_dir), dvcyaml=False, save_dvc_exp=False, report=None) as live:
        for logged in record["history"]:  # the curves keep the epochs before the resume
            log_epoch(live, PROGRESS_FILE, logged["epoch"], epochs, resumed_from, logged["logs"])
        epoch = record["epoch"]
        while (number := phase_at(epoch)) is not None:
            phase = phases[number]
            if compiled[0] != number:
                compile_phase(number)
            stopping = _EarlyStopping(mode, params["early_stopping_patience"], record["early_stopping"], best_weights)
            while epoch < phase.until:
                epoch_started = time.perf_counter()
                history = model.fit(
                    epoch_data(epoch),
                    validation_data=validation_data,
                    initial_epoch=epoch,
                    epochs=epoch + 1,
                    shuffle=False,  # the dataset is ordered (seed, epoch); Keras cannot shuffle a dataset
                    class_weight=weights,
                    verbose=0,
                )
                logs = {name: float(values[-1]) for name, values in history.history.items()}
                print(f"Epoch {epoch + 1}/{epochs} - {time.perf_counter() - epoch_started:.1f}s - "
                      + " - ".join(f"{name}: {value:.4f}" for name, value in logs.items()), flush=True)
                stop = stopping.update(model, epoch, logs.get(monitor))
                record["history"].append({"epoch": epoch, "logs": logs})
                logged, epoch, epochs_this_run = epoch, epoch + 1, epochs_this_run + 1
                ended = stop or epoch >= phase.until
                if stop:
                    print(f"Epoch {epoch}: early stopping (best: epoch {stopping.best_epoch + 1})")
                if ended:  # as Keras' EarlyStopping at the end of training: the phase's best weights
                    if stopping.best_weights is not None:
                        model.set_weights(stopping.best_weights)
                    epoch = phase.until
                record.update(epoch=epoch, trained=record["trained"] + 1,
                              early_stopping=None if ended else stopping.state())
                save_backup(checkpoint_dir, model, record, None if ended else model.optimizer,
                            {"best": [] if ended else list(stopping.best_weights or [])})
                # After the commit: progress says an epoch is done once a kill can no longer lose it.
                log_epoch(live, PROGRESS_FILE, logged, epochs, resumed_from, logs)
                if ended:
                    break
            record["early_stopping"], best_weights = None, None
    seconds = time.perf_counter() - started
    shutil.rmtree(checkpoint_dir, ignore_errors=True)  # finished: the backup can never be resumed
    return {
        "epochs_run": record["trained"],
        "resumed_from_epoch": resumed_from,
        "train_seconds": round(seconds, 2),
        "train_samples_per_s": round(len(train_labels) * epochs_this_run / seconds, 1) if seconds and epochs_this_run else None,
        "parameters": int(model.count_params()),
    }
