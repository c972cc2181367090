"""Stage 4, tokenize: fit what turns cleaned data into model input, on the train split only.

For text that is the vocabulary (:mod:`tasks.inputs.vocabulary`); for numeric series the per-feature
scaling statistics. Either is a versioned artifact in ``data/tokenized/`` that training builds
into the saved model, so training and inference cannot drift apart. Writes the directory
together: the kind's artifact files, ``meta.json`` and ``{train,validation}.parquet`` (the
encoded splits training reads). The test split is not read here: evaluation encodes it with
the saved model, so a change to test rows never retrains anything.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from tasks import clean, kinds
from tasks.core.common import PipelineError, atomic_path, load_params, read_parquet, run_main

OUTPUT_DIR = Path("data/tokenized")
META_FILE = "meta.json"


def write_files(files: dict[str, Any], directory: Path) -> None:
    """Write a kind's output files by type: text, JSON (dict) or Parquet (DataFrame)."""
    for name, content in files.items():
        path = directory / name
        if isinstance(content, pd.DataFrame):
            content.to_parquet(path, index=False)
        elif isinstance(content, dict):
            path.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n")
        elif isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            raise TypeError(f"{name}: cannot write {type(content).__name__}")


def read_meta(directory: Path = OUTPUT_DIR) -> dict[str, Any]:
    path = directory / META_FILE
    if not path.exists():
        raise PipelineError(f"{path}: missing input; run the tokenize stage first (dvc repro)")
    return json.loads(path.read_text())


def main() -> None:
    """Run the tokenize stage with ``params.yaml`` ``tokenize``."""
    clean_meta = clean.read_meta()
    kind = kinds.of(clean_meta)
    params = kinds.settings(load_params("tokenize"), kinds.name(kind), "params.yaml: tokenize")
    splits = {name: read_parquet(clean.OUTPUT_DIR / f"{name}.parquet", "clean") for name in ("train", "validation")}
    files = kind.featurize(splits, clean_meta, params)
    with atomic_path(OUTPUT_DIR, kind="dir") as tmp:
        tmp.mkdir()
        write_files(files, tmp)
    print(f"tokenize: {', '.join(sorted(files))} -> {OUTPUT_DIR}")


if __name__ == "__main__":
    run_main(main)
