"""The language-model kind: corpora, truncated-BPTT batches, exact perplexity, generation,
the pipeline end to end on a tiny corpus, and bad corpora."""
from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import SHARED, commit_all, make_project, run, up_to_date
from tasks.networks import lm
from tasks.core.common import PipelineError
from tasks.ingest import ingest
from tasks import kinds
from tasks.inputs.textclean import END_TOKEN, CorpusOptions, corpus_text

BROWN = SHARED / "nltk_data" / "corpora" / "brown.zip"
SUBJECTS = ["the cat", "a dog", "the old man", "my sister", "the jury", "a small bird"]
VERBS = ["saw", "liked", "chased", "found", "heard", "followed"]
OBJECTS = ["the ball", "a red car", "the river", "her friend", "the garden", "a loud noise"]


def story(sentences: int, seed: int) -> str:
    """Text from a tiny grammar: learnable, with a little randomness."""
    rng = random.Random(seed)
    return " ".join(f"{rng.choice(SUBJECTS).capitalize()} {rng.choice(VERBS)} {rng.choice(OBJECTS)}." for _ in range(sentences))


# --------------------------------------------------------------------------- corpora and cleaning


@pytest.mark.skipif(not BROWN.exists(), reason="../shared Brown corpus not present")
def test_brown_profile_reads_nltk_brown_in_corpus_order():
    frame, metadata, summary = ingest({"dataset": "brown", "source": "nltk"})
    assert len(frame) == 500 and summary["words"] == 1_161_192  # nltk.corpus.brown.words()
    assert frame["id"].iloc[0] == "brown-ca01" and frame["text"].iloc[0].startswith("The Fulton County Grand Jury said")
    assert metadata["kind"] == "language_model" and metadata["tokenized"] is True
    assert metadata["split"]["train_tokens"] == 800_000 and metadata["split"]["validation_tokens"] == 200_000


def test_text_corpus_files_paragraphs_and_classification_texts(tmp_path: Path, tiny_frame):
    (tmp_path / "books").mkdir()
    (tmp_path / "books" / "a.txt").write_text("First paragraph here.\n\nSecond one, longer.\n")
    (tmp_path / "books" / "b.txt").write_bytes(b"caf\xe9 au lait")  # Latin-1: kept, with U+FFFD, for validate
    frame, metadata, _ = ingest({"dataset": "text_corpus", "source": str(tmp_path / "books")})
    assert len(frame) == 2 and metadata["kind"] == "language_model"
    assert "\ufffd" in frame.loc[frame["id"].str.endswith("b.txt"), "text"].item()
    paragraphs = ingest({"dataset": "text_corpus", "source": str(tmp_path / "books/*.txt"), "paragraphs": True})[0]
    assert paragraphs["text"].tolist()[:2] == ["First paragraph here.", "Second one, longer.\n"]
    tiny_frame.to_csv(tmp_path / "labelled.csv", index=False)
    corpus, metadata, _ = ingest({"dataset": "table", "source": str(tmp_path / "labelled.csv"), "text_columns": ["text"],
                                  "label_column": "label", "kind": "language_model"})
    assert metadata["kind"] == "language_model" and "label" not in corpus and "classes" not in metadata


def test_corpus_cleaning_keeps_punctuation_and_marks_ends():
    options = CorpusOptions(lowercase=True, end_of="sentence")
    assert corpus_text("The jury said it. <br />Nothing more!", options, pretokenized=False).split() == [
        "the", "jury", "said", "it", ".", END_TOKEN, "nothing", "more", "!", END_TOKEN]
    by_document = corpus_text("One line .\nTwo lines .", CorpusOptions(lowercase=False, end_of="document"), pretokenized=True)
    assert by_document.split() == ["One", "line", ".", "Two", "lines", ".", END_TOKEN]


def test_contiguous_split_cuts_the_stream_at_the_token_counts():
    documents = pd.DataFrame({"id": ["d1", "d2", "d3"], "text": [
        f"a b c {END_TOKEN} d e {END_TOKEN}", f"f g h i {END_TOKEN}", f"j k {END_TOKEN} l m n {END_TOKEN}"]})
    splits = kinds.part("language_model", "clean").contiguous_splits(documents, {"method": "contiguous", "train_tokens": 4, "validation_tokens": 5}, {})
    own = {name: [t for text in part["text"] for t in text.split() if t != END_TOKEN] for name, part in splits.items()}
    assert own == {"train": list("abcd"), "validation": list("efghi"), "test": list("jklmn")}
    assert splits["train"]["id"].tolist() == ["d1#1"] and splits["validation"]["id"].tolist() == ["d1#2", "d2"]
    joined = [t for name in ("train", "validation", "test") for text in splits[name]["text"] for t in text.split()]
    assert joined == " ".join(documents["text"]).split()  # nothing lost, nothing repeated, order kept
    with pytest.raises(PipelineError, match="too few"):
        kinds.part("language_model", "clean").contiguous_splits(documents, {"method": "contiguous", "train_tokens": 10, "validation_tokens": 10}, {})


