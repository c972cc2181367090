"""Task kinds: what differs between classifying text, modelling language and classifying series.

The stages in ``tasks/`` are the pipeline's spine: they read their inputs, write their outputs
atomically and report. What a stage does to the data depends on the task kind, which the ingest
profile decides and records with the ingested table (``kind`` in its metadata); every later
stage reads it from its own input, never from another stage's parameters.

Each kind is a package here with one module per stage that needs it
(``tasks/kinds/<kind>/<stage>.py``), so a stage loads only its own part of its own kind, and
DVC reruns it only when that code changed (``tasks/core/stagecode.py`` lists it per stage).
What each part provides is written down, and checked by a test, in :mod:`tasks.kinds.contract`.
The kinds are built from the input type they read (text: :mod:`tasks.inputs.textclean`,
:mod:`tasks.inputs.vocabulary`; numeric series: :mod:`tasks.inputs.series`) and the target they
predict (classes: :mod:`tasks.targets.classification`; the next token: :mod:`tasks.networks.lm`):

=======================  ==========  ===================
kind                     input       target
=======================  ==========  ===================
text_classification      text        binary or K classes
language_model           text        next token
series_classification    series      binary or K classes
=======================  ==========  ===================

Each stage's parameter section holds the settings all kinds share at its top level and one
subsection per kind (``train.language_model``...); :func:`settings` merges the two.
"""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from tasks.core.common import PipelineError

KINDS = ("text_classification", "language_model", "series_classification")
DEFAULT = "text_classification"  # tables written before kinds existed
# The part of a kind each stage (and the predict / generate commands) runs.
PARTS = ("ingest", "validate", "clean", "tokenize", "baseline", "train", "evaluate", "predict")


def check(kind: str) -> str:
    if kind not in KINDS:
        raise PipelineError(f"unknown task kind '{kind}'; known: {', '.join(KINDS)}")
    return kind


def kind_of(metadata: dict[str, Any]) -> str:
    """The kind an input's metadata records."""
    return check(metadata.get("kind") or DEFAULT)


def part(kind: str, stage: str) -> ModuleType:
    """The module of ``kind`` that ``stage`` runs: ``tasks.kinds.<kind>.<stage>``."""
    if stage not in PARTS:
        raise ValueError(f"no kind part for stage {stage!r}; parts: {PARTS}")
    return importlib.import_module(f"{__name__}.{check(kind)}.{stage}")


def settings(section: dict[str, Any], kind: str, where: str) -> dict[str, Any]:
    """A stage's parameters for one kind: the shared keys, overridden by the kind's subsection.

    ``where`` names the section in messages (``params.yaml: train``).
    """
    shared = {key: value for key, value in section.items() if key not in KINDS}
    own = section.get(kind)
    if own is None:
        return shared
    if not isinstance(own, dict):
        raise PipelineError(f"{where}.{kind} must be a mapping of settings")
    return {**shared, **own}
