"""Serve a model over HTTP: ``python -m tasks.serve [--model-dir DIR | --stage STAGE] [--port 8000]``.

Answers ``POST /predict`` (a classifier: ``{"rows": [{"text": "..."}]}`` or, for series,
``{"rows": [{"values": [[...], ...]}]}``, steps x features) with one object per row holding the
fields ``tasks.predict`` writes as columns (``label``, ``probability`` or
``probability_<class>``), ``POST /generate`` (a language model: prompt, words, temperature,
top_k, seed, as ``tasks.generate``), ``GET /model`` and ``GET /health``. It serves a registry stage
(default: ``prod``, the champion) of ``--repo`` (this checkout, a bare repository or a git URL) or a
model folder, and swaps in a new version without dropping a request when the stage (or the
folder) changes. Bound to 127.0.0.1 unless told otherwise; ``RNNFLOW_SERVE_TOKEN``, when set, is
the bearer token every request but ``/health`` must carry.

``python -m tasks.serve --model-dir models --export-savedmodel DIR`` writes the model's whole
decision as a SavedModel for TF Serving instead (series classifiers; checked against the served
model on the checkout's test split, and refused with the reason where it cannot answer the same:
:mod:`tasks.serving.export`).
"""
from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
from pathlib import Path

from tasks.core.artifacts import MODEL_DIR
from tasks.core.common import PipelineError, run_main

TOKEN_VARIABLE = "RNNFLOW_SERVE_TOKEN"


def positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {number}")
    return number


def _loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


def export(model_dir: Path, target: Path) -> None:
    """The SavedModel export, checked on the test split of the checkout it runs in."""
    from tasks.core.artifacts import CLEAN_DIR, read_card
    from tasks.core.common import check_target, read_parquet
    from tasks.inputs.series import unpack
    from tasks.serving.export import export_savedmodel

    if target.exists():
        raise PipelineError(f"--export-savedmodel {target}: exists; give a new folder")
    check_target(target, kind="dir")
    card = read_card(model_dir)
    test = read_parquet(CLEAN_DIR / "test.parquet", "the clean stage") if "n_features" in card else None
    check = unpack(test["values"], int(card["n_features"])) if test is not None else []
    export_savedmodel(model_dir, target, check)
    print(f"exported {model_dir} to {target} (checked on {len(check)} test series and copies with gaps: the same labels, "
          "probabilities within 1e-6)")


def main(argv: list[str] | None = None) -> None:
    from flows.registry import ARTIFACT, CHAMPION_STAGE, RegistryError, RegistrySource

    parser = argparse.ArgumentParser(prog="python -m tasks.serve", description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--model-dir", type=Path, help="serve this model folder (models/, champion/model) instead of "
                                                      "a registry stage")
    where.add_argument("--stage", help=f"the registry stage to serve (default {CHAMPION_STAGE}: the champion)")
    parser.add_argument("--repo", default=".", help="the registry: a checkout, bare repository or git URL (default .)")
    parser.add_argument("--name", default=ARTIFACT, help=f"the registry's artifact (default {ARTIFACT})")
    parser.add_argument("--host", default="127.0.0.1", help="the address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--max-body-bytes", type=positive, default=2 * 1024 * 1024, help="default 2 MiB")
    parser.add_argument("--max-rows", type=positive, default=1024, help="rows per /predict request (default 1024)")
    parser.add_argument("--poll-seconds", type=float, default=10.0,
                        help="how often to look for a new version (default 10)")
    parser.add_argument("--export-savedmodel", type=Path, metavar="DIR",
                        help="write --model-dir's decision as a TF SavedModel to DIR (a new folder) and exit")
    args = parser.parse_args(argv)
    if args.export_savedmodel is not None:
        export(args.model_dir or MODEL_DIR, args.export_savedmodel)
        return
    token = os.environ.get(TOKEN_VARIABLE) or None
    if not _loopback(args.host) and not token:
        print(f"warning: serving on {args.host} without a token: anyone who reaches it can query the model "
              f"(set {TOKEN_VARIABLE})", file=sys.stderr)

    import uvicorn

    from tasks.serving.app import Limits, create_app
    from tasks.serving.slot import FolderSource, ModelSlot

    if args.model_dir is not None:
        if not (args.model_dir / "model.json").is_file():
            raise PipelineError(f"--model-dir {args.model_dir}: no model card (model.json); give a trained model's folder")
        source = FolderSource(args.model_dir)
    else:
        source = RegistrySource(args.repo, args.stage or CHAMPION_STAGE, args.name)
    slot = ModelSlot(source)
    try:
        slot.refresh()  # the first version loads before the port opens
    except RegistryError as error:
        raise PipelineError(str(error)) from None
    slot.watch(args.poll_seconds)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    app = create_app(slot, Limits(args.max_body_bytes, args.max_rows, token))
    print(f"serving {slot.current.info['name']} {slot.current.info['version']} on http://{args.host}:{args.port}",
          flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    run_main(main)
