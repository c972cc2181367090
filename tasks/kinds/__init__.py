"""Task kinds: what differs between classifying text, modelling language and classifying series.

The stages in ``tasks/`` are the pipeline's spine: they read their inputs, write their outputs
atomically and report. What a stage does to the data depends on the task kind, which the ingest
profile decides and records with the ingested table (``kind`` in its metadata); every later
stage reads it from its own input, never from another stage's parameters. Each kind is one
module here, built from the input type it reads (text: :mod:`tasks.inputs.textclean`,
:mod:`tasks.inputs.vocabulary`; numeric series: :mod:`tasks.inputs.series`) and the target it predicts
(classes: :mod:`tasks.targets.classification`; the next token: :mod:`tasks.networks.lm`):

=======================  ==========  ===================
kind                     input       target
=======================  ==========  ===================
text_classification      text        binary or K classes
language_model           text        next token
series_classification    series      binary or K classes
=======================  ==========  ===================

A kind module provides, for the stages (duck typing: the module is the kind):

- ingest: ``adopt(frame, metadata)`` (turn another kind's table into this kind's, or refuse),
  ``ingest_summary(frame, metadata)``
- validate: ``SUITE`` (``tasks/checks/expectations/<SUITE>.json``), ``checked_table(frame, metadata)``
  (what Great Expectations checks, one row per input row), ``write_eda(frame, metadata, folder)``
- clean: ``clean(frame, metadata, params) -> Cleaned``
- tokenize: ``featurize(splits, clean_meta, params) -> dict`` of output files
- baseline: ``baseline(tokenized_dir, clean_dir, params) -> (files, metrics)``
- train: ``train(params, tokenized_dir, pretrained_dir, model_dir, live_dir, checkpoint_dir) -> summary``
- evaluate: ``evaluate(model_dir, test, params, baseline, plots_dir, report_dir) -> metrics``
- predict: ``predict_file(...)`` for ``python -m tasks.predict``

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


def load(name: str) -> ModuleType:
    """The kind module ``name``."""
    if name not in KINDS:
        raise PipelineError(f"unknown task kind '{name}'; known: {', '.join(KINDS)}")
    return importlib.import_module(f"tasks.kinds.{name}")


def of(metadata: dict[str, Any]) -> ModuleType:
    """The kind module recorded in an input's metadata."""
    return load(metadata.get("kind") or DEFAULT)


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


def name(module: ModuleType) -> str:
    return module.__name__.rsplit(".", 1)[-1]
