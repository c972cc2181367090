"""Training the recurrent language model (:mod:`tasks.networks.lm`): truncated BPTT with sampled
softmax, learning-rate decay, early stopping on validation perplexity, and resumable backups
(:mod:`tasks.networks.training`). Only the train and pretrain stages import it: evaluating or
generating loads no training code.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tasks.core.common import PipelineError
from tasks.networks.lm import CELLS, evaluator, score, tbptt_batches, use_xla


def check_params(params: dict[str, Any], where: str) -> None:
    """Clear errors for settings the model cannot use."""
    if params["model"] not in CELLS:
        raise PipelineError(f"params.yaml: {where}.model '{params['model']}' is not one of {list(CELLS)} "
                            "(a language model needs a gated cell)")
    for name in ("layers", "units", "embedding_dim", "sequence_length", "batch_size", "epochs"):
        if not isinstance(params[name], int) or params[name] < 1:
            raise PipelineError(f"params.yaml: {where}.{name} must be a positive integer, not {params[name]!r}")
    if not 0 <= params["dropout"] < 1:
        raise PipelineError(f"params.yaml: {where}.dropout must be in [0, 1)")
    sampled = params.get("sampled_softmax")
    if sampled is not None and (not isinstance(sampled, int) or sampled < 1):
        raise PipelineError(f"params.yaml: {where}.sampled_softmax must be a positive integer or null (exact softmax)")


def sampled_softmax_loss(hidden, labels, kernel, bias, num_sampled: int, seed):
    """Per-token sampled-softmax loss (Jean et al. 2015), written with plain ops so XLA compiles it.

    ``num_sampled`` candidates are drawn (with replacement, shared by the batch) from the
    log-uniform distribution that suits a vocabulary sorted by frequency, as TensorFlow's
    ``sampled_softmax_loss`` does; each logit is corrected by the log of its expected count,
    and a candidate equal to the true token is masked out. ``seed``: a (2,) int tensor that
    changes each step (a stateless generator: the same run samples the same candidates).
    """
    import tensorflow as tf

    vocab_size = tf.shape(kernel)[0]
    log_range = tf.math.log(tf.cast(vocab_size, tf.float32) + 1.0)
    uniform = tf.random.stateless_uniform([num_sampled], seed=seed)
    candidates = tf.minimum(tf.cast(tf.floor(tf.exp(uniform * log_range)), tf.int32) - 1, vocab_size - 1)

    def log_expected(ids):
        ids = tf.cast(ids, tf.float32)
        probability = (tf.math.log(ids + 2.0) - tf.math.log(ids + 1.0)) / log_range
        return tf.math.log(float(num_sampled) * probability)

    true_logits = tf.reduce_sum(hidden * tf.gather(kernel, labels), axis=1) + tf.gather(bias, labels) - log_expected(labels)
    sampled_logits = (tf.matmul(hidden, tf.gather(kernel, candidates), transpose_b=True) + tf.gather(bias, candidates)
                      - log_expected(candidates))
    accidental = tf.equal(labels[:, None], candidates[None, :])
    sampled_logits = tf.where(accidental, tf.fill(tf.shape(sampled_logits), -1e9), sampled_logits)
    logits = tf.concat([true_logits[:, None], sampled_logits], axis=1)
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.zeros_like(labels), logits=logits)


def _trainer(model, optimizer, sampled: int | None, seed: int, clipnorm: float | None, compiled: bool):
    import tensorflow as tf

    variables = model.trainable_variables

    @tf.function(jit_compile=compiled, reduce_retracing=True)
    def step(inputs, targets, state, step_number):
        with tf.GradientTape() as tape:
            hidden, state = model(inputs, state, training=True)
            labels = tf.reshape(targets, [-1])
            weights = tf.cast(labels != 0, tf.float32)
            if sampled:
                kernel, bias = model.output_weights()
                flat = tf.reshape(tf.cast(hidden, tf.float32), [-1, model.width])
                losses = sampled_softmax_loss(flat, labels, tf.cast(kernel, tf.float32), tf.cast(bias, tf.float32),
                                              sampled, tf.stack([tf.constant(seed, tf.int64), step_number]))
            else:
                losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=model.logits(hidden))
            loss = tf.reduce_sum(losses * weights) / tf.maximum(tf.reduce_sum(weights), 1.0)
        gradients = tape.gradient(loss, variables)
        if clipnorm:
            gradients, _ = tf.clip_by_global_norm(gradients, clipnorm)
        optimizer.apply_gradients(zip(gradients, variables))
        return loss, tf.reduce_sum(weights), [[tf.stop_gradient(part) for part in layer] for layer in state]

    return step


def _save_backup(checkpoint_dir: Path, model, optimizer, record: dict[str, Any], best_weights: list) -> None:
    """The epoch's weights, dropout's random state, optimizer state and best weights, committed
    atomically with ``record`` (:func:`tasks.networks.training.save_backup`)."""
    from tasks.networks.training import save_backup

    save_backup(checkpoint_dir, model, record, optimizer, {"best": best_weights})


def _load_backup(checkpoint_dir: Path, model, optimizer) -> tuple[dict[str, Any], list] | None:
    """The committed backup (record, best weights), restored into ``model`` (weights, random
    state) and ``optimizer``; None when there is none. An unreadable one is discarded with a
    warning (:func:`tasks.networks.training.load_backup`)."""
    from tasks.networks.training import load_backup

    restored = load_backup(checkpoint_dir, model, optimizer)
    if restored is None:
        return None
    record, arrays = restored
    return record, arrays["best"]


def fit(model, train_stream: np.ndarray, validation_stream: np.ndarray, params: dict[str, Any],
        checkpoint_dir: Path, on_epoch: Callable[[int, int, dict[str, float]], None]) -> dict[str, Any]:
    """Train with truncated BPTT until ``epochs`` or early stopping; keep the best weights.

    ``on_epoch(epoch, resumed_from, logs)`` reports each finished epoch (DVCLive, progress); a
    resumed run reports the epochs of its backup again first. The backup after each epoch holds
    all the rest of the run depends on (weights, dropout's random state, optimizer state, learning
    rate, early stopping, best weights, logs; the batches and sampled candidates follow from the
    epoch and step), so a run killed at any point ends as one never killed.
    Returns the training summary with the per-epoch history.
    """
    import keras

    optimizer = keras.optimizers.Adam(learning_rate=params["learning_rate"])
    optimizer.build(model.trainable_variables)
    compiled = use_xla()
    train_step = _trainer(model, optimizer, params.get("sampled_softmax"), params["seed"], params.get("clipnorm"), compiled)
    evaluate_step = evaluator(model, compiled)
    inputs, targets = tbptt_batches(train_stream, params["batch_size"], params["sequence_length"])
    record: dict[str, Any] = {"epoch": 0, "best_perplexity": None, "best_epoch": 0, "stale": 0,
                              "learning_rate": params["learning_rate"], "history": [], "logs": []}
    best_weights = model.get_weights()
    restored = _load_backup(checkpoint_dir, model, optimizer)
    if restored:
        record, best_weights = restored
        print(f"train: resuming from the backup of epoch {record['epoch']} in {checkpoint_dir}")
    resumed_from = record["epoch"]
    for logged in record["logs"]:  # reported again: DVCLive's curves keep the epochs before the resume
        on_epoch(logged["epoch"], resumed_from, logged["logs"])
    started = time.perf_counter()
    trained_tokens = 0
    for epoch in range(record["epoch"], params["epochs"]):
        if record["stale"] >= params["early_stopping_patience"]:
            break
        optimizer.learning_rate.assign(record["learning_rate"])
        state = model.zero_state(inputs.shape[1])
        loss_sum = token_sum = 0.0
        epoch_started = time.perf_counter()
        for chunk in range(len(inputs)):
            step_number = np.int64(epoch * len(inputs) + chunk)
            loss, tokens, state = train_step(inputs[chunk], targets[chunk], state, step_number)
            loss_sum += float(loss) * float(tokens)
            token_sum += float(tokens)
        seconds = time.perf_counter() - epoch_started
        trained_tokens += token_sum
        validation = score(model, validation_stream, step=evaluate_step)
        logs = {"loss": loss_sum / token_sum, "val_loss": validation["cross_entropy"],
                "val_perplexity": validation["perplexity"], "val_top1_accuracy": validation["top1_accuracy"],
                "tokens_per_s": token_sum / seconds, "learning_rate": record["learning_rate"]}
        print(f"epoch {epoch + 1}/{params['epochs']}: train loss {logs['loss']:.4f}, validation perplexity "
              f"{logs['val_perplexity']:.2f}, {logs['tokens_per_s']:,.0f} tokens/s, lr {record['learning_rate']:.2e}")
        record["history"].append({"epoch": epoch + 1, **{key: round(value, 6) for key, value in logs.items()}})
        record["logs"].append({"epoch": epoch, "logs": logs})
        if record["best_perplexity"] is None or logs["val_perplexity"] < record["best_perplexity"]:
            record.update(best_perplexity=logs["val_perplexity"], best_epoch=epoch + 1, stale=0)
            best_weights = model.get_weights()
        else:
            record["stale"] += 1
            record["learning_rate"] *= params.get("learning_rate_decay", 0.5)
        record["epoch"] = epoch + 1
        _save_backup(checkpoint_dir, model, optimizer, record, best_weights)
        on_epoch(epoch, resumed_from, logs)  # after the commit: a reported epoch is never lost
    model.set_weights(best_weights)
    seconds = time.perf_counter() - started
    shutil.rmtree(checkpoint_dir, ignore_errors=True)  # finished: the backup can never be resumed
    return {
        "epochs_run": record["epoch"],
        "resumed_from_epoch": resumed_from,
        "best_epoch": record["best_epoch"],
        "best_val_perplexity": round(record["best_perplexity"], 3),
        "train_seconds": round(seconds, 2),
        "train_tokens_per_s": round(trained_tokens / seconds, 1) if trained_tokens else None,
        "history": record["history"],
        "parameters": int(model.count_params()),
    }
