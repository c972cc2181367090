"""The tutorial recipe, written as a peer of rnnflow (it uses no rnnflow code).

What the usual "sentiment RNN with NLTK + Keras" tutorial does, step by step:

* clean with pandas ``apply``, one row at a time: lowercase, tokenise with ``word_tokenize``,
  drop English stopwords and punctuation (``string.punctuation``), then
  ``WordNetLemmatizer().lemmatize`` each token. The trained punkt model is not available
  offline, so the default tokenizer runs ``word_tokenize``'s own code path with an untrained
  ``PunktSentenceTokenizer`` (same algorithm, no learned abbreviations) and
  ``NLTKWordTokenizer`` per sentence. ``tokenizer="treebank"`` uses ``TreebankWordTokenizer``
  on the whole text instead: cheaper (no sentence split), so a lower bound on the tutorial's
  cost, but it leaves sentence-final periods on words ("pig." stays one token);
* clothing reviews: rows without ``Review Text`` dropped, Rating > 3 positive, < 3 negative,
  3 dropped (the tutorial uses the review text only, not the title);
* hold out 20% as test; a 10,000-word index with an OOV token fitted on train only
  (Keras 2's ``Tokenizer(num_words=10000, oov_token=...)``, written here with a Counter since
  Keras 3 has none), every review padded/truncated to ``--max-len`` (``keras.utils.pad_sequences``):
  100 by default, since the clothing reviews average about 60 words (the IMDB tutorial's 500 would
  make the recipe twice as slow as anyone would write it for these reviews);
* Embedding(10000, 32) -> SimpleRNN(32) -> Dense(1, sigmoid), rmsprop, 5 epochs, batch 128,
  validation_split 0.2; accuracy, macro-F1, minority-class F1 and ROC-AUC on the test split.

Use as a module (``tutorial_clean``, ``tutorial_run``) or from the command line::

    python bench/tutorial_recipe.py --clothing ../shared/data/womens_clothing_ecommerce_reviews.csv.gz [--rows N]

which prints one JSON object (metrics and timings).
"""
from __future__ import annotations

import argparse
import json
import os
import string
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable

ROOT = Path(__file__).resolve().parents[1]
SHARED_NLTK = ROOT.parent / "shared" / "nltk_data"
if not os.environ.get("NLTK_DATA") and SHARED_NLTK.is_dir():
    os.environ["NLTK_DATA"] = str(SHARED_NLTK)  # offline mirror; NLTK reads this at import

NUM_WORDS = 10_000
OOV_TOKEN = "<OOV>"
MAX_LEN = 100
EMBEDDING_DIM = 32
UNITS = 32
EPOCHS = 5
BATCH_SIZE = 128
VALIDATION_SPLIT = 0.2
TEST_SIZE = 0.2
SEED = 42


def make_tokenizer(name: str = "word_tokenize") -> Callable[[str], list[str]]:
    """``word_tokenize`` offline (untrained punkt + NLTKWordTokenizer), ``treebank`` or ``wordpunct``."""
    if name == "word_tokenize":
        from nltk.tokenize import NLTKWordTokenizer
        from nltk.tokenize.punkt import PunktSentenceTokenizer

        sentences, words = PunktSentenceTokenizer(), NLTKWordTokenizer()
        return lambda text: [token for sentence in sentences.tokenize(text) for token in words.tokenize(sentence)]
    if name == "treebank":
        from nltk.tokenize import TreebankWordTokenizer

        return TreebankWordTokenizer().tokenize
    if name == "wordpunct":
        from nltk.tokenize import wordpunct_tokenize

        return wordpunct_tokenize
    raise ValueError(f"unknown tokenizer {name!r}: word_tokenize | treebank | wordpunct")


