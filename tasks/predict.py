"""Batch inference: ``python -m tasks.predict INPUT -o OUT.csv [--text-column text]``.

Loads ``models/`` (Keras safe mode) and scores every row (text classifiers: each row's text,
cleaned with the options the model was trained with; series classifiers: each series of a
``.ts`` file or long table). Writes the input, every column as it was, with the predictions in
columns of their own: ``predicted_label`` and ``predicted_probability`` (a two-class model: the
positive probability; the label at its threshold) or ``predicted_probability_<class>`` per
class. An input that already has a column of one of those names is refused; so are an output
that is the input itself, a folder, or inside the model folder, ``.git`` or ``.dvc``. The
output's folder is created when missing. A language model continues text instead:
``python -m tasks.generate``.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from tasks import kinds
from tasks.core.artifacts import MODEL_DIR, read_card
from tasks.core.common import PipelineError, check_target, run_main

PROTECTED_FOLDERS = (".git", ".dvc")


def check_arguments(source: Path, output: str | Path, model_dir: Path) -> None:
    """The cheap checks, before any model loads: the input is a file; the output is a file name
    that is neither the input (same path, link or inode) nor a folder, nor inside the model
    folder, ``.git`` or ``.dvc``."""
    if not source.exists():
        raise PipelineError(f"input {source}: no such file")
    if not source.is_file():
        raise PipelineError(f"input {source}: is {'a folder' if source.is_dir() else 'not a regular file'}; "
                            "give the file to score")
    try:
        target = check_target(output, kind="file")
    except PipelineError as error:
        raise PipelineError(f"-o/--output {error}") from None
    if target.resolve() == source.resolve() or (target.exists() and os.path.samefile(target, source)):
        raise PipelineError(f"-o/--output {output}: is the input file {source}; write the predictions to another file")
    resolved, models = target.resolve(), model_dir.resolve()
    if models in resolved.parents:
        raise PipelineError(f"-o/--output {output}: is inside the model folder {model_dir}; write the predictions elsewhere")
    protected = [part for part in resolved.parts[:-1] if part in PROTECTED_FOLDERS]
    if protected:
        raise PipelineError(f"-o/--output {output}: is inside a {protected[0]} folder; write the predictions elsewhere")


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m tasks.predict", description=__doc__.splitlines()[0])
    parser.add_argument("input", type=Path, help="CSV (optionally .gz), Parquet or JSONL with a text column; "
                                                 "for series models a .ts file or a long table")
    parser.add_argument("--text-column", default="text", help="text classifiers: the column to score")
    parser.add_argument("--id-column", help="series in a long table: the column naming each row's series")
    parser.add_argument("--order-column", help="series in a long table: the column ordering a series' rows")
    parser.add_argument("-o", "--output", required=True,  # a str: Path("") would read as "."
                        help="the CSV to write (replaced if it exists; its folder is created if missing); "
                             "never the input, a folder or a file in the model folder")
    parser.add_argument("--model-dir", type=Path, default=MODEL_DIR)
    args = parser.parse_args(argv)
    check_arguments(args.input, args.output, args.model_dir)
    part = kinds.part(kinds.kind_of(read_card(args.model_dir)), "predict")
    rows = part.predict_file(args.input, Path(args.output), args.model_dir, text_column=args.text_column,
                             id_column=args.id_column, order_column=args.order_column)
    print(f"predict: {rows} rows -> {args.output}")


if __name__ == "__main__":
    run_main(main)
