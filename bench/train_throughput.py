"""Training throughput per device and precision: the text classifier (samples/s) and the
language model (tokens/s).

``--task classifier`` (default): the project's classifier (tasks.networks.model.build_text_classifier
with params.yaml ``train.text_classification``), TensorFlow set up as the train stage does
(tasks.networks.training.configure_tensorflow: seeds, op determinism on CPU only, mixed precision),
``model.fit`` timed on synthetic token ids: 20,000 sequences, vocabulary 10,000, lengths 3..122
with a mean near 70 (the clothing reviews as the clean stage's defaults leave them, title and
punctuation kept; max_len 122, their 95th percentile).

* CPU, float32, with the project's length-bucketed tf.data pipeline (tasks.networks.training.ragged_dataset)
  and with every sequence padded to the full length (what a fixed-length pipeline costs),
  and, each against the bucketed run, what might make a CPU step faster: no op determinism
  (which the train stage turns on on CPU), XLA (``jit_compile``, each bucket padded to its
  boundary so that shapes repeat), twice the batch size, and mixed bfloat16;
* on a GPU, when one exists: float32 and mixed_float16, bucketed and fixed, and a bigger batch.

``--task language_model``: the language model's training step (tasks.networks.lm: truncated BPTT chunks,
sampled softmax) with params.yaml ``train.language_model`` (a 256-unit LSTM) over a Zipf-like
stream in Brown's vocabulary size (13,190 ids with words seen 4 times or more), timed in
tokens/s: on CPU with and without XLA and at two batch sizes; on a GPU in float32 and mixed
precision (cuDNN kernels).

Each configuration runs in its own process (a clean TensorFlow: device visibility and the
mixed precision policy are per process). Run on any machine from the repository root::

    python bench/train_throughput.py                          # the classifier, every configuration here
    python bench/train_throughput.py --task language_model    # the language model
    python bench/train_throughput.py --quick                  # fewer steps

Prints one JSON object: {"results": [{device, mixed_precision, ..., samples_per_s or
tokens_per_s, cudnn_eligible, ...}, ...], ...}. Only training is timed (a warm-up traces the
graphs first); the train stage's figures also include each epoch's validation pass.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VOCAB_SIZE = 10_000
BROWN_VOCABULARY = 13_190  # Brown's first 800,000 tokens, lowercased, words seen 4 times or more
MAX_LEN = 122
SEQUENCES = 20_000
POSITIVE_RATE = 0.85  # the clothing reviews' class balance (ratings 4-5 against 1-2)


def dataset_padding_fraction(dataset) -> float:
    """The share of padding (id 0) over every batch of a dataset, whichever pipeline made it."""
    padded = real = 0
    for sequences, _ in dataset:
        ids = sequences.numpy()
        padded, real = padded + ids.size, real + int((ids != 0).sum())
    return 1 - real / padded if padded else 0.0


def synthetic_table(sequences: int, seed: int = 0):
    """Token-id sequences like the clothing reviews: lengths 3..MAX_LEN (mean ~70), Zipf-like ids."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    # Uniform with the top clipped: many reviews hit the 500-character cap, so ~10% sit at max_len.
    lengths = np.clip(np.rint(rng.uniform(3, MAX_LEN + 13, sequences)), 3, MAX_LEN).astype(int)
    ids = [np.minimum(rng.zipf(1.3, length) + 1, VOCAB_SIZE - 1).astype(np.int32) for length in lengths]
    labels = (rng.random(sequences) < POSITIVE_RATE).astype("int8")
    return pd.DataFrame({"id": [f"s{i}" for i in range(sequences)], "label": labels, "ids": ids})


