"""Start-up cost: stages load heavy libraries only when they use them."""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT

HEAVY = ("tensorflow", "keras", "nltk", "great_expectations", "sklearn", "matplotlib")


@pytest.mark.parametrize("module", ["tasks.ingest", "tasks.validate", "tasks.clean", "tasks.tokenize", "tasks.train", "tasks.evaluate", "tasks.predict"])
def test_importing_a_stage_loads_no_heavy_library(module: str):
    code = f"import sys, {module}; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""


def test_cleaning_without_lemmas_or_stopwords_never_loads_nltk():
    code = (
        "import sys; from tasks.inputs.textclean import CleanOptions, clean_texts; "
        "clean_texts(['Not bad at all!'], CleanOptions(lemmatize=False, remove_stopwords=False)); "
        "print('nltk' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip() == "False"
