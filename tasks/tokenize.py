"""Stage 4, tokenize: fit what turns cleaned data into model input, on the train split only.

For text that is the vocabulary (:mod:`tasks.inputs.vocabulary`); for numeric series the per-feature
scaling statistics. Either is a versioned artifact in ``data/tokenized/`` that training builds
into the saved model, so training and inference cannot drift apart. Writes the directory
together: the kind's artifact files, ``meta.json`` and ``{train,validation}.parquet`` (the
encoded splits training reads). The test split is not read here: evaluation encodes it with
the saved model, so a change to test rows never retrains anything.
"""
from __future__ import annotations

from tasks import kinds
from tasks.core.artifacts import CLEAN_DIR, TOKENIZED_DIR, read_clean_meta
from tasks.core.common import (
    atomic_path,
    load_params,
    read_parquet,
    run_main,
    write_files,
)


def main() -> None:
    """Run the tokenize stage with ``params.yaml`` ``tokenize``."""
    clean_meta = read_clean_meta()
    kind = kinds.kind_of(clean_meta)
    params = kinds.settings(load_params("tokenize"), kind, "params.yaml: tokenize")
    splits = {name: read_parquet(CLEAN_DIR / f"{name}.parquet", "clean") for name in ("train", "validation")}
    files = kinds.part(kind, "tokenize").featurize(splits, clean_meta, params)
    with atomic_path(TOKENIZED_DIR, kind="dir") as tmp:
        tmp.mkdir()
        write_files(files, tmp)
    print(f"tokenize: {', '.join(sorted(files))} -> {TOKENIZED_DIR}")


if __name__ == "__main__":
    run_main(main)
