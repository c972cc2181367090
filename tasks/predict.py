"""Batch inference: ``python -m tasks.predict INPUT -o OUT.csv [--text-column text]``.

Loads ``models/`` (Keras safe mode) and scores every row (text classifiers: each row's text,
cleaned with the options the model was trained with; series classifiers: each series of a
``.ts`` file or long table). Writes the input with the predicted class and each class's
probability (a two-class model: the positive probability and the label at its threshold).
A language model continues text instead: ``python -m tasks.generate``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from tasks import kinds
from tasks.common import run_main
from tasks.train import MODEL_DIR, read_card


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", type=Path, help="CSV (optionally .gz), Parquet or JSONL with a text column; "
                                                 "for series models a .ts file or a long table")
    parser.add_argument("--text-column", default="text", help="text classifiers: the column to score")
    parser.add_argument("--id-column", help="series in a long table: the column naming each row's series")
    parser.add_argument("--order-column", help="series in a long table: the column ordering a series' rows")
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--model-dir", type=Path, default=MODEL_DIR)
    args = parser.parse_args(argv)
    kind = kinds.of(read_card(args.model_dir))
    rows = kind.predict_file(args.input, args.output, args.model_dir, text_column=args.text_column,
                             id_column=args.id_column, order_column=args.order_column)
    print(f"predict: {rows} rows -> {args.output}")


if __name__ == "__main__":
    run_main(main)
