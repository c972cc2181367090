"""Ingest: dataset profiles on real and broken inputs."""
from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest
from conftest import SHARED

from tasks.core.common import PipelineError
from tasks.ingest import ingest
from tasks.readers import sources
from tasks.readers.tables import read_one_table, read_source

CLOTHING = SHARED / "data" / "womens_clothing_ecommerce_reviews.csv.gz"
IMDB = SHARED / "data" / "imdb_train.csv.gz"
TABLE = {"dataset": "table", "text_columns": ["text"], "label_column": "label", "id_column": None}
CLOTHING_PARAMS = {"dataset": "clothing_reviews", "positive_above": 3, "negative_below": 3}


def table_params(source: Path, **extra) -> dict:
    return {**TABLE, "source": str(source), **extra}


@pytest.mark.skipif(not CLOTHING.exists(), reason="../shared clothing reviews not present")
def test_clothing_profile_on_the_real_file():
    frame, metadata, summary = ingest({**CLOTHING_PARAMS, "source": str(CLOTHING)})
    assert summary["rows_read"] == 23486
    # 2,871 reviews rated 3 are dropped by the label rule; the rest keep their rating.
    assert summary["rows"] == 23486 - 2871
    assert set(frame["rating"].unique()) == {1, 2, 4, 5}
    assert (frame.loc[frame["rating"] > 3, "label"] == 1).all()
    assert frame["id"].is_unique
    with_text = frame[frame["text"].notna()]
    assert round(with_text["label"].mean(), 3) == 0.880  # the measured positive share
    assert {"department", "class_name", "age", "recommended"} <= set(frame.columns)
    assert metadata["kind"] == "text_classification" and metadata["classes"] == ["negative", "positive"]
    assert metadata["rating_scale"] == [1, 5]


def test_clothing_text_joins_title_and_review(tmp_path: Path):
    source = tmp_path / "c.csv"
    pd.DataFrame(
        {"Unnamed: 0": [7, 8], "Title": ["Love it", None], "Review Text": ["Fits well", "Too small"], "Rating": [5, 1]}
    ).to_csv(source, index=False)
    frame = ingest({**CLOTHING_PARAMS, "source": str(source)})[0]
    assert frame["text"].tolist() == ["Love it. Fits well", "Too small"]
    assert frame["id"].tolist() == ["clothing-7", "clothing-8"]


@pytest.mark.skipif(not IMDB.exists(), reason="../shared imdb not present")
def test_imdb_profile():
    summary = ingest({"dataset": "imdb", "source": str(IMDB)})[2]
    assert summary["rows"] == 25000 and summary["labels"] == {"negative": 12500, "positive": 12500}


def test_movie_reviews_from_nltk_path():
    frame, _, summary = ingest({"dataset": "movie_reviews", "source": "nltk"})
    assert summary["labels"] == {"negative": 1000, "positive": 1000}
    assert frame["id"].str.startswith("movie_reviews-").all()


def test_table_profile_reads_jsonl_and_maps_label_words(tmp_path: Path):
    source = tmp_path / "r.jsonl"
    pd.DataFrame({"body": ["good", "bad", "meh"], "stars": ["pos", "neg", "??"]}).to_json(source, orient="records", lines=True)
    declared = {**TABLE, "source": str(source), "text_columns": ["body"], "label_column": "stars", "classes": ["neg", "pos"]}
    frame, metadata, _ = ingest(declared)
    assert frame["label"].tolist() == [1, 0, pd.NA] and metadata["classes"] == ["neg", "pos"]
    # Without declared classes, "??" is a third class: labels are classes as written.
    frame, metadata, _ = ingest({**declared, "classes": None})
    assert metadata["classes"] == ["??", "neg", "pos"] and frame["label"].tolist() == [2, 1, 0]


def test_table_profile_binary_words_and_natural_class_order(tmp_path: Path):
    source = tmp_path / "r.csv"
    pd.DataFrame({"text": ["a", "b", "c", "d"], "label": ["True", "no", "yes", ""]}).to_csv(source, index=False)
    frame, metadata, _ = ingest(table_params(source))
    assert metadata["classes"] == ["negative", "positive"] and frame["label"].tolist() == [1, 0, 1, pd.NA]
    pd.DataFrame({"text": ["a", "b", "c"], "label": ["10", "2", "Dresses"]}).to_csv(source, index=False)
    frame, metadata, _ = ingest(table_params(source))
    assert metadata["classes"] == ["2", "10", "Dresses"] and frame["label"].tolist() == [1, 0, 2]


