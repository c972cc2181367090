"""Text classification, train: the recurrent classifier, its decision and its card."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.core.common import PipelineError
from tasks.inputs import vocabulary
from tasks.kinds.text_classification import BASELINE_FILE
from tasks.targets.classifier import train as fitting
from tasks.targets.labels import is_binary


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
    from tasks.networks.fit import Phase
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
    phases = [Phase(params["freeze_epochs"], params["learning_rate"], tuple(encoder)),
              Phase(params["epochs"], params["finetune_learning_rate"])]
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


WHERE = "train.text_classification"


def train(params: dict[str, Any], tokenized_dir: Path, model_dir: Path, live_dir: Path, checkpoint_dir: Path,
          devices: list[str] | None = None) -> dict[str, Any]:
    """Fit the classifier over token ids, decide its threshold (and ensemble weight), save the text-in model.

    ``devices``: train over these devices with MirroredStrategy (tests); by default several GPUs are used when visible.
    """
    from tasks.core.artifacts import PRETRAINED_DIR
    from tasks.networks.model import build_text_model

    words, meta = vocabulary.read_vocabulary(tokenized_dir)
    fitted = fitting.fit(params, tokenized_dir, meta["classes"], WHERE, live_dir, checkpoint_dir, _sequences,
                         lambda: build(params, meta, words, PRETRAINED_DIR), devices=devices)
    rnn = in_order(fitted.model, _sequences(fitted.tables["validation"]), is_binary(meta["classes"]))
    build_text_model(fitted.model, words, meta["max_len"]).save(model_dir / "model.keras")
    summary, ensemble = fitting.serve(params, meta, fitted, rnn, model_dir, BASELINE_FILE, WHERE, {
        "init": fitted.init, "max_len": meta["max_len"], "vocab_size": meta["vocab_size"]})
    return {
        **summary,
        "ensemble_rnn_weight": ensemble["rnn_weight"] if ensemble else None,
        "padding_fraction": round(fitted.padding_fraction, 4),
        "padding_fraction_fixed_length": meta["padding_fraction_fixed_length"],
    }
