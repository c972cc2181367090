"""The kind contract: what each kind's part provides to the stage that runs it.

``tasks/kinds/<kind>/<stage>.py`` is one part; the Protocol of the same stage below says which
names it must define and with which signatures: the parameters the stage passes, in its order
(``tasks/<stage>.py`` calls ``kinds.part(kind, stage).<name>(...)`` so), which a part may follow
with optional parameters of its own (text classification's ``train(..., devices=None)``).
``tests/test_kinds.py`` checks every kind's every part against them (names present, parameters
as written here, attributes of the annotated type), so a stage can call any kind the same way
and this file cannot drift from the code.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from tasks.core.splits import Cleaned


class IngestPart(Protocol):
    def adopt(self, frame: pd.DataFrame, metadata: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
        """Turn another kind's table into this kind's (``ingest.kind``), or refuse with a PipelineError."""

    def ingest_summary(self, frame: pd.DataFrame, metadata: dict[str, Any]) -> dict[str, Any]:
        """The kind's figures for ``metrics/ingest.json``."""


class ValidatePart(Protocol):
    SUITE: str  # tasks/checks/expectations/<SUITE>.json

    def checked_table(self, frame: pd.DataFrame, metadata: dict[str, Any]) -> pd.DataFrame:
        """What Great Expectations checks: one row per input row."""

    def write_eda(self, frame: pd.DataFrame, metadata: dict[str, Any], folder: Path) -> list[Path]:
        """The kind's EDA figures of the accepted rows, written into ``folder``."""


class CleanPart(Protocol):
    def clean(self, frame: pd.DataFrame, metadata: dict[str, Any], params: dict[str, Any]) -> Cleaned:
        """Clean the accepted rows and split them into train, validation and test."""


class TokenizePart(Protocol):
    def featurize(self, splits: dict[str, pd.DataFrame], clean_meta: dict[str, Any],
                  params: dict[str, Any]) -> dict[str, Any]:
        """Fit on the train split what turns it into model input; the files of ``data/tokenized``."""


class BaselinePart(Protocol):
    def baseline(self, tokenized_dir: Path, clean_dir: Path, params: dict[str, Any], out_dir: Path) -> dict[str, Any]:
        """Fit the classical model, save it into ``out_dir`` (with ``tasks.targets.VALIDATION_PROBABILITIES``,
        which train depends on); ``metrics/baseline.json``: ``model`` (what it is), ``validation`` and ``test``."""

    def baseline_headline(self, metrics: dict[str, Any]) -> str:
        """One line of the baseline's test metrics (``baseline(...)["test"]``)."""


class TrainPart(Protocol):
    def train(self, params: dict[str, Any], tokenized_dir: Path, model_dir: Path, live_dir: Path,
              checkpoint_dir: Path) -> dict[str, Any]:
        """Fit the recurrent model, save it and its card into ``model_dir``; the training summary
        (``metrics/train.json``, with ``epochs_run``)."""


class EvaluatePart(Protocol):
    def evaluate(self, model_dir: Path, test: pd.DataFrame, params: dict[str, Any], baseline: dict[str, Any] | None,
                 plots_dir: Path, report_dir: Path) -> dict[str, Any]:
        """Score the saved model on the test split (``data/clean/test.parquet``) beside the baseline's
        metrics (``metrics/baseline.json``, None when absent); write plots and reports; the metrics."""

    def headline(self, metrics: dict[str, Any]) -> str:
        """One line of the test metrics."""


class PredictPart(Protocol):
    def predict_file(self, source: Path, output: Path, model_dir: Path, *, text_column: str = "text",
                     id_column: str | None = None, order_column: str | None = None) -> int:
        """Score a file with the saved model into ``output`` (or refuse, saying what to use); rows written.

        ``python -m tasks.predict`` passes every option to every kind: ``text_column`` (the column a
        text classifier scores), ``id_column`` and ``order_column`` (which rows of a long table make
        a series, in which order). A part reads its own and takes the others too (``**_``)."""


PARTS: dict[str, type] = {
    "ingest": IngestPart, "validate": ValidatePart, "clean": CleanPart, "tokenize": TokenizePart,
    "baseline": BaselinePart, "train": TrainPart, "evaluate": EvaluatePart, "predict": PredictPart,
}
