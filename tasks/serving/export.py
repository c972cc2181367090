"""The served decision as one TensorFlow graph: a SavedModel TF Serving loads without this project.

Only where the whole decision can be re-expressed in TensorFlow from the model card's own fields
(a series classifier: missing values, length rules, the RNN with its built-in scaler, the summary
baseline, the average of the two, the threshold or arg-max). Anything the export does not know
how to reproduce exactly (text cleaning done by NLTK's tokenizer in Python, a baseline family or
an ensemble form other than those below) is refused with the reason, and an export whose answers
differ from the kind's ``Predictor`` on the rows it is checked against is deleted, not kept.

The signature ``serve(values, lengths)``: ``values`` float32 ``[batch, steps, features]`` (NaN for
a missing value; rows padded to the longest, any padding value), ``lengths`` int32 ``[batch]``;
answers ``probabilities`` (float64: two classes ``[batch]``, the positive class's; else ``[batch,
K]``) and ``label`` (the class names, as ``tasks.predict`` writes series labels).
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from tasks import kinds
from tasks.core.artifacts import read_card
from tasks.core.common import PipelineError

TOLERANCE = 1e-6  # tasks.predict writes probabilities to 6 places
GAPPY = 32  # test series checked again with gaps (tasks.serving.export.with_gaps)


class NotExportable(PipelineError):
    """The model's decision cannot be one TensorFlow graph that answers exactly as it does."""


def _interp(x, xp, fp):
    """``np.interp(x, xp, fp)`` in float64 (``xp`` increasing, at least one point): the ends take
    the nearest value; the same arithmetic as NumPy (slope times the distance from the left point)."""
    import tensorflow as tf

    count = tf.shape(xp)[0]
    right = tf.searchsorted(xp, x, side="right")
    low, high = tf.clip_by_value(right - 1, 0, count - 1), tf.clip_by_value(right, 0, count - 1)
    x0, x1, y0, y1 = tf.gather(xp, low), tf.gather(xp, high), tf.gather(fp, low), tf.gather(fp, high)
    apart = x1 > x0
    slope = (y1 - y0) / tf.where(apart, x1 - x0, tf.ones_like(x0))
    return tf.where(apart, slope * (x - x0) + y0, y0)


def _linspace(count):
    """``np.linspace(0, 1, count)`` (``count >= 2``): ``i * (1 / (count - 1))``, the last exactly 1."""
    import tensorflow as tf

    points = tf.range(count, dtype=tf.float64) * (1.0 / tf.cast(count - 1, tf.float64))
    return tf.concat([points[:-1], tf.ones([1], tf.float64)], axis=0)


def _resample(series, steps: int):
    """:func:`tasks.inputs.series.resample` (float64 out; the same series when its length is ``steps``)."""
    import tensorflow as tf

    length = tf.shape(series)[0]
    source = tf.cond(length > 1, lambda: _linspace(tf.maximum(length, 2)), lambda: tf.zeros([1], tf.float64))
    target = _linspace(tf.constant(steps)) if steps > 1 else tf.zeros([1], tf.float64)
    stretched = tf.transpose(tf.map_fn(lambda column: _interp(target, source, column), tf.transpose(tf.cast(series, tf.float64))))
    return tf.cond(tf.equal(length, steps), lambda: tf.cast(series, tf.float64), lambda: stretched)


def _interpolate(series):
    """:func:`tasks.inputs.series.interpolate`: NaNs linear in time per feature, an all-missing feature 0."""
    import tensorflow as tf

    steps = tf.cast(tf.range(tf.shape(series)[0]), tf.float64)

    def column(values):
        known = tf.logical_not(tf.math.is_nan(values))

        def filled():  # inside the branch: with nothing known there is no point to interpolate from
            known_values = tf.cast(tf.boolean_mask(values, known), tf.float64)
            return tf.cast(_interp(steps, tf.boolean_mask(steps, known), known_values), tf.float32)

        return tf.cond(tf.reduce_any(known), filled, lambda: tf.zeros_like(values))

    return tf.transpose(tf.map_fn(column, tf.transpose(series)))


