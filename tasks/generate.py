"""Continue a prompt with the trained language model.

    python -m tasks.generate "the jury said" --words 30 --temperature 0.8 --top-k 40 --seed 1

The prompt is cleaned as the training text was (lowercased, NLTK tokens); words the model has
never seen map to its rare-word token instead of failing. The same seed gives the same text.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from tasks.core.artifacts import MODEL_DIR
from tasks.core.common import PipelineError, run_main

MAX_WORDS = 10_000


def check_arguments(args: argparse.Namespace) -> None:
    """Every setting checked before the model loads; a bad one is a one-line error naming it."""
    if not args.prompt.strip():
        raise PipelineError("the prompt is empty; give the text to continue, e.g. \"the jury said\"")
    if not 0 <= args.words <= MAX_WORDS:
        raise PipelineError(f"--words must be between 0 and {MAX_WORDS}, not {args.words}")
    if not math.isfinite(args.temperature) or args.temperature <= 0:
        raise PipelineError(f"--temperature must be a finite number above 0, not {args.temperature}")
    if args.top_k is not None and args.top_k < 1:
        raise PipelineError(f"--top-k must be a positive integer, not {args.top_k}")
    if args.seed < 0:
        raise PipelineError(f"--seed must be 0 or more, not {args.seed}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tasks.generate", description=__doc__.splitlines()[0])
    parser.add_argument("prompt", help="the text to continue (not empty)")
    parser.add_argument("--words", type=int, default=20, help=f"how many tokens to add, 0 to {MAX_WORDS} (default 20)")
    parser.add_argument("--temperature", type=float, default=1.0,
                        help="above 0 (default 1): below 1, safer choices; above 1, more varied")
    parser.add_argument("--top-k", type=int, default=None,
                        help="sample among the K most probable tokens only (K >= 1; more than the vocabulary: all of it)")
    parser.add_argument("--seed", type=int, default=0, help="0 or more (default 0)")
    parser.add_argument("--model-dir", type=Path, default=MODEL_DIR)
    parser.add_argument("--json", action="store_true", help="print the tokens and settings as JSON")
    args = parser.parse_args(argv)
    check_arguments(args)
    from tasks.inputs.vocabulary import RESERVED
    from tasks.kinds.language_model.predict import Generator

    generator = Generator(args.model_dir)
    tokens = int(generator.card["vocab_size"]) - RESERVED
    if args.top_k is not None and args.top_k > tokens:
        print(f"note: --top-k {args.top_k} is more than the model's {tokens} tokens; sampling among all of them",
              file=sys.stderr)
    result = generator.continue_text(args.prompt, args.words, args.temperature, args.top_k, args.seed)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.prompt} ... {result['text']}")


if __name__ == "__main__":
    run_main(main)
