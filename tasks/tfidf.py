"""TF-IDF of word n-grams with logistic regression: the classical text classifier beside the RNN.

Fitted on the same cleaned text the RNN reads (tokens joined by spaces). Saved as plain arrays
(the n-gram vocabulary, idf weights, coefficients) in one ``.npz`` read with
``allow_pickle=False``: loading a model never runs code from a file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np


def _vectorizer(ngram_range: tuple[int, int], min_df: int = 1, max_features: int | None = None,
                vocabulary: dict[str, int] | None = None):
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(ngram_range=ngram_range, min_df=min_df, max_features=max_features, sublinear_tf=True,
                           lowercase=False, token_pattern=None, tokenizer=str.split, vocabulary=vocabulary,
                           dtype=np.float32)


class TfidfLogistic:
    """Fitted n-gram TF-IDF features and a logistic regression over them."""

    def __init__(self, vectorizer, coef: np.ndarray, intercept: np.ndarray, c: float) -> None:
        self.vectorizer, self.coef, self.intercept, self.c = vectorizer, coef, intercept, c

    @classmethod
    def fit(cls, texts: Sequence[str], labels: np.ndarray, validation_texts: Sequence[str], validation_labels: np.ndarray,
            choose, ngram_range: tuple[int, int], min_df: int, max_features: int | None, cs: Sequence[float]) -> "TfidfLogistic":
        """Fit one model per C and keep the one ``choose(validation labels, probabilities)`` scores
        highest (ties: the smaller C, the simpler model)."""
        from sklearn.linear_model import LogisticRegression

        vectorizer = _vectorizer(tuple(ngram_range), min_df, max_features)
        features = vectorizer.fit_transform(texts)
        validation_features = vectorizer.transform(validation_texts)
        best = None
        for c in sorted(cs):
            model = LogisticRegression(C=c, max_iter=2000).fit(features, labels)
            candidate = cls(vectorizer, model.coef_, model.intercept_, c)
            score = choose(validation_labels, candidate.probabilities_of_features(validation_features))
            if best is None or score > best[0]:
                best = (score, candidate)
        return best[1]

    def probabilities_of_features(self, features) -> np.ndarray:
        """Positive probabilities (two classes) or one row of class probabilities per text."""
        scores = features @ self.coef.T + self.intercept
        if self.coef.shape[0] == 1:  # scikit-learn's two-class model: one logit for class 1
            return 1 / (1 + np.exp(-np.asarray(scores).ravel()))
        scores = np.asarray(scores)
        exponent = np.exp(scores - scores.max(axis=1, keepdims=True))
        return exponent / exponent.sum(axis=1, keepdims=True)

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        return self.probabilities_of_features(self.vectorizer.transform(texts))

    @property
    def description(self) -> str:
        low, high = self.vectorizer.ngram_range
        return f"TF-IDF word {low}-{high}-grams + logistic regression (C={self.c:g}, {len(self.vectorizer.idf_)} features)"

    def save(self, path: Path) -> None:
        terms = self.vectorizer.get_feature_names_out()
        np.savez(path, vocabulary=np.asarray(terms, dtype=str), idf=self.vectorizer.idf_, coef=self.coef,
                 intercept=self.intercept, c=np.asarray(self.c), ngram_range=np.asarray(self.vectorizer.ngram_range))

    @classmethod
    def load(cls, path: Path) -> "TfidfLogistic":
        with np.load(path, allow_pickle=False) as stored:
            arrays: dict[str, Any] = {name: stored[name] for name in stored.files}
        vocabulary = {term: index for index, term in enumerate(arrays["vocabulary"].tolist())}
        vectorizer = _vectorizer(tuple(int(n) for n in arrays["ngram_range"]), vocabulary=vocabulary)
        vectorizer.idf_ = arrays["idf"]
        return cls(vectorizer, arrays["coef"], arrays["intercept"], float(arrays["c"]))
