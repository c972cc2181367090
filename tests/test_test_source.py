"""``ingest.test_source``: a user's own labelled test set becomes the test split, and no text of it
reaches a fitted vocabulary, baseline, language model or threshold."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_project, run, synthetic_reviews, up_to_date

from tasks.core.artifacts import read_tokenized_meta
from tasks.core.common import PipelineError
from tasks.core.splits import split_frame
from tasks.ingest import ingest
from tasks.pretrain import corpus_documents
from tasks.readers import sources

CLOTHING_PARAMS = {"dataset": "clothing_reviews", "positive_above": 3, "negative_below": 3}
SPLIT_PARAMS = {"validation_fraction": 0.25, "test_fraction": 0.2, "seed": 42}


def clothing_file(path: Path, ratings: list[int]) -> Path:
    """A clothing file as published: an unnamed row-number column first (the row key)."""
    frame = pd.DataFrame({"Review Text": [f"review {number} of {path.stem} fits" for number in range(len(ratings))],
                          "Rating": ratings})
    frame.to_csv(path)  # the index is the unnamed first column, 0, 1, ... in every file
    return path


def test_the_test_source_rows_are_the_test_split_with_distinct_stable_ids(tmp_path: Path):
    train = clothing_file(tmp_path / "train.csv", [5, 1, 4, 2, 5, 1, 5, 2])
    test = clothing_file(tmp_path / "test.csv", [1, 5, 3, 4])  # a 3 is dropped by the label rule, as in train
    params = {**CLOTHING_PARAMS, "source": str(train), "test_source": str(test)}
    listing = sources.manifest(params, {})
    assert [entry["path"] for entry in listing["files"]] == [str(train)]
    assert [entry["path"] for entry in listing["test_files"]] == [str(test)]
    frame, _, summary = ingest(params, listing["files"], listing["test_files"])
    # Both files number their rows from 0: the test file's ids are its own, prefixed, never the train file's.
    assert frame["id"].is_unique
    assert frame.loc[frame["split"] == "test", "id"].tolist() == ["test-clothing-0", "test-clothing-1", "test-clothing-3"]
    assert (frame.loc[frame["split"] == "train", "id"] == [f"clothing-{n}" for n in range(8)]).all()
    assert summary["test_source_rows"] == 3 and summary["test_files"] == 1 and summary["rows"] == 11
    # Resolved here without a manifest: the same table.
    pd.testing.assert_frame_equal(ingest(params)[0], frame)
    splits = split_frame(frame, SPLIT_PARAMS)
    assert splits["test"]["text"].str.contains("of test").all()
    assert len(splits["test"]) == 3 and not splits["validation"]["text"].str.contains("of test").any()
    assert len(splits["validation"]) + len(splits["train"]) == 8
    # Without a test_source the table is exactly today's: no split column, the ids unprefixed.
    today, _, summary = ingest({**CLOTHING_PARAMS, "source": str(train)})
    assert "split" not in today and "test_source" not in summary and "test_files" not in sources.manifest(
        {**CLOTHING_PARAMS, "source": str(train)}, {})


@pytest.mark.parametrize("dataset", ["movie_reviews", "text_corpus", "imdb_unsup"])
def test_file_per_document_and_corpus_profiles_mark_the_test_source(tmp_path: Path, dataset: str):
    for split, words in (("train", ["lovely", "dreadful"]), ("test", ["superb", "boring"])):
        for label, word in zip(("pos", "neg"), words):
            (tmp_path / split / label).mkdir(parents=True)
            (tmp_path / split / label / "cv000.txt").write_text(f"a {word} film")  # the same name in both
        pd.DataFrame({"text": [f"a {word} film" for word in words]}).to_csv(tmp_path / split / "texts.csv", index=False)
    pattern = "texts.csv" if dataset == "imdb_unsup" else "**/*.txt"
    frame, _, summary = ingest({"dataset": dataset, "source": str(tmp_path / "train" / pattern),
                                "test_source": str(tmp_path / "test" / pattern)})
    assert frame["id"].is_unique and summary["test_source_rows"] == 2
    assert sorted(frame.loc[frame["split"] == "test", "text"]) == ["a boring film", "a superb film"]
    assert frame.loc[frame["split"] == "test", "id"].str.startswith("test-").all()


def imdb_file(path: Path, split: str, count: int) -> Path:
    rows = [{"id": f"{split}_{'pos' if number % 2 else 'neg'}_{number}", "text": f"{split} review number {number}",
             "label": number % 2} for number in range(count)]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_with_movie_groups_test_stays_test_and_validation_is_drawn_by_group_from_train(tmp_path: Path):
    train, test = imdb_file(tmp_path / "train.csv", "train", 600), imdb_file(tmp_path / "test.csv", "test", 90)
    frame, _, _ = ingest({"dataset": "imdb", "source": str(train), "test_source": str(test)})
    assert "group" in frame and "split" in frame
    splits = split_frame(frame, SPLIT_PARAMS)
    assert sorted(splits["test"]["id"]) == sorted("test-" + pd.read_csv(test)["id"])
    validation_groups, train_groups = set(splits["validation"]["group"]), set(splits["train"]["group"])
    assert validation_groups and not validation_groups & train_groups  # whole movies, drawn from train only
    assert len(splits["validation"]) + len(splits["train"]) == 600
    assert 0.1 < len(splits["validation"]) / 600 < 0.45


def test_a_profile_with_its_own_split_or_a_shared_file_is_refused_naming_the_key(tmp_path: Path):
    (tmp_path / "Shapes_TRAIN.ts").write_text("@data\n1,2,3:a\n")
    with pytest.raises(PipelineError, match=r"ingest.test_source: the ts profile's data has its own train/test split"):
        sources.manifest({"dataset": "ts", "source": str(tmp_path), "test_source": str(tmp_path)}, {})
    table = tmp_path / "table.csv"
    pd.DataFrame({"text": ["good one", "bad one"], "label": [1, 0], "split": ["train", "test"]}).to_csv(table, index=False)
    other = tmp_path / "other" / "more.csv"
    other.parent.mkdir()
    pd.DataFrame({"text": ["fine", "awful"], "label": [1, 0]}).to_csv(other, index=False)
    params = {"dataset": "table", "text_columns": ["text"], "label_column": "label", "source": str(table),
              "test_source": str(other)}
    with pytest.raises(PipelineError, match=rf"{table}: has a split column of its own, and ingest.test_source"):
        ingest(params)
    with pytest.raises(PipelineError, match=r"ingest.test_source names .*more.csv, which ingest.source .* matches too"):
        sources.manifest({**params, "source": str(tmp_path)}, {})
    with pytest.raises(PipelineError, match=r"params.yaml: ingest.test_source: .*missing.csv: no such file or folder"):
        sources.manifest({**params, "test_source": str(tmp_path / "missing.csv")}, {})
    with pytest.raises(PipelineError, match=r"params.yaml: ingest.source: .*nothing-\*.csv: the pattern matches no file"):
        sources.manifest({**params, "source": str(tmp_path / "nothing-*.csv")}, {})
    # A reader that does not mark its rows' files (long-form series, today) is stopped, never left to mix them.
    for name in ("series_train", "series_test"):
        pd.DataFrame({"series": ["a", "a", "b", "b"], "t": [0, 1, 0, 1], "x": [0.1, 0.2, 0.9, 0.8],
                      "label": ["up", "up", "down", "down"]}).to_csv(tmp_path / f"{name}.csv", index=False)
    series = {"dataset": "long_table", "source": str(tmp_path / "series_train.csv"), "id_column": "series",
              "order_column": "t", "feature_columns": ["x"], "label_column": "label",
              "test_source": str(tmp_path / "series_test.csv")}
    with pytest.raises(PipelineError, match=r"ingest.test_source: the long_table profile cannot keep a test source apart"):
        ingest(series)


# --------------------------------------------------------------------------- the pipeline

MARKERS = ["quokkazest", "zyzzyvorp"]  # in every test-file review, nowhere in the train file
TRAIN_MARKER = "wombatique"  # in train-file reviews: proves such a word does reach the vocabularies


@pytest.mark.slow
def test_no_test_source_text_reaches_a_fitted_vocabulary_baseline_or_language_model(tmp_path: Path):
    train = synthetic_reviews(240, seed=0)
    train["text"] = [f"{text} {TRAIN_MARKER}" if number % 3 == 0 else text for number, text in enumerate(train["text"])]
    test = synthetic_reviews(60, seed=5)  # ids r0..r59, as the train file's first 60
    test["text"] = [f"{text} {MARKERS[number % 2]} {MARKERS[(number + 1) % 2]}" for number, text in enumerate(test["text"])]
    test = test.drop_duplicates("text")
    root = make_project(tmp_path / "project", train, overrides={
        "ingest": {"test_source": "data/raw/own_test.csv", "id_column": "id"},
        "pretrain": {"source": ["train"], "units": 8, "embedding_dim": 8, "epochs": 1, "batch_size": 8,
                     "sequence_length": 10, "sampled_softmax": 16, "validation_fraction": 0.1},
        "train": {"text_classification": {"init": "pretrained", "freeze_epochs": 1, "epochs": 2, "ensemble": "baseline"}},
    })
    test.to_csv(root / "data/raw/own_test.csv", index=False)
    run(["git", "add", "data/raw/own_test.csv"], root)
    run(["git", "commit", "-qm", "own test set"], root)
    run(["dvc", "repro"], root)

    clean = {name: pd.read_parquet(root / f"data/clean/{name}.parquet") for name in ("train", "validation", "test")}
    assert sorted(clean["test"]["id"]) == sorted("test-" + test["id"])  # the test split is the test file, all of it
    assert len(clean["train"]) + len(clean["validation"]) == len(train)
    assert all(marker in clean["test"]["text"].iloc[0] for marker in MARKERS)  # cleaning keeps the markers
    vocab = set((root / "data/tokenized/vocab.txt").read_text().split())
    assert TRAIN_MARKER in vocab and not vocab & set(MARKERS)
    with np.load(root / "baseline/tfidf_logistic.npz", allow_pickle=False) as stored:
        ngram_words = {word for term in stored["vocabulary"].tolist() for word in term.split()}
    assert TRAIN_MARKER in ngram_words and not ngram_words & set(MARKERS)
    listing = json.loads((root / "data/pretrain_source.json").read_text())
    clean_options = read_tokenized_meta(root / "data/tokenized")["clean"]
    corpus = " ".join(corpus_documents(listing["files"], root / "data/clean", clean_options))
    assert TRAIN_MARKER in corpus and not any(marker in corpus for marker in MARKERS)
    assert json.loads((root / "pretrained/card.json").read_text())["pretrained"]
    metrics = json.loads((root / "metrics/evaluate.json").read_text())
    assert metrics["n_test"] == len(test) == json.loads((root / "metrics/ingest.json").read_text())["test_source_rows"]

    # A changed test file reruns ingest: the source stage lists it.
    assert up_to_date(run(["dvc", "status"], root).stdout)
    test.assign(label=1 - test["label"]).to_csv(root / "data/raw/own_test.csv", index=False)
    run(["python", "-m", "tasks.source"], root)
    assert "ingest" in json.loads(run(["dvc", "status", "--json"], root).stdout or "{}")
