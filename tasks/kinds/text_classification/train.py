"""Text classification, train: the recurrent classifier, its decision and its card."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.core.common import PipelineError, read_parquet
from tasks.inputs import vocabulary
from tasks.kinds.text_classification import BASELINE_FILE
from tasks.targets import classification


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
    from tasks.core.artifacts import read_pretrained_card
    from tasks.inputs.vocabulary import vocabulary_digest
    from tasks.networks import lm
    from tasks.networks.model import initialise_from_language_model

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
    from tasks.core.artifacts import BASELINE_DIR, PRETRAINED_DIR, write_card
    from tasks.networks.model import build_text_model
    from tasks.networks.training import (
        configure_tensorflow,
        distribution,
        padding_fraction,
        ragged_dataset,
    )

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
