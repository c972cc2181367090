"""Stage 5, train: fit the kind's recurrent model on the tokenized train split and save it.

Reads ``data/tokenized/`` and ``params.yaml`` ``train`` (shared settings plus the kind's
subsection). Writes ``models/`` together: ``model.keras`` (what inference loads; for
classifiers raw-ish input in, probabilities out, the vocabulary or scaler inside) and
``model.json`` (the model card: kind, classes, decision threshold, cleaning options, params,
data fingerprint). Per-epoch metrics go to ``dvclive/train`` (DVCLive); ``metrics/train.json``
sums up. A run killed mid-training resumes from its last finished epoch
(:mod:`tasks.networks.training`).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tasks import kinds, tokenize
from tasks.core.common import PipelineError, atomic_path, load_params, run_main, write_json
from tasks.networks.training import PROGRESS_FILE, checkpoint_dir

MODEL_DIR = Path("models")
CARD_FILE = "model.json"
SUMMARY = Path("metrics/train.json")
LIVE_DIR = Path("dvclive/train")
TOKENIZED_DIR = tokenize.OUTPUT_DIR
PRETRAINED_DIR = Path("pretrained")  # the pretrain stage's language model (tasks/pretrain.py)
__all__ = ["PROGRESS_FILE", "MODEL_DIR", "read_card", "main"]


def read_card(model_dir: Path = MODEL_DIR) -> dict[str, Any]:
    """The model card of a trained model (a damaged card is an error that says so, in one line)."""
    from tasks.core.common import damaged_model

    path = model_dir / CARD_FILE
    if not path.exists():
        raise PipelineError(f"{path}: no trained model; run the pipeline first (dvc repro)")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise damaged_model(path, "a model card (JSON)", error) from None
    if not isinstance(card, dict):
        raise damaged_model(path, "a model card (JSON)", f"a JSON {type(card).__name__}, not an object")
    return card


def write_card(model_dir: Path, card: dict[str, Any]) -> None:
    (model_dir / CARD_FILE).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")


def main() -> None:
    """Run the train stage with ``params.yaml`` ``train``."""
    meta = tokenize.read_meta()
    kind = kinds.of(meta)
    params = kinds.settings(load_params("train"), kinds.name(kind), "params.yaml: train")
    backups = checkpoint_dir("train", params, TOKENIZED_DIR, PRETRAINED_DIR)
    with atomic_path(MODEL_DIR, kind="dir") as tmp_model, atomic_path(LIVE_DIR, kind="dir") as tmp_live:
        tmp_model.mkdir(parents=True)
        summary = kind.train(params, TOKENIZED_DIR, tmp_model, tmp_live, backups)
    write_json(SUMMARY, summary)
    print(f"train: {summary['epochs_run']} epochs ({kinds.name(kind)}) -> {MODEL_DIR}")


if __name__ == "__main__":
    run_main(main)