def test_directory_and_glob_sources_read_every_file(tmp_path: Path, tiny_frame):
    tiny_frame.iloc[:100].to_csv(tmp_path / "a.csv", index=False)
    tiny_frame.iloc[100:].to_parquet(tmp_path / "b.parquet")
    assert len(ingest(table_params(tmp_path))[0]) == len(tiny_frame)
    assert len(ingest(table_params(tmp_path / "*"))[0]) == len(tiny_frame)
    assert len(ingest(table_params(tmp_path / "*.csv"))[0]) == 100


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "file is empty"),
        (b"id,text,label\n", "no data rows"),
        (b"id;text;label\n1;good;1\n", "missing column(s) ['text', 'label']"),
        (b"id,text,label\n1,caf\xe9,1\n", "line 2 is not UTF-8"),
        (b"id,text,label\n1,ok,1\n2,b\x00d,0\n", "NUL byte at line 3"),
        (b"id,text,label\n1,I love it, perfect!,1\n2,fine,1\n", "line 2 has 4 fields, the header 3"),
        (b"id,text,label\n1,fine,1\n2,I love it, perfect!,1\n", "line 3"),
    ],
)
def test_broken_csv_gets_a_clear_error(tmp_path: Path, content: bytes, message: str):
    source = tmp_path / "broken.csv"
    source.write_bytes(content)
    with pytest.raises(PipelineError) as error:
        ingest(table_params(source))
    assert message in str(error.value)
    assert str(source) in str(error.value)


def test_a_series_archive_given_as_a_table_says_what_it_is(tmp_path: Path):
    source = tmp_path / "Vowels_TEST.ts"
    source.write_text("@problemName Vowels\n@data\n1,2,3:a\n")
    with pytest.raises(PipelineError, match=r"Vowels_TEST.ts: a .ts file is a numeric series archive, not a table"):
        read_one_table(source)


def test_missing_path_truncated_parquet_and_bad_gzip(tmp_path: Path, tiny_frame):
    with pytest.raises(PipelineError, match="no such file"):
        read_source(str(tmp_path / "absent.csv"))
    with pytest.raises(PipelineError, match="the pattern matches no file"):
        read_source(str(tmp_path / "absent-*.csv"))
    tiny_frame.to_parquet(tmp_path / "t.parquet")
    data = (tmp_path / "t.parquet").read_bytes()
    (tmp_path / "t.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(PipelineError, match="cannot be read as .parquet"):
        read_one_table(tmp_path / "t.parquet")
    (tmp_path / "x.csv.gz").write_bytes(gzip.compress(b"id,text,label\n1,a,1\n")[:-8])
    with pytest.raises(PipelineError, match="gzip"):
        read_one_table(tmp_path / "x.csv.gz")


def test_unknown_dataset_names_the_parameter():
    with pytest.raises(PipelineError, match="ingest.dataset 'nope'"):
        ingest({"dataset": "nope", "source": "x"})


def test_url_that_does_not_answer():
    # Port 9 on loopback (discard) is closed here: the connection is refused at once.
    with pytest.raises(PipelineError, match="could not download after"):
        read_source("http://127.0.0.1:9/reviews.csv")


def test_auto_source_is_the_profile_own_data_or_a_clear_error(monkeypatch):

    if not (SHARED / "nltk_data/corpora/brown.zip").exists():
        pytest.skip("../shared/nltk_data has no Brown corpus")
    monkeypatch.setenv("NLTK_DATA", str(SHARED / "nltk_data"))
    brown = sources.manifest({"dataset": "brown", "source": "auto"}, {})
    assert [Path(entry["path"]).name for entry in brown["files"]] == ["brown.zip"] and brown["source"] == "auto"
    digits = sources.manifest({"dataset": "digits", "source": "auto"}, {})
    assert digits["files"][0]["path"].endswith("digits.csv.gz")
    with pytest.raises(PipelineError, match="ingest.source is auto but the clothing_reviews profile has no source"):
        sources.manifest({"dataset": "clothing_reviews", "source": "auto"}, {})


def test_a_single_file_profile_given_several_files_names_them():
    from tasks.readers.sequences import digits
    from tasks.readers.tables import SourceFile

    files = [SourceFile("a.ts", "a.ts", b""), SourceFile("b.ts", "b.ts", b"")]
    with pytest.raises(PipelineError, match=r"'x_\*\.ts': the digits profile reads one file, the source matched 2 \(a.ts, b.ts"):
        digits(files, {"dataset": "digits", "source": "x_*.ts"})
