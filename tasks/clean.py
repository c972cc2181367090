"""Stage 3, clean: the kind's cleaning, then the train/validation/test split.

Reads ``data/validated/reviews.parquet``; writes ``data/clean/{train,validation,test}.parquet``
and ``data/clean/meta.json`` (the kind, the class names and the cleaning options, which
inference must apply again) and ``metrics/clean.json``. What cleaning means is the kind's
(``tasks/kinds``); the split helpers are shared (:mod:`tasks.core.splits`).

Document splits hash each row's stable id (from ingest) with the seed: a row always lands in
the same split, whatever the cleaning options, and adding rows later never moves a test row.
The hash is uniform whatever the class, so every split keeps the whole's class balance up to
sampling noise (within 1% on the 20,000 clothing reviews). ``stratify`` ranks rows by that
hash within each class instead: exact class balance, for small data, at the price that
adding rows can move rows between splits. A ``split`` column from the source (an archive's
own train/test files) is kept: its test rows are the test split, validation comes from train.
A ``group`` column from the source (IMDB: reviews of the same movie) keeps each group in one
split, as unseen data would arrive; groups are ranked within their class, so class shares stay
exact.
"""
from __future__ import annotations

from tasks import kinds
from tasks.core.artifacts import CLEAN_DIR, CLEAN_SUMMARY, VALIDATED
from tasks.core.common import (
    load_params,
    read_parquet,
    read_table_metadata,
    run_main,
    write_json,
)
from tasks.core.splits import write_cleaned


def main() -> None:
    """Run the clean stage with ``params.yaml`` ``clean``."""
    section = load_params("clean")
    metadata = read_table_metadata(VALIDATED) if VALIDATED.exists() else {}
    frame = read_parquet(VALIDATED, "validate")
    kind = kinds.kind_of(metadata)
    cleaned = kinds.part(kind, "clean").clean(frame, metadata, kinds.settings(section, kind, "params.yaml: clean"))
    cleaned.meta = {**metadata, **cleaned.meta}
    write_cleaned(cleaned, CLEAN_DIR)
    write_json(CLEAN_SUMMARY, cleaned.summary)
    print(f"clean: {cleaned.summary['rows']} -> {CLEAN_DIR}")


if __name__ == "__main__":
    run_main(main)
