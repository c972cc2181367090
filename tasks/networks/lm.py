"""The next-token target: a recurrent language model over token ids, trained and scored.

- :class:`LanguageModel`: embedding -> stacked LSTM/GRU -> a softmax over the vocabulary,
  optionally tied to the input embedding (with a projection when the last layer's width
  differs from the embedding's). The recurrent state is passed in and out explicitly, so
  training, scoring and generation carry it across chunks the same way. The padding id 0 is
  never predicted (its logit is -inf): distributions are over ids 1..V-1, like the n-gram
  baseline's.
- :func:`tbptt_batches`: truncated backpropagation through time. The stream of (input, next
  token) pairs is cut into ``batch_size`` contiguous rows, each read in chunks of
  ``sequence_length`` steps with the state carried from chunk to chunk; the tail is padded
  with target 0, weighted 0, so every token of the stream is predicted exactly once an epoch.
- :func:`fit`: a sampled-softmax training loss (a full softmax over a large vocabulary costs
  most of the time), an exact full-softmax validation perplexity each epoch, the learning rate
  halved when it stops improving, early stopping with the best weights kept, DVCLive and the
  progress file per epoch, and a backup committed atomically after each epoch that a killed
  run resumes from.
- :func:`score`: exact perplexity (exp of the mean negative log-likelihood over every token),
  top-1 and top-5 accuracy; :func:`generate`: sampling with temperature and top-k under a seed.

The layers are built cuDNN-eligible (tanh/sigmoid, no recurrent dropout, no mask), and run in
mixed precision on a GPU (the softmax in float32).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from tasks.core.common import PipelineError

WEIGHTS_FILE = "model.weights.h5"
CELLS = ("lstm", "gru")
ARCHITECTURE_KEYS = ("model", "layers", "units", "embedding_dim", "dropout", "tied")


def build(vocab_size: int, architecture: dict[str, Any]):
    """A :class:`LanguageModel` with its weights created."""
    import keras

    class LanguageModel(keras.Model):
        """Token ids and a state in, hidden vectors and the next state out; ``logits`` on top."""

        def __init__(self, vocab_size: int, model: str, layers: int, units: int, embedding_dim: int,
                     dropout: float, tied: bool, **kwargs):
            super().__init__(**kwargs)
            self.vocab_size, self.cell, self.units = vocab_size, model, units
            self.embedding = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")
            layer = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[model]
            self.rnns = [layer(units, return_sequences=True, return_state=True, name=f"{model}_{depth}")
                         for depth in range(layers)]
            self.dropouts = [keras.layers.Dropout(dropout, name=f"dropout_{depth}") for depth in range(layers + 1)]
            self.tied = tied
            width = embedding_dim if tied else units
            self.projection = keras.layers.Dense(embedding_dim, name="projection") if tied and units != embedding_dim else None
            self.output_kernel = None if tied else self.add_weight(shape=(vocab_size, width), name="output_kernel",
                                                                   initializer="glorot_uniform")
            self.output_bias = self.add_weight(shape=(vocab_size,), name="output_bias", initializer="zeros")
            self.width = width

        def zero_state(self, batch_size: int):
            import tensorflow as tf

            parts = 2 if self.cell == "lstm" else 1
            return [[tf.zeros((batch_size, self.units)) for _ in range(parts)] for _ in self.rnns]

        def call(self, ids, state, training=False):
            x = self.dropouts[0](self.embedding(ids), training=training)
            new_state = []
            for rnn, dropout, layer_state in zip(self.rnns, self.dropouts[1:], state):
                x, *carried = rnn(x, initial_state=layer_state, training=training)
                new_state.append(carried)
                x = dropout(x, training=training)
            if self.projection is not None:
                x = self.projection(x)
            return x, new_state

        def output_weights(self):
            kernel = self.embedding.embeddings if self.tied else self.output_kernel
            return kernel, self.output_bias

        def logits(self, hidden):
            """Full-softmax logits, float32, with the padding id never predicted."""
            import tensorflow as tf

            kernel, bias = self.output_weights()
            flat = tf.reshape(tf.cast(hidden, tf.float32), [-1, self.width])
            logits = tf.matmul(flat, tf.cast(kernel, tf.float32), transpose_b=True) + tf.cast(bias, tf.float32)
            padding = tf.one_hot(0, self.vocab_size, on_value=-1e9, off_value=0.0)
            return logits + padding

    model = LanguageModel(vocab_size, **{key: architecture[key] for key in ARCHITECTURE_KEYS})
    model(np.zeros((1, 1), np.int32), model.zero_state(1))
    return model


def load(model_dir: Path, card: dict[str, Any]):
    """The saved language model (weights only: no code is read from the file).

    A missing or unreadable weights file (or one of another architecture than the card's) is a
    :class:`PipelineError` that says so in one line."""
    from tasks.core.common import damaged_model, load_model_part

    weights, what = Path(model_dir) / WEIGHTS_FILE, "a Keras weights file"
    if not weights.is_file():  # before TensorFlow loads
        raise damaged_model(weights, what, "a folder" if weights.is_dir() else None)
    try:
        model = build(card["vocab_size"], card["architecture"])
    except (KeyError, TypeError, ValueError) as error:
        raise damaged_model(Path(model_dir) / "model.json", "a language model card", f"architecture: {error}") from error
    load_model_part(weights, what, lambda path: model.load_weights(str(path)))
    return model


def tbptt_batches(stream: np.ndarray, batch_size: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """``(inputs, targets)``, each ``(chunks, batch_size, steps)``: row r of every chunk continues
    row r of the chunk before. Targets are the next tokens; 0 marks padding (weight 0)."""
    pairs = len(stream) - 1
    if pairs < 1:
        raise PipelineError("the token stream is too short to predict anything (fewer than 2 tokens)")
    batch_size = min(batch_size, pairs)
    row = -(-pairs // batch_size)
    chunks = -(-row // steps)
    inputs = np.zeros(batch_size * row, np.int32)
    targets = np.zeros(batch_size * row, np.int32)
    inputs[:pairs], targets[:pairs] = stream[:-1], stream[1:]
    shaped = []
    for values in (inputs, targets):
        grid = np.zeros((batch_size, chunks * steps), np.int32)
        grid[:, :row] = values.reshape(batch_size, row)
        shaped.append(grid.reshape(batch_size, chunks, steps).transpose(1, 0, 2).copy())
    return shaped[0], shaped[1]


def use_xla() -> bool:
    """XLA-compile the steps on CPU (about twice the tokens/s); on a GPU the cuDNN kernels, which
    XLA cannot compile, are faster."""
    import tensorflow as tf

    return not tf.config.list_physical_devices("GPU")


def evaluator(model, compiled: bool = False):
    """A compiled step: summed NLL, top-1 and top-5 hits and the token count of one chunk."""
    import tensorflow as tf

    @tf.function(jit_compile=compiled, reduce_retracing=True)
    def step(inputs, targets, state):
        hidden, state = model(inputs, state, training=False)
        logits = model.logits(hidden)
        labels = tf.reshape(targets, [-1])
        weights = tf.cast(labels != 0, tf.float32)
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        top = tf.math.top_k(logits, k=5).indices
        hits = tf.cast(tf.equal(top, tf.cast(labels[:, None], top.dtype)), tf.float32)
        return (tf.reduce_sum(nll * weights), tf.reduce_sum(hits[:, 0] * weights),
                tf.reduce_sum(tf.reduce_max(hits, axis=1) * weights), tf.reduce_sum(weights), state)

    return step


def score(model, stream: np.ndarray, batch_size: int = 32, steps: int = 64, step=None) -> dict[str, float]:
    """Exact perplexity and top-1/top-5 accuracy over every token of ``stream`` after the first.

    The stream is read as ``batch_size`` contiguous rows (each starting from a zero state), a
    full softmax at every position.
    """
    inputs, targets = tbptt_batches(stream, batch_size, steps)
    step = step or evaluator(model, use_xla())
    state = model.zero_state(inputs.shape[1])
    totals = np.zeros(4)
    for chunk in range(len(inputs)):
        nll, top1, top5, count, state = step(inputs[chunk], targets[chunk], state)
        totals += [float(nll), float(top1), float(top5), float(count)]
    nll, top1, top5, count = totals
    return {"perplexity": math.exp(nll / count), "cross_entropy": nll / count,
            "top1_accuracy": top1 / count, "top5_accuracy": top5 / count, "tokens": int(count)}


def generate(model, prompt_ids: list[int], words: int, temperature: float, top_k: int | None, seed: int,
             banned: tuple[int, ...] = (0, 1)) -> list[int]:
    """Continue ``prompt_ids`` by ``words`` sampled ids (never one of ``banned``: padding, OOV).

    The prompt is read once to set the state; each next id is drawn from the softmax at
    ``temperature`` over the ``top_k`` most probable ids, with numpy's generator seeded by ``seed``.
    """
    if temperature <= 0:
        raise PipelineError("--temperature must be above 0")
    rng = np.random.default_rng(seed)
    state = model.zero_state(1)
    ids = list(prompt_ids) or [1]
    hidden, state = model(np.asarray([ids], np.int32), state, training=False)
    generated = []
    for _ in range(words):
        logits = np.asarray(model.logits(hidden[:, -1:]))[0].astype(np.float64) / temperature
        logits[list(banned)] = -np.inf
        if top_k:
            cutoff = np.sort(logits)[-min(top_k, np.isfinite(logits).sum())]
            logits[logits < cutoff] = -np.inf
        probabilities = np.exp(logits - logits.max())
        probabilities /= probabilities.sum()
        token = int(rng.choice(len(probabilities), p=probabilities))
        generated.append(token)
        hidden, state = model(np.asarray([[token]], np.int32), state, training=False)
    return generated
