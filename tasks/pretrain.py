"""Helper stage, pretrain: a language model on unlabelled text, for a text classifier to start from.

``params.yaml`` ``pretrain.source`` lists corpora: files, folders or globs of tables with a
``text`` column or of ``.txt`` files (the source stage lists them in
``data/pretrain_source.json``), and ``train``, the classifier's own training split. Their text
is cleaned with the classifier's cleaning options and read in the classifier's vocabulary
(``data/tokenized/vocab.txt``), so an id means the same word to both; the language model
(:mod:`tasks.networks.lm`, the ``pretrain`` parameters) is trained on it and saved in ``pretrained/``.
``train.text_classification.init: pretrained`` then starts the classifier's embedding and
recurrent layers from it. No validation or test text reaches it: the classifier's held-out
splits are never sources, and any corpus document whose cleaned text equals a held-out one is
dropped (counted in ``metrics/pretrain.json``).

DVC caches it: changing ``train`` never reruns it; the corpus, the vocabulary, the cleaning or
the ``pretrain`` parameters do. With no source it records that there is no pretrained model
(instantly, without TensorFlow).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from tasks.core.artifacts import (
    CLEAN_DIR,
    PRETRAIN_MANIFEST,
    PRETRAIN_SUMMARY,
    PRETRAINED_CARD,
    PRETRAINED_DIR,
    TOKENIZED_DIR,
    read_manifest,
    read_tokenized_meta,
)
from tasks.core.common import (
    PipelineError,
    atomic_path,
    load_params,
    read_parquet,
    run_main,
    write_json,
)
from tasks.inputs import vocabulary
from tasks.networks import lm
from tasks.networks import lm_training

TRAIN_SPLIT = "train"  # the pretrain.source entry that names the classifier's own training split


def corpus_documents(entries: list[dict[str, Any]], clean_dir: Path, clean_options: dict[str, Any]) -> list[str]:
    """Every source document cleaned as the classifier's text is (the train split already is)."""
    from tasks.inputs.textclean import CleanOptions, clean_column
    from tasks.readers.corpora import imdb_unsup, text_corpus
    from tasks.readers.tables import read_file

    options = CleanOptions.from_params(clean_options)
    documents: list[str] = []
    for entry in entries:
        if entry.get("split") == TRAIN_SPLIT:
            documents += read_parquet(clean_dir / "train.parquet", "clean")["text"].tolist()
            continue
        file = read_file(entry)
        reader = text_corpus if file.name.lower().endswith(".txt") else imdb_unsup
        texts = reader([file], {"source": file.source}).frame["text"].fillna("").tolist()
        documents += clean_column(texts, options)
    return [document for document in documents if document]


def pretrain(params: dict[str, Any], entries: list[dict[str, Any]], clean_dir: Path, tokenized_dir: Path,
             out_dir: Path, checkpoint_dir: Path) -> dict[str, Any]:
    """Train the language model on the corpus; save its weights and card into ``out_dir``."""
    from tasks.networks.training import configure_tensorflow

    lm_training.check_params(params, "pretrain")
    words, meta = vocabulary.read_vocabulary(tokenized_dir)
    read = corpus_documents(entries, clean_dir, meta["clean"])
    held_out = {text for name in ("validation", "test") for text in read_parquet(clean_dir / f"{name}.parquet", "clean")["text"]}
    kept = [document for document in read if document not in held_out]
    order = np.random.default_rng(params["seed"]).permutation(len(kept))
    documents = [kept[index] for index in order]
    validation_count = max(1, round(len(documents) * params["validation_fraction"]))
    if len(documents) <= validation_count:
        raise PipelineError(f"pretrain: the corpus has {len(documents)} document(s); too few to train and validate on")
    streams = {"validation": vocabulary.encode_stream(documents[:validation_count], words),
               "train": vocabulary.encode_stream(documents[validation_count:], words)}
    if params.get("max_tokens"):
        streams["train"] = streams["train"][: params["max_tokens"]]
    device = configure_tensorflow(params)
    architecture = {key: params[key] for key in lm.ARCHITECTURE_KEYS}
    model = lm.build(meta["vocab_size"], architecture)
    summary = lm_training.fit(model, streams["train"], streams["validation"], params, checkpoint_dir, lambda *_: None)
    model.save_weights(str(out_dir / lm.WEIGHTS_FILE))
    card = {"pretrained": True, "architecture": architecture, "vocab_size": meta["vocab_size"],
            "vocabulary": vocabulary.vocabulary_digest(words), "clean": meta["clean"]}
    (out_dir / PRETRAINED_CARD).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    return {**device, **summary, "documents": len(documents), "dropped_as_held_out": len(read) - len(kept),
            "train_tokens": int(len(streams["train"])), "validation_tokens": int(len(streams["validation"])),
            "oov_rate": round(float((streams["train"] == 1).mean()), 4)}


def main() -> None:
    """Run the pretrain stage with ``params.yaml`` ``pretrain``."""
    params = load_params("pretrain")
    listed = read_manifest(PRETRAIN_MANIFEST)
    with atomic_path(PRETRAINED_DIR, kind="dir") as tmp:
        tmp.mkdir()
        if not listed["files"]:
            (tmp / PRETRAINED_CARD).write_text(json.dumps({"pretrained": False}) + "\n")
            summary: dict[str, Any] = {"pretrained": False}
        else:
            if read_tokenized_meta().get("kind") != "text_classification":
                raise PipelineError("params.yaml: pretrain.source is for text classifiers; this data is not one "
                                    "(set pretrain.source to [])")
            from tasks.networks.training import checkpoint_dir

            backups = checkpoint_dir("pretrain", params, TOKENIZED_DIR, PRETRAIN_MANIFEST)
            summary = {"pretrained": True, **pretrain(params, listed["files"], CLEAN_DIR, TOKENIZED_DIR, tmp, backups)}
    write_json(PRETRAIN_SUMMARY, summary)
    print(f"pretrain: {'a language model on ' + str(summary['train_tokens']) + ' tokens' if summary['pretrained'] else 'no source'}"
          f" -> {PRETRAINED_DIR}")


if __name__ == "__main__":
    run_main(main)
