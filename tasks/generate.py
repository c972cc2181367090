"""Continue a prompt with the trained language model.

    python -m tasks.generate "the jury said" --words 30 --temperature 0.8 --top-k 40 --seed 1

The prompt is cleaned as the training text was (lowercased, NLTK tokens); words the model has
never seen map to its rare-word token instead of failing. The same seed gives the same text.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from tasks.common import run_main
from tasks.train import MODEL_DIR


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tasks.generate", description=__doc__.splitlines()[0])
    parser.add_argument("prompt", help="the text to continue")
    parser.add_argument("--words", type=int, default=20, help="how many tokens to add (default 20)")
    parser.add_argument("--temperature", type=float, default=1.0, help="below 1: safer choices; above 1: more varied")
    parser.add_argument("--top-k", type=int, default=None, help="sample among the K most probable tokens only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model-dir", type=Path, default=MODEL_DIR)
    parser.add_argument("--json", action="store_true", help="print the tokens and settings as JSON")
    args = parser.parse_args(argv)
    if args.words < 0:
        parser.error("--words must be 0 or more")
    from tasks.kinds.language_model import Generator

    result = Generator(args.model_dir).continue_text(args.prompt, args.words, args.temperature, args.top_k, args.seed)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.prompt} ... {result['text']}")


if __name__ == "__main__":
    run_main(main)
