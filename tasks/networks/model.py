"""Keras models: the trainable classifier over token ids, and the text-in model that is saved.

The saved model starts with a TextVectorization layer holding the tokenize stage's
vocabulary, so serving applies exactly the vocabulary and sequence length training used.
RNN layers are built only with settings for which Keras runs the fused cuDNN kernel on a
GPU (see :func:`cudnn_eligible`); on a CPU the same model runs with the generic kernel.
"""
from __future__ import annotations

from typing import Any

import keras
from keras import layers, ops

from tasks.core.common import PipelineError

RNN_LAYERS = {"simple_rnn": layers.SimpleRNN, "lstm": layers.LSTM, "gru": layers.GRU}
POOLINGS = ("last", "max", "mean")
# LSTM-FCN's convolutional branch (Karim et al. 2018), as published; ``conv_branch: auto`` adds it
# for series of CONV_MIN_STEPS steps or more.
CONV_FILTERS, CONV_KERNELS, CONV_MIN_STEPS = (128, 256, 128), (8, 5, 3), 64


@keras.saving.register_keras_serializable(package="rnnflow")
class MaskedGlobalMaxPooling1D(layers.Layer):
    """Max over time steps that ignores padded positions (Keras' own ignores the mask)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is not None:
            floor = ops.cast(-1e4, inputs.dtype)  # fits float16 under mixed precision
            inputs = ops.where(ops.expand_dims(mask, -1), inputs, floor)
        return ops.max(inputs, axis=1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


@keras.saving.register_keras_serializable(package="rnnflow")
class SeriesMask(layers.Layer):
    """Padding of numeric series is NaN (no real value is NaN after cleaning): the mask is the
    steps without NaN, and padded steps become 0 so that nothing NaN reaches the RNN. Padding
    is always at the end, so the mask is right-padded, as the cuDNN kernels need."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs):
        return ops.where(ops.isnan(inputs), ops.zeros_like(inputs), inputs)

    def compute_mask(self, inputs, mask=None):
        return ops.logical_not(ops.any(ops.isnan(inputs), axis=-1))


def present_steps(inputs, mask):
    """1 at each step that is not padding, 0 at padding: (batch, steps, 1)."""
    return ops.ones_like(inputs[..., :1]) if mask is None else ops.expand_dims(ops.cast(mask, inputs.dtype), -1)


def window_means(values, stride: int):
    """Means of windows of ``stride`` steps from the first step on (the end padded with zeros, so
    that where the windows fall never depends on how long the batch is padded)."""
    padded = ops.pad(values, [[0, 0], [0, stride - 1], [0, 0]])
    return ops.average_pool(padded, stride, stride, padding="valid")