def tutorial_clean(texts: Iterable[str], timings: dict[str, float] | None = None, tokenizer: str = "word_tokenize") -> list[str]:
    """Clean texts the tutorial way (pandas apply per row); each result is its tokens joined by spaces.

    Loads its own stopword list and WordNet (the lemmatizer loads WordNet on its first call),
    so a first call in a process pays for them, as the tutorial does. ``timings``, if given,
    receives ``import_s`` (nltk, when not yet imported), ``wordnet_load_s`` (stopwords and
    the first lemmatize call) and ``apply_s``.
    """
    started = time.perf_counter()
    import nltk  # noqa: F401  (the tutorial's `import nltk`; free when already imported)
    import pandas as pd
    from nltk.corpus import stopwords
    from nltk.stem import WordNetLemmatizer

    imported = time.perf_counter()
    stop_words = set(stopwords.words("english"))
    punctuation = set(string.punctuation)
    lemmatizer = WordNetLemmatizer()
    tokenize = make_tokenizer(tokenizer)
    lemmatizer.lemmatize("warmup")  # WordNet loads lazily here (the tutorial pays it on row 1)
    loaded = time.perf_counter()

    def clean(text: str) -> str:
        text = str(text).lower()
        tokens = tokenize(text)
        tokens = [lemmatizer.lemmatize(token) for token in tokens if token not in stop_words and token not in punctuation]
        return " ".join(tokens)

    cleaned = pd.Series(list(texts), dtype=object).apply(clean).tolist()
    if timings is not None:
        timings["import_s"] = round(imported - started, 3)
        timings["wordnet_load_s"] = round(loaded - imported, 3)
        timings["apply_s"] = round(time.perf_counter() - loaded, 3)
    return cleaned


def clothing_labels(frame) -> tuple[list[str], list[int]]:
    """The tutorial's clothing labelling: no Review Text -> dropped; Rating > 3 -> 1, < 3 -> 0, 3 dropped."""
    import pandas as pd

    frame = frame.dropna(subset=["Review Text"])
    ratings = pd.to_numeric(frame["Rating"], errors="coerce")
    frame = frame[ratings != 3]
    ratings = ratings[ratings != 3]
    frame = frame[ratings.notna()]
    ratings = ratings[ratings.notna()]
    return frame["Review Text"].astype(str).tolist(), (ratings > 3).astype(int).tolist()


def fit_word_index(texts: Iterable[str]) -> dict[str, int]:
    """Keras 2 ``Tokenizer(oov_token=...)`` word index: OOV at 1, then words by frequency (ties: first seen)."""
    counts = Counter(token for text in texts for token in text.split())
    index = {OOV_TOKEN: 1}
    for position, (word, _) in enumerate(counts.most_common(), start=2):
        index[word] = position
    return index


def texts_to_sequences(texts: Iterable[str], word_index: dict[str, int], num_words: int = NUM_WORDS) -> list[list[int]]:
    """Keras 2 ``texts_to_sequences`` with ``num_words`` and an OOV token: rare or unseen words -> 1."""
    sequences = []
    for text in texts:
        sequence = []
        for token in text.split():
            position = word_index.get(token, 1)
            sequence.append(position if position < num_words else 1)
        sequences.append(sequence)
    return sequences