def _summary_features(item, shape_steps: int):
    """:func:`tasks.inputs.series.summary_features` of one prepared float32 series."""
    import tensorflow as tf

    length = tf.shape(item)[0]
    steps = tf.cast(tf.range(length), tf.float64)
    centred = steps - tf.reduce_mean(steps)
    mean = tf.reduce_mean(item, axis=0)
    slope = tf.linalg.matvec(tf.cast(item - mean, tf.float64), centred, transpose_a=True) / \
        tf.maximum(tf.tensordot(centred, centred, 1), 1e-12)
    parts = [tf.cast(part, tf.float64) for part in (mean, tf.math.reduce_std(item, axis=0), tf.reduce_min(item, axis=0),
                                                    tf.reduce_max(item, axis=0), item[0], item[-1])]
    parts += [slope, tf.cast(tf.reshape(length, [1]), tf.float64)]
    if shape_steps:
        parts.append(tf.reshape(_resample(item, shape_steps), [-1]))
    return tf.concat(parts, axis=0)


def _check_exportable(predictor, card: dict[str, Any]) -> None:
    from tasks.inputs.series import SummaryLogistic

    ensemble = predictor.ensemble
    if ensemble:
        if not isinstance(predictor.baseline, SummaryLogistic):
            raise NotExportable(f"the baseline is a {type(predictor.baseline).__name__}; the export re-expresses "
                                f"only the {SummaryLogistic.FAMILY} baseline in TensorFlow")
        # the order the served model reads the card's ensemble in: one part alone, a stack, an average
        if ensemble.get("served") not in ("rnn", "baseline") and (ensemble.get("stack") or "rnn_weight" not in ensemble):
            raise NotExportable(f"the card's ensemble is served as {ensemble.get('served') or 'a stack'}; the export "
                                "re-expresses only an average of probabilities (rnn_weight) or one part alone")


def series_decision(predictor, card: dict[str, Any]):
    """The series Predictor's whole decision as a TensorFlow function of ``(values, lengths)``."""
    import tensorflow as tf

    options, classes, threshold = predictor.options, predictor.classes, predictor.threshold
    n_features, ensemble = int(card["n_features"]), predictor.ensemble or {}
    binary = len(classes) == 2
    baseline = predictor.baseline if ensemble else None
    served = ensemble.get("served") if ensemble.get("served") in ("rnn", "baseline") else ("average" if ensemble else "rnn")
    missing = "interpolate" if options.missing == "drop" else options.missing  # as Predictor.probabilities does

    def prepare(row):
        series = row[0][: row[1]]
        if missing == "interpolate":
            series = tf.cond(tf.reduce_any(tf.math.is_nan(series)), lambda: _interpolate(series), lambda: series)
        else:
            series = tf.where(tf.math.is_nan(series), tf.cast(options.fill_value, tf.float32), series)
        if options.max_steps is not None:
            series = series[: options.max_steps]
        if options.resample_to is not None:
            series = tf.cast(_resample(series, options.resample_to), tf.float32)
        if options.normalise == "series":  # as tasks.inputs.series.z_normalise
            scale = tf.math.reduce_std(series, axis=0)
            series = (series - tf.reduce_mean(series, axis=0)) / tf.where(scale > 1e-8, scale, tf.ones_like(scale))
        features = _summary_features(series, baseline.shape_steps) if baseline is not None else tf.zeros([0], tf.float64)
        return tf.RaggedTensor.from_tensor(series[tf.newaxis]), features

    def decide(values, lengths):
        prepared, features = tf.map_fn(prepare, (values, lengths), fn_output_signature=(
            tf.RaggedTensorSpec([1, None, n_features], tf.float32, ragged_rank=1), tf.TensorSpec([None], tf.float64)))
        padded = tf.squeeze(prepared, axis=1).to_tensor(default_value=float("nan"))
        rnn = tf.cast(predictor.model(padded, training=False), tf.float64)
        rnn = tf.reshape(rnn, [-1]) if binary else rnn
        if baseline is None or served == "rnn":
            probabilities = rnn
        else:
            scores = tf.matmul((features - baseline.mean) / baseline.scale, tf.constant(baseline.coef.T)) + baseline.intercept
            base = tf.sigmoid(tf.reshape(scores, [-1])) if baseline.coef.shape[0] == 1 else tf.nn.softmax(scores)
            weight = {"baseline": 0.0}.get(served, float(ensemble.get("rnn_weight", 1.0)))
            probabilities = weight * rnn + (1 - weight) * base
        index = tf.cast(probabilities >= threshold, tf.int32) if binary else tf.argmax(probabilities, axis=1, output_type=tf.int32)
        return {"probabilities": probabilities, "label": tf.gather(tf.constant(classes), index)}

    return decide