@keras.saving.register_keras_serializable(package="rnnflow")
class MaskedDownsample(layers.Layer):
    """Piecewise aggregate approximation of a masked series: the mean of each window of
    ``stride`` steps, over its unpadded steps; a window with none is padding (masked). Long
    series reach the RNN ``stride`` times shorter, their masks kept (still right-padded)."""

    def __init__(self, stride: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stride = int(stride)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        present = present_steps(inputs, mask)
        # mean(x * present) / mean(present) over a window: the mean of its unpadded steps
        return window_means(inputs * present, self.stride) / ops.maximum(window_means(present, self.stride),
                                                                           ops.cast(1e-6, inputs.dtype))

    def compute_mask(self, inputs, mask=None):
        return window_means(present_steps(inputs, mask), self.stride)[..., 0] > 0  # a window with any unpadded step

    def compute_output_shape(self, input_shape):
        steps = None if input_shape[1] is None else -(-input_shape[1] // self.stride)
        return (input_shape[0], steps, input_shape[2])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "stride": self.stride}


@keras.saving.register_keras_serializable(package="rnnflow")
class WithOwnScale(layers.Layer):
    """Each feature of a masked series twice: as given, and standardised over the series' own
    unpadded steps (mean 0, standard deviation 1; a constant feature becomes 0). Series whose
    levels or amplitudes differ by orders of magnitude (an appliance's current) keep their shape
    visible to a convolution; the padded steps stay 0 and the statistics skip them, so padding
    changes nothing."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        present = present_steps(inputs, mask)
        count = ops.maximum(ops.sum(present, axis=1, keepdims=True), ops.cast(1.0, inputs.dtype))
        mean = ops.sum(inputs * present, axis=1, keepdims=True) / count
        spread = ops.sqrt(ops.sum(ops.square((inputs - mean) * present), axis=1, keepdims=True) / count)
        standardised = (inputs - mean) / ops.maximum(spread, ops.cast(1e-6, inputs.dtype)) * present
        return ops.concatenate([inputs * present, standardised], axis=-1)

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], None if input_shape[-1] is None else 2 * input_shape[-1])


@keras.saving.register_keras_serializable(package="rnnflow")
class ConvBranch(layers.Layer):
    """LSTM-FCN's fully convolutional branch (Karim et al. 2018) over the masked series: Conv1D
    blocks (filters ``CONV_FILTERS``, kernels ``CONV_KERNELS``, each with batch normalisation and
    ReLU), then the mean over the unpadded steps.

    ``stride`` > 1 (a long series, which the recurrent layers read as window means): the first
    block is a learned downsampling instead, a kernel of ``max(8, 2 x stride)`` steps moved
    ``stride`` at a time over the full-rate series, so the waveform inside each window still
    reaches the branch; the later blocks run at the reduced rate. Each block's output is zeroed
    at padded steps (and its batch statistics skip them), so padding reads as the zeros beyond a
    series' end: a prediction does not depend on how far its batch is padded."""

    def __init__(self, filters: tuple[int, ...] = (), kernels: tuple[int, ...] = (), stride: int = 1,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filters, self.kernels, self.stride = tuple(filters), tuple(kernels), int(stride)
        self.first_kernel = self.kernels[0] if self.stride == 1 else max(self.kernels[0], 2 * self.stride)
        self.supports_masking = True
        self.convs = [layers.Conv1D(self.filters[0], self.first_kernel, strides=self.stride, padding="valid", name="conv_0")]
        self.convs += [layers.Conv1D(width, size, padding="same", name=f"conv_{depth}")
                       for depth, (width, size) in enumerate(zip(self.filters[1:], self.kernels[1:]), start=1)]
        # momentum 0.9, not Keras' 0.99: a small archive makes a few batches an epoch, and the
        # moving statistics inference uses must settle within tens of steps, not hundreds.
        self.norms = [layers.BatchNormalization(momentum=0.9, name=f"norm_{depth}") for depth in range(len(self.convs))]

    def build(self, input_shape):
        shape = tuple(input_shape)
        for conv, norm in zip(self.convs, self.norms):
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
            norm.build(shape)

    def call(self, inputs, mask=None, training=None):
        present = present_steps(inputs, mask)
        # Zeros after the end: output i reads steps [i x stride, i x stride + kernel), ceil(steps / stride) outputs.
        x = ops.pad(inputs * present, [[0, 0], [0, self.first_kernel - 1], [0, 0]])
        # a reduced step is real when its window of ``stride`` steps holds a real one (MaskedDownsample's mask)
        reduced_mask = window_means(present, self.stride)[..., 0] > 0
        present = ops.expand_dims(ops.cast(reduced_mask, inputs.dtype), -1)
        for conv, norm in zip(self.convs, self.norms):
            x = conv(x)
            x = ops.relu(norm(x, training=training, mask=reduced_mask)) * ops.cast(present, x.dtype)
        count = ops.maximum(ops.sum(ops.cast(present, x.dtype), axis=1), ops.cast(1.0, x.dtype))
        return ops.sum(x, axis=1) / count

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.filters[-1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "filters": list(self.filters), "kernels": list(self.kernels), "stride": self.stride}


def cudnn_eligible(layer: layers.Layer) -> list[str]:
    """Why an LSTM/GRU layer could not use the cuDNN kernel; an empty list means it can.

    Keras 3 uses cuDNN only with tanh activation, sigmoid recurrent activation, no
    recurrent dropout, no unrolling, a bias and (GRU) reset_after; masks must be
    right-padded, which the pipeline's padding guarantees. SimpleRNN has no cuDNN kernel.
    """
    if isinstance(layer, layers.Bidirectional):
        return cudnn_eligible(layer.forward_layer)
    if not isinstance(layer, (layers.LSTM, layers.GRU)):
        return [f"{type(layer).__name__} has no cuDNN kernel"]
    config = layer.get_config()
    reasons = []
    if config["activation"] != "tanh":
        reasons.append(f"activation is {config['activation']}, not tanh")
    if config["recurrent_activation"] != "sigmoid":
        reasons.append(f"recurrent_activation is {config['recurrent_activation']}, not sigmoid")
    if config["recurrent_dropout"]:
        reasons.append("recurrent_dropout is not 0")
    if config["unroll"]:
        reasons.append("unroll is on")
    if not config["use_bias"]:
        reasons.append("use_bias is off")
    if isinstance(layer, layers.GRU) and not config["reset_after"]:
        reasons.append("reset_after is off")
    return reasons


def validate_params(params: dict[str, Any], where: str = "train") -> None:
    """Reject unknown model names and poolings with the parameter's name."""
    from tasks.core.common import PipelineError

    if params["model"] not in RNN_LAYERS:
        raise PipelineError(f"params.yaml: {where}.model '{params['model']}' is not one of {sorted(RNN_LAYERS)}")
    if params.get("pooling", "last") not in POOLINGS:
        raise PipelineError(f"params.yaml: {where}.pooling '{params['pooling']}' is not one of {list(POOLINGS)}")
    if params["layers"] < 1:
        raise PipelineError(f"params.yaml: {where}.layers must be at least 1")


def recurrent_encoder(x, params: dict[str, Any]):
    """Stacked (bi)RNN layers over a masked sequence, pooled into one vector per sequence."""
    validate_params(params)
    for depth in range(params["layers"]):
        last = depth == params["layers"] - 1
        rnn = RNN_LAYERS[params["model"]](
            params["units"], return_sequences=not (last and params["pooling"] == "last"), name=f"{params['model']}_{depth}"
        )
        x = layers.Bidirectional(rnn, name=f"bidirectional_{depth}")(x) if params["bidirectional"] else rnn(x)
    if params["pooling"] == "max":
        x = MaskedGlobalMaxPooling1D(name="max_pool")(x)
    elif params["pooling"] == "mean":
        x = layers.GlobalAveragePooling1D(name="mean_pool")(x)
    return x


def class_head(x, n_classes: int, dropout: float):
    """Dropout, then one sigmoid unit for two classes (the positive probability) or a softmax."""
    x = layers.Dropout(dropout, name="dropout")(x)
    # float32 output keeps the loss stable under mixed precision.
    if n_classes == 2:
        return layers.Dense(1, activation="sigmoid", dtype="float32", name="probability")(x)
    return layers.Dense(n_classes, activation="softmax", dtype="float32", name="probabilities")(x)


def build_text_classifier(params: dict[str, Any], vocab_size: int, n_classes: int = 2) -> keras.Model:
    """Embedding -> stacked (bi)RNN -> pooling -> dropout -> class head, over token ids."""
    validate_params(params)
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    x = layers.Embedding(vocab_size, params["embedding_dim"], mask_zero=True, name="embedding")(token_ids)
    x = layers.Dropout(params["dropout"], name="embedding_dropout")(x)
    return keras.Model(token_ids, class_head(recurrent_encoder(x, params), n_classes, params["dropout"]), name="classifier")


def downsample_stride(max_steps: int, downsample_to: int | None) -> int:
    """How many steps one RNN step reads: 1, or the least stride that brings the longest train
    series to ``downsample_to`` steps or fewer (None: never)."""
    return 1 if not downsample_to or max_steps <= downsample_to else -(-max_steps // downsample_to)


def series_capacity(params: dict[str, Any], n_train: int) -> dict[str, Any]:
    """``capacity: auto``: the recurrent layers sized by the number of training series, so that a
    tiny set gets a small model (fewer weights than it has numbers to fit them on): under 100
    series one layer of 32 units, under 500 at most 64 units, else ``layers``/``units`` as set;
    ``fixed``: ``layers``/``units`` as set."""
    if params.get("capacity", "auto") == "fixed" or n_train >= 500:
        return params
    if n_train < 100:
        return {**params, "layers": 1, "units": min(params["units"], 32)}
    return {**params, "units": min(params["units"], 64)}


def series_epochs(params: dict[str, Any], n_train: int, rnn_steps: int) -> int:
    """The most epochs the series RNN may train: ``epochs``, or fewer when ``max_series_steps``
    (a compute budget: epochs x training series x the steps the RNN reads, after downsampling)
    would be exceeded, so a large archive's run stays within minutes; at least 1."""
    budget = params.get("max_series_steps")
    if not budget:
        return params["epochs"]
    return max(1, min(params["epochs"], budget // max(n_train * rnn_steps, 1)))


def uses_conv_branch(params: dict[str, Any], max_steps: int) -> bool:
    """``conv_branch: auto``: LSTM-FCN's convolutional branch beside the recurrent layers for
    series of ``CONV_MIN_STEPS`` steps or more (the longest train series, before downsampling),
    where local shape carries the classes and a recurrent layer alone reads it poorly; shorter
    series (a few dozen steps of many features) are left to the recurrent layers. ``true`` /
    ``false`` force it."""
    setting = params.get("conv_branch", "auto")
    return max_steps >= CONV_MIN_STEPS if setting == "auto" else bool(setting)


def build_series_classifier(params: dict[str, Any], scaler: dict[str, list[float]], n_classes: int,
                            stride: int = 1, conv: bool = False) -> keras.Model:
    """Scaling (the train split's statistics, fixed) -> NaN-padding mask -> (``stride`` > 1: the
    mean of every ``stride`` steps, :class:`MaskedDownsample`) -> stacked (bi)RNN -> pooling
    (``conv``: concatenated with :class:`ConvBranch`, which reads the full-rate series with
    :class:`WithOwnScale`'s standardised copy) -> class head.
    Input: (batch, steps, features), padded with NaN."""
    validate_params(params)
    n_features = len(scaler["mean"])
    values = keras.Input(shape=(None, n_features), dtype="float32", name="series")
    scaled = layers.Normalization(axis=-1, mean=scaler["mean"], variance=scaler["variance"], name="scale")(values)
    masked = SeriesMask(name="mask")(scaled)
    x = MaskedDownsample(stride, name="downsample")(masked) if stride > 1 else masked
    features = recurrent_encoder(x, params)
    if conv:  # reads the full-rate series, as scaled and as standardised over its own steps
        branch = ConvBranch(CONV_FILTERS, CONV_KERNELS, stride, name="conv")(WithOwnScale(name="own_scale")(masked))
        features = layers.Concatenate(name="rnn_and_conv")([features, branch])
    return keras.Model(values, class_head(features, n_classes, params["dropout"]), name="series_classifier")


def initialise_from_language_model(classifier: keras.Model, language_model) -> list[str]:
    """Copy a language model's embedding and recurrent layers into the classifier's layers of the
    same names (built with the same shapes); return those layer names: the encoder."""
    encoder = [language_model.embedding, *language_model.rnns]
    for layer in encoder:
        classifier.get_layer(layer.name).set_weights(layer.get_weights())
    return [layer.name for layer in encoder]


def build_text_model(classifier: keras.Model, vocabulary: list[str], max_len: int) -> keras.Model:
    """The served model: cleaned text (tokens joined by spaces) in, class probabilities out."""
    text = keras.Input(shape=(), dtype="string", name="text")
    vectorize = layers.TextVectorization(
        standardize=None,
        split="whitespace",
        vocabulary=vocabulary,  # Keras puts padding at 0 and its OOV token "[UNK]" at 1, as tokenize does
        output_sequence_length=max_len,
        name="vectorize",
    )
    return keras.Model(text, classifier(vectorize(text)), name="text_classifier")


class UnsafeModelFile(PipelineError, ValueError):
    """A model file that needs code from itself to load: refused (Keras safe mode)."""


def load_model(path: str) -> keras.Model:
    """Load a saved model in Keras safe mode: no code from the file is executed.

    A missing file, one that is not a ``.keras`` archive or one Keras cannot rebuild is a
    :class:`PipelineError` saying so in one line (retrain or restore it); a file that needs code
    to load is refused with :class:`UnsafeModelFile` (a ValueError too).
    """
    from tasks.core.common import check_model_archive, damaged_model

    what = "a Keras model file"
    file = check_model_archive(path, what)
    try:
        return keras.saving.load_model(str(file), safe_mode=True, compile=False)
    except ValueError as error:
        if "safe_mode" in str(error) or "safe mode" in str(error).lower():
            raise UnsafeModelFile(f"{path}: refused: loading it would run code stored in the file (Keras safe mode); "
                                  "retrain it (dvc repro) or restore it (dvc checkout)") from error
        raise damaged_model(file, what, error) from error
    except Exception as error:  # a truncated archive, a broken config or weights: each library its own type
        raise damaged_model(file, what, error) from error