# --------------------------------------------------------------------------- batching, perplexity, generation


@pytest.mark.parametrize("length, batch_size, steps", [(2, 4, 3), (101, 4, 7), (1000, 16, 35), (37, 36, 5)])
def test_tbptt_batches_predict_every_token_once_in_order(length, batch_size, steps):
    stream = np.arange(2, length + 2, dtype=np.int32)  # distinct ids: each target tells where it came from
    inputs, targets = lm.tbptt_batches(stream, batch_size, steps)
    assert inputs.shape == targets.shape and inputs.shape[2] == steps
    rows = targets.transpose(1, 0, 2).reshape(targets.shape[1], -1)  # each row read chunk after chunk
    flat = rows[rows != 0]
    assert flat.tolist() == stream[1:].tolist()  # every token but the first, once, in order
    row_inputs = inputs.transpose(1, 0, 2).reshape(inputs.shape[1], -1)
    assert (row_inputs[rows != 0] == flat - 1).all()  # each input is the token just before its target
    with pytest.raises(PipelineError, match="too short"):
        lm.tbptt_batches(stream[:1], batch_size, steps)


def _unigram_model(probabilities: np.ndarray):
    """A language model whose next-token distribution is ``probabilities`` whatever the context."""
    model = lm.build(len(probabilities), {"model": "lstm", "layers": 1, "units": 4, "embedding_dim": 3, "dropout": 0.0,
                                          "tied": False})
    model.output_kernel.assign(np.zeros(model.output_kernel.shape, np.float32))
    bias = np.full(len(probabilities), 0.0, np.float32)
    bias[1:] = np.log(probabilities[1:])
    model.output_bias.assign(bias)
    return model


def test_perplexity_is_exact_on_a_model_with_a_known_distribution():
    uniform = np.full(9, 1 / 8)  # ids 1..8 equally likely, the padding id 0 never
    stream = np.asarray([2, 5, 1, 8, 3, 3, 7, 2, 4, 6] * 7, np.int32)
    assert lm.score(_unigram_model(uniform), stream, batch_size=3, steps=4)["perplexity"] == pytest.approx(8, rel=1e-5)
    skewed = np.asarray([0, 0.05, 0.4, 0.1, 0.1, 0.1, 0.1, 0.05, 0.1])
    expected = math.exp(-np.mean(np.log(skewed[stream[1:]])))
    scored = lm.score(_unigram_model(skewed), stream, batch_size=5, steps=3)
    assert scored["perplexity"] == pytest.approx(expected, rel=1e-5) and scored["tokens"] == len(stream) - 1
    assert scored["top1_accuracy"] == pytest.approx(np.mean(stream[1:] == 2))  # id 2 is the most probable


def test_generation_is_deterministic_under_a_seed_and_never_emits_padding_or_oov():
    model = lm.build(30, {"model": "gru", "layers": 2, "units": 8, "embedding_dim": 8, "dropout": 0.1, "tied": True})
    first = lm.generate(model, [3, 4, 5], 25, temperature=1.5, top_k=None, seed=7)
    assert first == lm.generate(model, [3, 4, 5], 25, temperature=1.5, top_k=None, seed=7)
    assert first != lm.generate(model, [3, 4, 5], 25, temperature=1.5, top_k=None, seed=8)
    assert len(first) == 25 and not {0, 1} & set(first)
    top_two = lm.generate(model, [3], 40, temperature=1.0, top_k=2, seed=1)
    assert len(set(top_two)) <= 40 and all(2 <= token < 30 for token in top_two)
    with pytest.raises(PipelineError, match="temperature"):
        lm.generate(model, [3], 1, temperature=0, top_k=None, seed=1)


def test_language_model_layers_are_cudnn_eligible():
    from tasks.networks.model import cudnn_eligible

    model = lm.build(20, {"model": "lstm", "layers": 2, "units": 8, "embedding_dim": 4, "dropout": 0.2, "tied": True})
    assert [cudnn_eligible(layer) for layer in model.rnns] == [[], []]
    assert model.projection is not None  # tied with units != embedding_dim: projected back to the embedding's width


# --------------------------------------------------------------------------- the pipeline on a tiny corpus

TINY_LM = {
    "ingest": {"dataset": "text_corpus", "source": "data/raw/books"},
    "validate": {"min_corpus_tokens": 500},
    "clean": {"language_model": {"split": "document"}, "validation_fraction": 0.2, "test_fraction": 0.2},
    "tokenize": {"language_model": {"min_count": 1}},
    "baseline": {"language_model": {"order": 3}},
    "train": {"language_model": {"units": 16, "embedding_dim": 16, "epochs": 3, "batch_size": 8, "sequence_length": 10,
                                 "sampled_softmax": 8, "learning_rate": 0.01}},
    "evaluate": {"language_model": {"prompts": ["the cat", "zebras saw"], "words": 6}},
}


