"""Text classification, baseline: word n-grams and logistic regression."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tasks.inputs import vocabulary
from tasks.kinds.text_classification import BASELINE_FILE
from tasks.targets.classifier.baseline import fit_baseline, log_loss_scorer


def baseline(tokenized_dir: Path, clean_dir: Path, params: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """TF-IDF of word n-grams (of the same cleaned text) with logistic regression (:mod:`tasks.baselines.tfidf`).

    C is chosen on the validation split (log-loss), a two-class threshold too (macro-F1). Saves the
    model refitted on train and validation with that C (what is served and tested), and the
    validation probabilities of the model fitted on train alone (an ensemble with the RNN is
    fitted on them: predictions of rows the model did not learn from).
    """
    from tasks.baselines.tfidf import TfidfLogistic

    classes = json.loads((tokenized_dir / vocabulary.META_FILE).read_text())["classes"]
    return fit_baseline(clean_dir, classes, lambda split: split["text"], lambda *data: TfidfLogistic.fit(
        *data, log_loss_scorer(classes), params["ngram_range"], params["min_df"], params["max_features"], params["C"],
        params.get("weighting", "tfidf")), out_dir / BASELINE_FILE)


def baseline_headline(metrics: dict[str, Any]) -> str:
    return f"accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}, ROC-AUC {metrics.get('roc_auc')}"
