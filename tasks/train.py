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

from tasks import kinds
from tasks.core.artifacts import (
    LIVE_DIR,
    MODEL_DIR,
    PRETRAINED_DIR,
    TOKENIZED_DIR,
    TRAIN_SUMMARY,
    read_tokenized_meta,
)
from tasks.core.common import atomic_path, load_params, run_main, write_json
from tasks.networks.training import checkpoint_dir


def main() -> None:
    """Run the train stage with ``params.yaml`` ``train``."""
    meta = read_tokenized_meta()
    kind = kinds.kind_of(meta)
    params = kinds.settings(load_params("train"), kind, "params.yaml: train")
    backups = checkpoint_dir("train", params, TOKENIZED_DIR, PRETRAINED_DIR)
    with atomic_path(MODEL_DIR, kind="dir") as tmp_model, atomic_path(LIVE_DIR, kind="dir") as tmp_live:
        tmp_model.mkdir(parents=True)
        summary = kinds.part(kind, "train").train(params, TOKENIZED_DIR, tmp_model, tmp_live, backups)
    write_json(TRAIN_SUMMARY, summary)
    print(f"train: {summary['epochs_run']} epochs ({kind}) -> {MODEL_DIR}")


if __name__ == "__main__":
    run_main(main)