@pytest.fixture(scope="module")
def corpus_project(tmp_path_factory) -> Path:
    root = make_project(tmp_path_factory.mktemp("lm") / "project", overrides=TINY_LM)
    books = root / "data/raw/books"
    books.mkdir(parents=True)
    for number in range(30):
        (books / f"book{number:02d}.txt").write_text(story(40, seed=number))
    commit_all(root, "tiny corpus")
    return root


@pytest.mark.slow
def test_pipeline_trains_a_language_model_beats_chance_and_generates(corpus_project: Path):
    root = corpus_project
    first = run(["dvc", "repro"], root)
    for stage in ("ingest", "validate", "clean", "tokenize", "baseline", "train", "evaluate"):
        assert f"Running stage '{stage}'" in first.stdout
    metrics = json.loads((root / "metrics/evaluate.json").read_text())
    vocab = json.loads((root / "data/tokenized/meta.json").read_text())["vocab_size"]
    assert metrics["perplexity"] < (vocab - 1) / 3  # far better than guessing among the vocabulary
    ratio = metrics["perplexity"] / metrics["baseline"]["perplexity"]
    assert metrics["baseline"]["perplexity"] > 1 and metrics["perplexity_vs_baseline"] == pytest.approx(ratio, abs=1e-3)
    assert set(metrics) >= {"top1_accuracy", "top5_accuracy", "oov_rate", "n_test_tokens"}
    samples = (root / "reports/evaluation/samples.md").read_text()
    assert "**zebras saw** (unknown words: zebras) ..." in samples
    assert (root / "plots/evaluate/learning_curves.png").exists()
    generated = run(["python", "-m", "tasks.generate", "The jury said", "--words", "8", "--temperature", "0.8",
                     "--top-k", "5", "--seed", "1"], root)
    again = run(["python", "-m", "tasks.generate", "The jury said", "--words", "8", "--temperature", "0.8",
                 "--top-k", "5", "--seed", "1"], root)
    assert generated.stdout == again.stdout and generated.stdout.startswith("The jury said ... ")
    refused = run(["python", "-m", "tasks.predict", "data/raw/reviews.csv", "-o", "out.csv"], root, check=False)
    assert refused.returncode != 0 and "python -m tasks.generate" in refused.stderr
    assert run(["dvc", "repro"], root).stdout.count("Running stage") == 1  # only the source listing
    assert up_to_date(run(["dvc", "status"], root).stdout)


BAD_CORPORA = [
    ("empty_files", {"a.txt": b"", "b.txt": b"  \n"}, "validate", "expect_table_row_count_to_be_between"),
    ("only_a_binary_file", {"a.bin.txt": bytes(range(256)) * 4}, "validate", "expect_table_row_count_to_be_between"),
    ("no_txt_in_folder", {"notes.md": b"# not a corpus"}, "source", "folder has no .txt files"),
    ("too_few_words", {"a.txt": b"Just a few words here."}, "validate", "expect_column_sum_to_be_between"),
]


@pytest.mark.slow
@pytest.mark.parametrize("files, stops_at, message", [case[1:] for case in BAD_CORPORA], ids=[c[0] for c in BAD_CORPORA])
def test_bad_corpora_stop_with_a_clear_message_and_change_nothing(corpus_project: Path, files, stops_at, message):
    root = corpus_project
    if not (root / "models").exists():
        run(["dvc", "repro"], root)
    before = {str(p.relative_to(root)): p.read_bytes() for folder in ("data/validated", "models", "metrics")
              for p in sorted((root / folder).rglob("*")) if p.is_file() and p.name != "ingest.json"}
    bad = root / "data/raw/bad"
    bad.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (bad / name).write_bytes(content)
    params = (root / "params.yaml").read_text()
    try:
        (root / "params.yaml").write_text(params.replace("source: data/raw/books", "source: data/raw/bad"))
        result = run(["dvc", "repro"], root, check=False)
        assert result.returncode != 0
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr[-2000:]
        assert f"failed to reproduce '{stops_at}'" in result.stderr
        after = {str(p.relative_to(root)): p.read_bytes() for folder in ("data/validated", "models", "metrics")
                 for p in sorted((root / folder).rglob("*")) if p.is_file() and p.name != "ingest.json"}
        assert after == before
    finally:
        (root / "params.yaml").write_text(params)
        for path in bad.iterdir():
            path.unlink()


def test_a_binary_file_among_good_ones_is_quarantined_with_the_reason(tmp_path: Path):
    from tasks.checks import suite as suite_checks

    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "good.txt").write_text(story(50, seed=1))
    (tmp_path / "c" / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    frame, metadata, _ = ingest({"dataset": "text_corpus", "source": str(tmp_path / "c")})
    checked = kinds.part("language_model", "validate").checked_table(frame, metadata)
    suite = suite_checks.load_suite(suite_checks.SUITE_DIR / "language_model.json")
    result = suite_checks.validate_frame(checked, {"min_chars": 3, "min_corpus_tokens": 50}, suite, classes=[])
    # One reason per column: the first failing check in suite order.
    assert result.quarantine["reason"].tolist() == ["text contains NUL bytes (a binary file?)"]
    assert result.accepted["id"].str.endswith("good.txt").all()
