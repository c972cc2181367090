"""Clean and tokenize: text rules, the split, and the vocabulary contract with Keras."""
from __future__ import annotations

import pandas as pd

from conftest import synthetic_reviews

from tasks.core.splits import assign_splits
from tasks.kinds.text_classification.clean import clean, deduplicate
from tasks.kinds.text_classification.tokenize import featurize
from tasks.inputs.textclean import CleanOptions, clean_text, lemmatizer
from tasks.inputs.vocabulary import encode, fit_vocabulary, sequence_length

DEFAULT = CleanOptions()
SENTIMENT = {"classes": ["negative", "positive"]}


def test_negations_survive_stopword_removal_and_markup_goes():
    tokens = clean_text("I didn't like it.<br /><br />It was NOT good, never again! No way.", DEFAULT)
    assert tokens == ["not", "like", "not", "good", "never", "no", "way"]


def test_switches_change_the_output():
    text = "The Dresses were great!"
    assert clean_text(text, DEFAULT) == ["dress", "great"]
    assert clean_text(text, CleanOptions(lemmatize=False)) == ["dresses", "great"]
    assert clean_text(text, CleanOptions(remove_stopwords=False)) == ["the", "dress", "were", "great"]
    assert clean_text(text, CleanOptions(remove_punctuation=False)) == ["dress", "great", "!"]
    assert clean_text(text, CleanOptions(lowercase=False, remove_stopwords=False)) == ["The", "Dresses", "were", "great"]
    assert len(clean_text("word " * 50, CleanOptions(max_tokens=10))) == 10


def test_fast_lemmatizer_matches_nltk_wordnet_lemmatizer():
    from nltk.stem import WordNetLemmatizer

    reference = WordNetLemmatizer()
    words = "dogs geese churches abaci women was feet dresses leaves mice runs hardrock colour sizes".split()
    assert [lemmatizer()(w) for w in words] == [reference.lemmatize(w) for w in words]


def test_duplicates_and_conflicts_are_removed():
    frame = pd.DataFrame({"text": ["a b", "a b", "c", "c", "d"], "label": [1, 1, 1, 0, 0]})
    kept, duplicates, conflicting = deduplicate(frame)
    assert kept["text"].tolist() == ["a b", "d"] and duplicates == 1 and conflicting == 2


def test_stratified_split_keeps_each_class_share_and_a_source_split_is_kept(tiny_frame):
    frame = tiny_frame.iloc[:200]
    split = assign_splits(frame, 0.1, 0.2, seed=3, stratify=True)
    for label, group in frame.groupby("label"):
        share = (split[group.index] == "test").mean()
        assert abs(share - 0.2) <= 1 / len(group)
    given = frame.assign(split=["test" if number % 4 == 0 else "train" for number in range(len(frame))])
    kept = assign_splits(given, 0.25, 0.2, seed=3)
    assert (kept[given["split"] == "test"] == "test").all()
    assert set(kept[given["split"] == "train"]) == {"train", "validation"}


def test_split_is_stable_when_rows_are_added(tiny_frame):
    frame = tiny_frame
    before = assign_splits(frame, 0.1, 0.2, seed=42)
    grown = pd.concat([frame, frame.assign(id=frame["id"] + "-new")], ignore_index=True)
    after = assign_splits(grown, 0.1, 0.2, seed=42)
    assert after.iloc[: len(frame)].tolist() == before.tolist()
    assert set(before) == {"train", "validation", "test"}


def test_clean_stage_keeps_texts_apart_and_classes_balanced():
    frame = synthetic_reviews(rows=3000, seed=5)
    cleaned = clean(frame, SENTIMENT, {**DEFAULT.__dict__, "validation_fraction": 0.15, "test_fraction": 0.25, "seed": 1, "workers": 2})
    splits, summary = cleaned.splits, cleaned.summary
    texts = [set(part["text"]) for part in splits.values()]
    assert not (texts[0] & texts[1]) and not (texts[0] & texts[2]) and not (texts[1] & texts[2])
    rates = {name: shares["positive"] for name, shares in summary["class_shares"].items()}
    # Sampling noise only: about 4 standard deviations at these split sizes.
    assert abs(rates["train"] - rates["test"]) < 0.07 and abs(rates["train"] - rates["validation"]) < 0.07
    assert sum(summary["rows"].values()) + summary["duplicates_removed"] + summary["conflicting_labels_removed"] == len(frame)


def test_vocabulary_is_fitted_on_train_only_and_ranked():
    vocabulary = fit_vocabulary(["b a a", "c a b"], vocab_size=4, min_count=1)
    assert vocabulary == ["a", "b"]  # 4 indices: padding, OOV, a, b
    assert [ids.tolist() for ids in encode(["a z b", "b b b"], vocabulary, max_len=2)] == [[2, 1], [3, 3]]
    assert sequence_length(pd.Series(range(1, 101)), "auto", 95) == 96
    assert sequence_length(pd.Series([3]), 7, 95) == 7


def test_tokenize_matches_keras_text_vectorization(tiny_frame):
    """The saved model's TextVectorization must map text exactly as tokenize did."""
    from keras import layers

    splits = clean(tiny_frame, SENTIMENT, {**DEFAULT.__dict__, "validation_fraction": 0.1, "test_fraction": 0.2, "seed": 0,
                                           "workers": 1}).splits
    splits = {name: splits[name] for name in ("train", "validation")}
    files = featurize(splits, {"kind": "text_classification", **SENTIMENT, "clean": {}},
                      {"vocab_size": 30, "min_count": 1, "max_len": 12, "length_percentile": 95})
    vocabulary, meta, tables = files["vocab.txt"].split("\n")[:-1], files["meta.json"], files
    tables = {"validation": files["validation.parquet"]}
    vectorize = layers.TextVectorization(standardize=None, split="whitespace", vocabulary=vocabulary, output_sequence_length=12)
    keras_ids = vectorize(splits["validation"]["text"].tolist()).numpy()
    for ours, theirs in zip(tables["validation"]["ids"], keras_ids):
        assert ours.tolist() == theirs[: len(ours)].tolist()
        assert not theirs[len(ours):].any()
    assert vectorize.get_vocabulary()[:2] == ["", meta["oov_token"]]
