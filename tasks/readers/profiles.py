"""Dataset profiles: which task kind a source is for, which files it reads, who reads them.

``params.yaml`` ``ingest.dataset`` names a profile. A profile's kind (``tasks/kinds``) is
recorded with the ingested table, so every later stage knows what it is working on without
reading another stage's parameters. Cheap to import (standard library only): the source
stage resolves ``ingest.source`` with it before anything heavy loads; the reader function
is imported only when ingest runs it.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from tasks.core.common import PipelineError

TABULAR = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".parquet", ".jsonl", ".jsonl.gz", ".json")


@dataclass(frozen=True)
class Profile:
    """How one kind of source becomes rnnflow's canonical table."""

    kind: str
    reader: str  # "module:function" taking (files, ingest params) and returning tasks.readers.datasets.Ingested
    suffixes: tuple[str, ...]  # the files a directory or glob source contributes
    # Source names that are not paths: "nltk" -> a resource on NLTK's data path, "sklearn" -> bundled data.
    named: dict[str, str] = field(default_factory=dict)
    description: str = ""
    # Why the data cannot take ``ingest.test_source`` when it brings its own split ("" : it can).
    own_split: str = ""

    def reader_function(self) -> Callable[..., Any]:
        module, _, function = self.reader.partition(":")
        return getattr(importlib.import_module(module), function)


PROFILES: dict[str, Profile] = {
    "movie_reviews": Profile("text_classification", "tasks.readers.datasets:movie_reviews", (".zip",),
                             {"nltk": "corpora/movie_reviews"}, "NLTK's movie_reviews corpus: pos/ = 1, neg/ = 0"),
    "clothing_reviews": Profile("text_classification", "tasks.readers.datasets:clothing_reviews", TABULAR,
                                description="Women's E-Commerce Clothing Reviews: Title + Review Text, label from Rating"),
    "imdb": Profile("text_classification", "tasks.readers.datasets:imdb", TABULAR,
                    description="IMDB reviews as CSV: text, label (1/0)"),
    "table": Profile("text_classification", "tasks.readers.datasets:table", TABULAR,
                     description="any table: ingest.text_columns, ingest.label_column (2 or more classes)"),
    "brown": Profile("language_model", "tasks.readers.corpora:brown", (".zip",), {"nltk": "corpora/brown"},
                     "NLTK's Brown corpus in corpus order (Bengio et al. 2003 split by default)",
                     own_split="Bengio et al.'s contiguous split of the one corpus file"),
    "imdb_unsup": Profile("language_model", "tasks.readers.corpora:imdb_unsup", TABULAR,
                          description="IMDB's 50,000 unlabelled reviews: id, text"),
    "text_corpus": Profile("language_model", "tasks.readers.corpora:text_corpus", (".txt",),
                           description="plain .txt files: one document per file (or per paragraph)"),
    "ts": Profile("series_classification", "tasks.readers.sequences:ts_archive", (".ts",),
                  description="UEA/UCR archive .ts files; NAME_TRAIN/NAME_TEST keep the archive's split",
                  own_split="the archive's NAME_TRAIN/NAME_TEST files"),
    "mnist_npz": Profile("series_classification", "tasks.readers.sequences:mnist_npz", (".npz",),
                         description="Keras' mnist.npz layout: images read as rows = time steps",
                         own_split="the file's x_train/x_test arrays"),
    "digits": Profile("series_classification", "tasks.readers.sequences:digits", (".csv.gz",),
                      {"sklearn": "datasets/data/digits.csv.gz"},
                      "scikit-learn's bundled 8x8 digits, read as 8 steps of 8 pixels"),
    "long_table": Profile("series_classification", "tasks.readers.sequences:long_table", TABULAR,
                          description="long-form series: ingest.series_column, order_column, feature_columns, label_column"),
}


def get(name: str) -> Profile:
    """The profile ``name``, or a clear error listing the known ones."""
    if name not in PROFILES:
        raise PipelineError(f"params.yaml: ingest.dataset '{name}' is not one of {sorted(PROFILES)}")
    return PROFILES[name]