def build_model(max_len: int = MAX_LEN):
    """Embedding(10000, 32) -> SimpleRNN(32) -> Dense(1, sigmoid), compiled with rmsprop."""
    import keras
    from keras import layers

    model = keras.Sequential(
        [
            keras.Input(shape=(max_len,), dtype="int32"),
            layers.Embedding(NUM_WORDS, EMBEDDING_DIM),
            layers.SimpleRNN(UNITS),
            layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def tutorial_run(frame, epochs: int = EPOCHS, seed: int = SEED, verbose: int = 0, tokenizer: str = "word_tokenize",
                 max_len: int = MAX_LEN) -> dict[str, Any]:
    """The whole recipe on the raw clothing table (columns ``Review Text``, ``Rating``): metrics and timings."""
    started = time.perf_counter()
    texts, labels = clothing_labels(frame)
    timings: dict[str, float] = {}
    mark = time.perf_counter()
    cleaned = tutorial_clean(texts, timings, tokenizer)
    clean_s = time.perf_counter() - mark

    import numpy as np
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
    from sklearn.model_selection import train_test_split

    mark = time.perf_counter()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    import_s = time.perf_counter() - mark
    keras.utils.set_random_seed(seed)

    mark = time.perf_counter()
    train_texts, test_texts, y_train, y_test = train_test_split(cleaned, np.asarray(labels), test_size=TEST_SIZE, random_state=seed)
    word_index = fit_word_index(train_texts)
    train_sequences = texts_to_sequences(train_texts, word_index)
    x_train = keras.utils.pad_sequences(train_sequences, maxlen=max_len)
    x_test = keras.utils.pad_sequences(texts_to_sequences(test_texts, word_index), maxlen=max_len)
    vectorize_s = time.perf_counter() - mark
    lengths = np.array([len(sequence) for sequence in train_sequences])

    model = build_model(max_len)
    mark = time.perf_counter()
    model.fit(x_train, y_train, epochs=epochs, batch_size=BATCH_SIZE, validation_split=VALIDATION_SPLIT, verbose=verbose)
    train_s = time.perf_counter() - mark

    mark = time.perf_counter()
    probabilities = model.predict(x_test, batch_size=512, verbose=0).ravel()
    predicted = (probabilities >= 0.5).astype(int)
    minority = int(np.bincount(y_train, minlength=2).argmin())
    per_class = f1_score(y_test, predicted, average=None, labels=[0, 1], zero_division=0)
    metrics = {
        "accuracy": round(float(accuracy_score(y_test, predicted)), 4),
        "macro_f1": round(float(f1_score(y_test, predicted, average="macro", zero_division=0)), 4),
        "minority_f1": round(float(per_class[minority]), 4),
        "roc_auc": round(float(roc_auc_score(y_test, probabilities)), 4) if len(set(y_test.tolist())) == 2 else None,
        "majority_rate": round(float(max(y_test.mean(), 1 - y_test.mean())), 4),
    }
    evaluate_s = time.perf_counter() - mark
    fitted_rows = int(len(x_train) * (1 - VALIDATION_SPLIT))
    return {
        **metrics,
        "minority_class": minority,
        "rows": len(labels),
        "train_rows": len(x_train),
        "test_rows": len(x_test),
        "positive_rate": round(float(np.mean(labels)), 4),
        "vocabulary_seen": len(word_index) - 1,
        "epochs": epochs,
        "tokenizer": tokenizer,
        "max_len": max_len,
        "padding_fraction_fixed_length": round(float(1 - np.minimum(lengths, max_len).sum() / (len(lengths) * max_len)), 4),
        "mean_tokens": round(float(lengths.mean()), 1),
        "train_samples_per_s": round(fitted_rows * epochs / train_s, 1),
        "timings": {
            "clean_s": round(clean_s, 3),
            **{f"clean_{name}": value for name, value in timings.items()},
            "tensorflow_import_s": round(import_s, 3),
            "vectorize_s": round(vectorize_s, 3),
            "train_s": round(train_s, 3),
            "evaluate_s": round(evaluate_s, 3),
            "total_s": round(time.perf_counter() - started, 3),
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clothing", required=True, help="the Women's Clothing Reviews CSV (.csv or .csv.gz)")
    parser.add_argument("--rows", type=int, default=0, help="use only the first N rows (0: all)")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--tokenizer", default="word_tokenize", choices=["word_tokenize", "treebank", "wordpunct"])
    parser.add_argument("--max-len", type=int, default=MAX_LEN, help=f"pad/truncate every review to this (default {MAX_LEN})")
    parser.add_argument("--verbose", type=int, default=0, help="Keras fit verbosity")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    import pandas as pd

    frame = pd.read_csv(args.clothing)
    if args.rows:
        frame = frame.head(args.rows)
    read_s = time.perf_counter() - started
    result = tutorial_run(frame, epochs=args.epochs, verbose=args.verbose, tokenizer=args.tokenizer, max_len=args.max_len)
    result["timings"]["read_s"] = round(read_s, 3)
    result["timings"]["process_s"] = round(time.perf_counter() - started, 3)  # after interpreter start-up
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
