"""Every artifact path of the pipeline, and the cards and metadata files that travel with them.

Each stage writes what is named here and the next reads it from here: no module reaches into a
stage module for a path. ``dvc.yaml`` names the same paths (``tests/test_stage_deps.py`` checks
the two agree).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tasks.core.common import PipelineError

# source
SOURCE_MANIFEST = Path("data/source.json")
PRETRAIN_MANIFEST = Path("data/pretrain_source.json")
STAGE_CODE_DIR = Path("data/stages")  # one manifest per stage: the code and params it runs for this data
# ingest
INGESTED = Path("data/ingested/reviews.parquet")
INGEST_SUMMARY = Path("metrics/ingest.json")
# validate
VALIDATED = Path("data/validated/reviews.parquet")
QUARANTINE = Path("data/validated/quarantine.parquet")
VALIDATION_SUMMARY = Path("reports/validation/summary.json")
REFERENCE_PROFILE = Path("reports/validation/reference_profile.json")
DATA_DOCS = Path("reports/data_docs")
EDA_DIR = Path("reports/eda")
# clean
CLEAN_DIR = Path("data/clean")
CLEAN_SUMMARY = Path("metrics/clean.json")
# tokenize
TOKENIZED_DIR = Path("data/tokenized")
# baseline
BASELINE_DIR = Path("baseline")
BASELINE_METRICS = Path("metrics/baseline.json")
# pretrain
PRETRAINED_DIR = Path("pretrained")
PRETRAINED_CARD = "card.json"
PRETRAIN_SUMMARY = Path("metrics/pretrain.json")
# train
MODEL_DIR = Path("models")
CARD_FILE = "model.json"
TRAIN_SUMMARY = Path("metrics/train.json")
LIVE_DIR = Path("dvclive/train")
CHECKPOINT_ROOT = Path("checkpoints")  # resumable training backups and live progress: never versioned
PROGRESS_FILE = CHECKPOINT_ROOT / "progress.json"
# evaluate
EVALUATE_METRICS = Path("metrics/evaluate.json")
PLOTS_DIR = Path("plots/evaluate")
REPORT_DIR = Path("reports/evaluation")

META_FILE = "meta.json"  # beside the clean splits and the tokenized features: kind, classes, options


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


def read_json(path: Path, stage: str) -> dict[str, Any]:
    """A JSON artifact, with an error that says which stage makes it."""
    if not path.exists():
        raise PipelineError(f"{path}: missing; run the {stage} stage first (dvc repro)")
    return json.loads(path.read_text())


def read_clean_meta(directory: Path = CLEAN_DIR) -> dict[str, Any]:
    return read_json(directory / META_FILE, "clean")


def read_tokenized_meta(directory: Path = TOKENIZED_DIR) -> dict[str, Any]:
    return read_json(directory / META_FILE, "tokenize")


def read_pretrained_card(directory: Path = PRETRAINED_DIR) -> dict[str, Any]:
    return read_json(directory / PRETRAINED_CARD, "pretrain")


def read_manifest(path: Path = SOURCE_MANIFEST) -> dict[str, Any]:
    return read_json(path, "source")
