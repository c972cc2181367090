"""Word n-grams with logistic regression: the classical text classifier beside the RNN.

Two weightings of the n-gram features: ``tfidf`` (sublinear term frequency x idf, rows
L2-normalised; any number of classes) and ``nb`` (two classes: Wang & Manning's 2012 NBSVM
features, each n-gram's presence scaled by its naive-Bayes log-count ratio, rows L2-normalised,
strong on sentiment). Fitted on the same cleaned text the RNN reads (tokens joined by spaces).
Saved as plain arrays (the n-gram vocabulary, weights, coefficients) in one ``.npz`` read with
``allow_pickle=False``: loading a model never runs code from a file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np


WEIGHTINGS = ("tfidf", "nb")


def _vectorizer(weighting: str, ngram_range: tuple[int, int], min_df: int = 1, max_features: int | None = None,
                vocabulary: dict[str, int] | None = None):
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

    shared = {"ngram_range": ngram_range, "min_df": min_df, "max_features": max_features, "lowercase": False,
              "token_pattern": None, "tokenizer": str.split, "vocabulary": vocabulary, "dtype": np.float32}
    if weighting == "nb":  # presence only; the log-count ratio and the row norm come after
        return CountVectorizer(binary=True, **shared)
    return TfidfVectorizer(sublinear_tf=True, **shared)


def log_count_ratio(presence, labels: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Naive Bayes' log-count ratio of each feature between the positive and the negative class."""
    positive = np.asarray(presence[labels == 1].sum(axis=0)).ravel() + alpha
    negative = np.asarray(presence[labels == 0].sum(axis=0)).ravel() + alpha
    return (np.log(positive / positive.sum()) - np.log(negative / negative.sum())).astype(np.float32)


class TfidfLogistic:
    """Fitted n-gram features (TF-IDF or NB-weighted) and a logistic regression over them."""

    def __init__(self, vectorizer, coef: np.ndarray, intercept: np.ndarray, c: float, ratio: np.ndarray | None = None) -> None:
        self.vectorizer, self.coef, self.intercept, self.c, self.ratio = vectorizer, coef, intercept, c, ratio
        self._weighted = None  # fit's texts (train, then validation) and their weighted features: what refit reuses

    @classmethod
    def fit(cls, texts: Sequence[str], labels: np.ndarray, validation_texts: Sequence[str], validation_labels: np.ndarray,
            choose, ngram_range: tuple[int, int], min_df: int, max_features: int | None, cs: Sequence[float],
            weighting: str = "tfidf") -> "TfidfLogistic":
        """Fit one model per C and keep the one ``choose(validation labels, probabilities)`` scores
        highest (ties: the smaller C, the simpler model)."""
        from sklearn.linear_model import LogisticRegression

        from tasks.core.common import PipelineError

        if weighting not in WEIGHTINGS:
            raise PipelineError(f"params.yaml: baseline.text_classification.weighting must be one of {list(WEIGHTINGS)}")
        if weighting == "nb" and len(np.unique(labels)) != 2:
            raise PipelineError("params.yaml: baseline.text_classification.weighting nb is for two classes; use tfidf")
        vectorizer = _vectorizer(weighting, tuple(ngram_range), min_df, max_features)
        presence = vectorizer.fit_transform(texts)
        ratio = log_count_ratio(presence, labels) if weighting == "nb" else None
        unfitted = cls(vectorizer, np.zeros((1, 1)), np.zeros(1), 0.0, ratio)
        features = unfitted.weighted(presence)
        validation_features = unfitted.weighted(vectorizer.transform(validation_texts))
        best = None
        for c in sorted(cs):
            model = LogisticRegression(C=c, max_iter=2000).fit(features, labels)
            candidate = cls(vectorizer, model.coef_, model.intercept_, c, ratio)
            score = choose(validation_labels, candidate.probabilities_of_features(validation_features))
            if best is None or score > best[0]:
                best = (score, candidate)
        chosen = best[1]
        chosen._weighted = (list(texts) + list(validation_texts), (features, validation_features))
        return chosen

    def refit(self, texts: Sequence[str], labels: np.ndarray) -> "TfidfLogistic":
        """The logistic regression fitted again on ``texts`` with the chosen C, over this model's
        n-gram vocabulary and weights (idf or NB ratios, from the texts it was fitted on): the
        baseline stage refits on train and validation once C is chosen. Texts :meth:`fit` read
        (train, then validation) are not read again."""
        from scipy.sparse import vstack
        from sklearn.linear_model import LogisticRegression

        seen, parts = self._weighted or (None, None)
        features = vstack(parts).tocsr() if list(texts) == seen else self.weighted(self.vectorizer.transform(texts))
        model = LogisticRegression(C=self.c, max_iter=2000).fit(features, labels)
        return type(self)(self.vectorizer, model.coef_, model.intercept_, self.c, self.ratio)

    def weighted(self, features):
        """NB weighting: presence x log-count ratio, rows L2-normalised (TF-IDF rows already are)."""
        if self.ratio is None:
            return features
        from sklearn.preprocessing import normalize

        return normalize(features.multiply(self.ratio).tocsr())

    def probabilities_of_features(self, features) -> np.ndarray:
        """Positive probabilities (two classes) or one row of class probabilities per text."""
        scores = features @ self.coef.T + self.intercept
        if self.coef.shape[0] == 1:  # scikit-learn's two-class model: one logit for class 1
            return 1 / (1 + np.exp(-np.asarray(scores).ravel()))
        scores = np.asarray(scores)
        exponent = np.exp(scores - scores.max(axis=1, keepdims=True))
        return exponent / exponent.sum(axis=1, keepdims=True)

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        return self.probabilities_of_features(self.weighted(self.vectorizer.transform(texts)))

    @property
    def description(self) -> str:
        low, high = self.vectorizer.ngram_range
        name = "NB-weighted" if self.ratio is not None else "TF-IDF"
        return (f"{name} word {low}-{high}-grams + logistic regression "
                f"(C={self.c:g}, {len(self.vectorizer.vocabulary_)} features)")

    def save(self, path: Path) -> None:
        terms = self.vectorizer.get_feature_names_out()
        weights = {"ratio": self.ratio} if self.ratio is not None else {"idf": self.vectorizer.idf_}
        np.savez(path, vocabulary=np.asarray(terms, dtype=str), coef=self.coef, intercept=self.intercept,
                 c=np.asarray(self.c), ngram_range=np.asarray(self.vectorizer.ngram_range), **weights)

    @classmethod
    def load(cls, path: Path) -> "TfidfLogistic":
        with np.load(path, allow_pickle=False) as stored:
            arrays: dict[str, Any] = {name: stored[name] for name in stored.files}
        vocabulary = {term: index for index, term in enumerate(arrays["vocabulary"].tolist())}
        weighting = "nb" if "ratio" in arrays else "tfidf"
        vectorizer = _vectorizer(weighting, tuple(int(n) for n in arrays["ngram_range"]), vocabulary=vocabulary)
        if weighting == "tfidf":
            vectorizer.idf_ = arrays["idf"]
        return cls(vectorizer, arrays["coef"], arrays["intercept"], float(arrays["c"]), arrays.get("ratio"))