# What each kind exports with; a kind missing here is refused, with the reason.
EXPORTS = {"series_classification": series_decision}
WHY_NOT = {
    "text_classification": "its cleaning (markup, NLTK's word tokenizer, optional lemmas) runs in Python and has no "
                           "exact tf.strings equivalent, and its TF-IDF baseline is a scikit-learn vectoriser; "
                           "serve it with python -m tasks.serve",
    "language_model": "generation samples token by token in Python (tasks.generate); serve it with python -m tasks.serve",
}


def why_not_exportable(kind: str, predictor, card: dict[str, Any]) -> str | None:
    """Why this model's decision cannot be exported as one graph, or None when it can (the
    export still checks its answers)."""
    if kind not in EXPORTS:
        return WHY_NOT[kind]
    try:
        _check_exportable(predictor, card)
    except NotExportable as error:
        return str(error)
    return None


def export_savedmodel(model_dir: Path, target: Path, check: list[np.ndarray]) -> Path:
    """Write the model's whole decision to ``target`` as a SavedModel (Keras' ``ExportArchive``,
    as ``model.export()`` writes one), then check it against the kind's Predictor on the series
    ``check`` and on copies of them with gaps (:func:`with_gaps`): any label or probability further than :data:`TOLERANCE` removes it again and raises
    :class:`NotExportable`."""
    import keras
    import tensorflow as tf

    card = read_card(model_dir)
    kind = kinds.kind_of(card)
    if kind not in EXPORTS:
        raise NotExportable(f"{model_dir}: a {kind} model cannot be exported as one TensorFlow graph: {WHY_NOT[kind]}")
    predictor = kinds.part(kind, "predict").Predictor(model_dir)
    reason = why_not_exportable(kind, predictor, card)
    if reason:
        raise NotExportable(f"{model_dir}: not exported: {reason}")
    archive = keras.export.ExportArchive()
    archive.track(predictor.model)
    signature = [tf.TensorSpec([None, None, int(card["n_features"])], tf.float32, name="values"),
                 tf.TensorSpec([None], tf.int32, name="lengths")]
    archive.add_endpoint(name="serve", fn=tf.function(EXPORTS[kind](predictor, card)), input_signature=signature)
    archive.write_out(str(target), verbose=False)
    try:
        _compare(tf.saved_model.load(str(target)), predictor, check + with_gaps(check[:GAPPY]), int(card["n_features"]))
    except NotExportable:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return target


def with_gaps(series: list[np.ndarray], seed: int = 0) -> list[np.ndarray]:
    """Copies of ``series`` with missing values: a few single ones, and every other copy with its
    first feature missing throughout (the cleaning's edge cases, which a test split may lack)."""
    rng = np.random.default_rng(seed)
    gappy = []
    for number, item in enumerate(series):
        item = item.copy()
        item[rng.integers(0, len(item), max(1, len(item) // 5)), rng.integers(0, item.shape[1])] = np.nan
        if number % 2:
            item[:, 0] = np.nan
        gappy.append(item)
    return gappy


def padded_batch(series: list[np.ndarray], n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """``serve``'s inputs for a list of (steps, features) series: NaN-padded values and lengths."""
    values = np.full((len(series), max(len(item) for item in series), n_features), np.nan, np.float32)
    for row, item in enumerate(series):
        values[row, : len(item)] = item
    return values, np.asarray([len(item) for item in series], np.int32)


def _compare(exported, predictor, check: list[np.ndarray], n_features: int) -> None:
    from tasks.targets.classification import predictions

    expected = np.asarray(predictor.probabilities(check))
    answer = exported.serve(*padded_batch(check, n_features))
    got = answer["probabilities"].numpy()
    labels = [label.decode() for label in answer["label"].numpy()]
    wanted = [predictor.classes[index] for index in predictions(expected, predictor.threshold)]
    worst = float(np.max(np.abs(got - expected))) if len(check) else 0.0
    if worst > TOLERANCE or labels != wanted:
        raise NotExportable(f"the exported graph answers differently from the served model on {len(check)} series "
                            f"(largest probability difference {worst:.2e}; {sum(a != b for a, b in zip(labels, wanted))} "
                            "labels differ); not exported")