def fixed_dataset(table, batch_size: int, seed: int):
    """Every sequence right-padded to MAX_LEN (no bucketing): the fixed-length alternative."""
    import numpy as np
    import tensorflow as tf

    padded = np.zeros((len(table), MAX_LEN), np.int32)
    for row, ids in enumerate(table["ids"]):
        padded[row, : len(ids)] = ids
    labels = table["label"].to_numpy().astype(np.float32)
    dataset = tf.data.Dataset.from_tensor_slices((padded, labels)).shuffle(len(table), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def boundary_dataset(table, batch_size: int, seed: int):
    """The bucketed pipeline with each batch padded to its bucket's boundary (not to its longest
    sequence): a handful of shapes, so XLA compiles each once."""
    import numpy as np
    import tensorflow as tf

    from tasks.networks.training import length_boundaries

    lengths = table["ids"].map(len).to_numpy()
    boundaries = length_boundaries(lengths) + [int(lengths.max()) + 1]  # every length below the last boundary
    flat = tf.constant(np.concatenate(table["ids"].to_list()))
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(table))
    labels = table["label"].to_numpy().astype(np.float32)
    dataset = tf.data.Dataset.from_tensor_slices((starts[order], lengths[order], labels[order])).map(
        lambda start, length, label: (flat[start : start + length], label))
    dataset = dataset.bucket_by_sequence_length(lambda ids, label: tf.shape(ids)[0], bucket_boundaries=boundaries,
                                                bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
                                                pad_to_bucket_boundary=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


def rnn_layers(model) -> list:
    from keras import layers

    return [layer for layer in model.layers if isinstance(layer, (layers.RNN, layers.Bidirectional))]


def empty_sequence_check(classifier) -> str:
    """Predict a batch holding an all-padding row: on a GPU, cuDNN refuses fully masked sequences."""
    import numpy as np

    batch = np.zeros((2, 8), np.int32)
    batch[0, :3] = [5, 6, 7]
    try:
        classifier.predict_on_batch(batch)
        return "ok"
    except Exception as error:  # InvalidArgumentError from cuDNN's mask assertion
        return f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"


def configured(spec: dict[str, Any], kind: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """params.yaml's train settings for ``kind`` with the spec's precision and batch size, and
    TensorFlow set up on the spec's device (before TensorFlow is imported)."""
    if spec["device"] == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import yaml

    from tasks.kinds import settings
    from tasks.networks.training import configure_tensorflow

    params = settings(yaml.safe_load((ROOT / "params.yaml").read_text())["train"], kind, "train")
    bfloat16 = spec["mixed_precision"] == "bfloat16"  # the train stage has no such setting: tried here only
    params = {**params, "mixed_precision": False if bfloat16 else spec["mixed_precision"], "batch_size": spec["batch_size"]}
    device = configure_tensorflow(params)
    if bfloat16:
        import keras

        keras.mixed_precision.set_global_policy("mixed_bfloat16")
        device["mixed_precision"] = "bfloat16"
    return params, device


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """One configuration, in this process (spawned by main with --one)."""
    params, device = configured(spec, "text_classification")
    import keras
    import numpy as np
    import tensorflow as tf
    from tensorflow.python.framework.config import disable_op_determinism, is_op_determinism_enabled  # as Keras checks it

    from tasks.networks.fit import class_weights
    from tasks.networks.model import build_text_classifier, cudnn_eligible
    from tasks.networks.training import optimizer, ragged_dataset

    if spec.get("op_determinism") is False:  # what the deterministic kernels cost (the train stage turns them on on CPU)
        disable_op_determinism()

    table = synthetic_table(spec["sequences"])
    if spec["pipeline"] == "bucketed":
        dataset = ragged_dataset(list(table["ids"]), table["label"].to_numpy().astype(np.float32), params["batch_size"],
                                 params["seed"], shuffle=True)
    elif spec["pipeline"] == "bucketed_to_boundary":
        dataset = boundary_dataset(table, params["batch_size"], params["seed"])
    else:
        dataset = fixed_dataset(table, params["batch_size"], params["seed"])
    classifier = build_text_classifier(params, VOCAB_SIZE)
    classifier.compile(optimizer=optimizer(params, "train.text_classification"), loss="binary_crossentropy",
                       metrics=["accuracy", keras.metrics.AUC(name="auc")], jit_compile=bool(spec.get("jit_compile")))
    weights = class_weights(table["label"].to_numpy(), 2, params["class_weight"])

    started = time.perf_counter()
    classifier.fit(dataset, epochs=1, class_weight=weights, verbose=0)  # traces the graphs
    warmup_s = time.perf_counter() - started
    started, cpu_started = time.perf_counter(), time.process_time()
    classifier.fit(dataset, epochs=spec["epochs"], class_weight=weights, verbose=0)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started

    reasons = {layer.name: cudnn_eligible(layer) for layer in rnn_layers(classifier)}
    gpus = tf.config.list_physical_devices("GPU")
    details = tf.config.experimental.get_device_details(gpus[0]) if gpus else {}
    return {
        **spec,
        "device_name": details.get("device_name", "cpu"),
        "gpus": device["gpus"],
        "mixed_precision": device["mixed_precision"],
        "compute_dtype": keras.mixed_precision.global_policy().compute_dtype,
        "samples_per_s": round(spec["sequences"] * spec["epochs"] / seconds, 1),
        "epoch_s": round(seconds / spec["epochs"], 3),
        # CPU seconds of all threads per epoch: the work, less sensitive than wall time to other load
        "epoch_cpu_s": round(cpu_seconds / spec["epochs"], 3),
        "warmup_epoch_s": round(warmup_s, 3),
        # The layer settings allow cuDNN (tasks.networks.model.cudnn_eligible); the kernel also needs a GPU.
        "cudnn_eligible": not any(reasons.values()),
        "cudnn_kernel": bool(gpus) and not any(reasons.values()),
        "cudnn_reasons": {name: found for name, found in reasons.items() if found},
        "jit_compile": bool(getattr(classifier, "jit_compile", False)),
        "op_determinism": bool(is_op_determinism_enabled()),
        "padding_fraction": round(dataset_padding_fraction(dataset), 4),
        "mean_length": round(float(np.mean(table["ids"].map(len))), 1),
        "empty_sequence_predict": empty_sequence_check(classifier),
        "model": {key: params[key] for key in ("model", "bidirectional", "layers", "units", "embedding_dim", "pooling", "optimizer")},
        "parameters": int(classifier.count_params()),
        "tensorflow": tf.__version__,
    }


def measure_language_model(spec: dict[str, Any]) -> dict[str, Any]:
    """One language-model configuration: tokens/s of the train stage's step (tasks.networks.lm)."""
    params, device = configured(spec, "language_model")
    import keras
    import numpy as np
    import tensorflow as tf

    from tasks.networks import lm, lm_training
    from tasks.networks.model import cudnn_eligible

    model = lm.build(BROWN_VOCABULARY, {key: params[key] for key in lm.ARCHITECTURE_KEYS})
    optimizer = keras.optimizers.Adam(params["learning_rate"])
    optimizer.build(model.trainable_variables)
    step = lm_training._trainer(model, optimizer, params["sampled_softmax"], params["seed"], params["clipnorm"], spec["xla"])
    rng = np.random.default_rng(0)
    stream = np.minimum(rng.zipf(1.2, spec["batch_size"] * params["sequence_length"] * (spec["steps"] + 4) + 1),
                        BROWN_VOCABULARY - 1).astype(np.int32)
    inputs, targets = lm.tbptt_batches(stream, spec["batch_size"], params["sequence_length"])
    state = model.zero_state(spec["batch_size"])
    started = time.perf_counter()
    for chunk in range(3):  # traces (and compiles) the step
        _, _, state = step(inputs[chunk], targets[chunk], state, np.int64(chunk))
    warmup_s = time.perf_counter() - started
    started = time.perf_counter()
    for chunk in range(3, 3 + spec["steps"]):
        loss, tokens, state = step(inputs[chunk], targets[chunk], state, np.int64(chunk))
    float(loss)  # waits for the last step
    seconds = time.perf_counter() - started
    gpus = tf.config.list_physical_devices("GPU")
    details = tf.config.experimental.get_device_details(gpus[0]) if gpus else {}
    reasons = {layer.name: cudnn_eligible(layer) for layer in model.rnns}
    return {
        **spec,
        "device_name": details.get("device_name", "cpu"),
        "gpus": device["gpus"],
        "mixed_precision": device["mixed_precision"],
        "tokens_per_s": round(spec["steps"] * spec["batch_size"] * params["sequence_length"] / seconds, 1),
        "warmup_s": round(warmup_s, 2),
        "cudnn_eligible": not any(reasons.values()),
        "cudnn_kernel": bool(gpus) and not any(reasons.values()) and not spec["xla"],
        "model": {key: params[key] for key in (*lm.ARCHITECTURE_KEYS, "sequence_length", "sampled_softmax")},
        "vocabulary": BROWN_VOCABULARY,
        "tensorflow": tf.__version__,
    }


def language_model_configurations(gpus: int, steps: int, batch_size: int, include_cpu: bool) -> list[dict[str, Any]]:
    base = {"task": "language_model", "steps": steps}
    specs = []
    if gpus:
        specs += [{**base, "device": "gpu", "mixed_precision": mixed, "xla": False, "batch_size": size}
                  for mixed in (False, True) for size in (batch_size, 4 * batch_size)]
    if include_cpu or not gpus:
        specs += [{**base, "device": "cpu", "mixed_precision": False, "xla": xla, "batch_size": size}
                  for xla in (False, True) for size in (batch_size, 2 * batch_size)]
    return specs


def gpu_count() -> int:
    """GPUs TensorFlow sees, asked in a child process (this one stays free of TensorFlow)."""
    code = "import os; os.environ['TF_CPP_MIN_LOG_LEVEL']='3'; import tensorflow as tf; print(len(tf.config.list_physical_devices('GPU')))"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    try:
        return int(completed.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return 0


def configurations(gpus: int, sequences: int, epochs: int, batch_size: int, big_batch: int, include_cpu: bool) -> list[dict[str, Any]]:
    base = {"sequences": sequences, "epochs": epochs, "batch_size": batch_size}
    specs = []
    if gpus:
        for mixed in (False, True):
            for pipeline in ("bucketed", "fixed"):
                specs.append({**base, "device": "gpu", "mixed_precision": mixed, "pipeline": pipeline})
        if big_batch and big_batch != batch_size:
            specs.append({**base, "device": "gpu", "mixed_precision": True, "pipeline": "bucketed", "batch_size": big_batch})
    if include_cpu or not gpus:
        for pipeline in ("bucketed", "fixed"):
            specs.append({**base, "device": "cpu", "mixed_precision": False, "pipeline": pipeline})
        bucketed = {**base, "device": "cpu", "mixed_precision": False, "pipeline": "bucketed"}
        specs += [
            {**bucketed, "op_determinism": False},
            {**bucketed, "pipeline": "bucketed_to_boundary", "jit_compile": True},
            {**bucketed, "batch_size": 2 * batch_size},
            {**bucketed, "mixed_precision": "bfloat16"},
        ]
    return specs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=("classifier", "language_model"), default="classifier")
    parser.add_argument("--quick", action="store_true", help="2,000 sequences, one timed epoch (language model: 10 steps)")
    parser.add_argument("--sequences", type=int, default=None, help=f"synthetic sequences (default {SEQUENCES:,})")
    parser.add_argument("--epochs", type=int, default=None, help="timed epochs after one warm-up epoch (default 2)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: params.yaml train.batch_size")
    parser.add_argument("--big-batch", type=int, default=256, help="one more GPU run with this batch size (0: none)")
    parser.add_argument("--no-cpu", action="store_true", help="skip the CPU runs when a GPU exists")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: one configuration as JSON
    args = parser.parse_args(argv)
    if args.one:
        spec = json.loads(args.one)
        result = measure_language_model(spec) if spec.get("task") == "language_model" else measure(spec)
        print("RESULT " + json.dumps(result), flush=True)
        return

    import yaml

    train = yaml.safe_load((ROOT / "params.yaml").read_text())["train"]
    batch_size = args.batch_size or train[args.task if args.task == "language_model" else "text_classification"]["batch_size"]
    gpus = gpu_count()
    if args.task == "language_model":
        specs = language_model_configurations(gpus, 10 if args.quick else 60, batch_size, include_cpu=not args.no_cpu)
    else:
        sequences = args.sequences or (2000 if args.quick else SEQUENCES)
        epochs = args.epochs or (1 if args.quick else 2)
        specs = configurations(gpus, sequences, epochs, batch_size, args.big_batch, include_cpu=not args.no_cpu)
    results = []
    for spec in specs:
        label = " ".join(f"{key}={value}" for key, value in spec.items() if key not in ("sequences", "epochs", "steps"))
        print(f"[train_throughput] {label}", file=sys.stderr, flush=True)
        completed = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--one", json.dumps(spec)], cwd=ROOT, capture_output=True, text=True
        )
        lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
        if completed.returncode == 0 and lines:
            results.append(json.loads(lines[-1][len("RESULT ") :]))
        else:
            results.append({**spec, "error": (completed.stderr or completed.stdout).strip().splitlines()[-5:]})
        speed = results[-1].get("samples_per_s", results[-1].get("tokens_per_s", results[-1].get("error")))
        print(f"[train_throughput]   -> {speed}", file=sys.stderr, flush=True)
    unit = "tokens_per_s" if args.task == "language_model" else "samples_per_s"
    measured = [result for result in results if unit in result]
    best = max(measured, key=lambda result: result[unit]) if measured else None
    print(
        json.dumps(
            {
                "task": args.task,
                "quick": args.quick,
                "gpus": gpus,
                "cpu_count": os.cpu_count(),
                "load_average": [round(value, 2) for value in os.getloadavg()],
                "best": {key: best[key] for key in ("device", "mixed_precision", "pipeline", "xla", "batch_size",
                                                    "op_determinism", unit) if key in best} if best else None,
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
