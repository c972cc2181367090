"""Language modelling: a corpus in, a model that predicts the next token and continues text.

Input: text as a token stream (:func:`tasks.inputs.textclean.corpus_text`: NLTK tokens, punctuation
kept, an end token after each sentence or document; the vocabulary, :mod:`tasks.inputs.vocabulary`).
Target: the next token (:mod:`tasks.networks.lm`). The baseline is an interpolated Kneser-Ney n-gram
model (:mod:`tasks.baselines.ngram`) on the same training tokens and vocabulary; evaluate reports both
and their ratio, ``perplexity_vs_baseline``.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.networks import lm
from tasks.inputs import vocabulary
from tasks.targets.classification import VALIDATION_PROBABILITIES
from tasks.core.splits import SPLITS, Cleaned, split_frame
from tasks.core.common import PipelineError, read_parquet, write_json
from tasks.inputs.textclean import END_TOKEN, CorpusOptions, corpus_texts, parallel_map

SUITE = "language_model"
SPLIT_METHODS = ("auto", "document", "contiguous")
NGRAM_FILE = "ngram.npz"


# --------------------------------------------------------------------------- ingest and validate


def adopt(frame: pd.DataFrame, metadata: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Any text table becomes a corpus: its texts are the documents, labels are dropped."""
    if "text" not in frame:
        raise PipelineError(f"ingest.kind language_model: the {metadata.get('dataset')} profile's data has no text")
    dropped = {"label", "rating"}
    corpus = frame[[column for column in frame.columns if column not in dropped]]
    kept = {key: value for key, value in metadata.items() if key not in ("classes", "rating_scale")}
    return corpus, {**kept, "kind": "language_model"}


def ingest_summary(frame: pd.DataFrame, metadata: dict[str, Any]) -> dict[str, Any]:
    words = frame["text"].astype("string").fillna("").str.split().str.len()
    return {"rows_without_text": int(frame["text"].isna().sum()), "words": int(words.sum()),
            "tokenized": bool(metadata.get("tokenized")), "split_protocol": metadata.get("split")}


def checked_table(frame: pd.DataFrame, metadata: dict[str, Any]) -> pd.DataFrame:
    """The documents plus their whitespace word count (the corpus-size check sums it)."""
    return frame.assign(n_words=frame["text"].astype("string").fillna("").str.split().str.len().astype("int64"))


def write_eda(frame: pd.DataFrame, metadata: dict[str, Any], folder: Path) -> list[Path]:
    from tasks.checks.eda import write_corpus_plots

    return write_corpus_plots(frame, folder)


# --------------------------------------------------------------------------- clean and tokenize


def split_method(params: dict[str, Any], metadata: dict[str, Any]) -> dict[str, Any]:
    """``split: auto`` follows the profile's protocol (Brown: Bengio et al.'s), else by document."""
    method = params.get("split", "auto")
    if method not in SPLIT_METHODS:
        raise PipelineError(f"params.yaml: clean.language_model.split must be one of {list(SPLIT_METHODS)}, not {method!r}")
    protocol = metadata.get("split")
    if method == "auto":
        return protocol or {"method": "document"}
    if method == "contiguous" and protocol and protocol.get("method") == "contiguous":
        return protocol
    return {"method": method}


def contiguous_splits(documents: pd.DataFrame, plan: dict[str, Any], params: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """Cut the corpus's token stream, in corpus order, into train, validation and test.

    Token counts from the plan (a profile's protocol; they count the corpus's own tokens, end
    tokens not included) or the clean fractions. A document cut in two becomes two segments
    (``id#1``, ``id#2``).
    """
    words = documents["text"].str.split()
    own = words.map(lambda tokens: sum(token != END_TOKEN for token in tokens))
    total = int(own.sum())
    if "train_tokens" in plan:
        train_end = plan["train_tokens"]
        validation_end = train_end + plan["validation_tokens"]
    else:
        train_end = round(total * (1 - params["validation_fraction"] - params["test_fraction"]))
        validation_end = round(total * (1 - params["test_fraction"]))
    if not 0 < train_end < validation_end < total:
        raise PipelineError(f"clean: the corpus has {total} tokens, too few for a {train_end}/{validation_end - train_end}/rest "
                            "contiguous split")
    edges = np.asarray([train_end, validation_end])
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in SPLITS}
    seen = 0
    for (_, document), tokens in zip(documents.iterrows(), words):
        own = np.fromiter((token != END_TOKEN for token in tokens), dtype=bool, count=len(tokens))
        # Each own token's position in the corpus; an end token goes with the token before it.
        position = seen + np.cumsum(own) - 1
        part_of = np.searchsorted(edges, np.maximum(position, 0), side="right")
        seen += int(own.sum())
        used = [index for index in range(len(SPLITS)) if (part_of == index).any()]
        for number, index in enumerate(used, 1):
            piece = [token for token, part in zip(tokens, part_of) if part == index]
            rows[SPLITS[index]].append({**document.to_dict(), "id": f"{document['id']}#{number}" if len(used) > 1 else document["id"],
                                        "text": " ".join(piece), "n_tokens": len(piece)})
    return {name: pd.DataFrame(rows[name], columns=[*documents.columns]) for name in SPLITS}


def clean(frame: pd.DataFrame, metadata: dict[str, Any], params: dict[str, Any]) -> Cleaned:
    """Language-model cleaning of every document, then a split by document or of the token stream."""
    options = CorpusOptions.from_params(params)
    pretokenized = bool(metadata.get("tokenized"))
    documents = frame.rename(columns={"text": "raw_text"})
    documents.insert(1, "text", parallel_map(corpus_texts, frame["text"].fillna("").tolist(), (options, pretokenized),
                                             params.get("workers") or 0))
    documents["n_tokens"] = documents["text"].str.count(" ") + (documents["text"] != "")
    empty = documents["n_tokens"] == 0
    documents = documents[~empty].drop(columns="raw_text").reset_index(drop=True)
    plan = split_method(params, metadata)
    splits = contiguous_splits(documents, plan, params) if plan["method"] == "contiguous" else split_frame(documents, params)
    for name, part in splits.items():
        if part.empty:
            raise PipelineError(f"clean: the {name} split has no text ({len(documents)} documents); need more data")
    summary = {
        "rows_in": len(frame),
        "empty_after_cleaning": int(empty.sum()),
        "split": plan,
        "rows": {name: len(part) for name, part in splits.items()},
        "tokens": {name: int(part["n_tokens"].sum()) for name, part in splits.items()},
    }
    return Cleaned(splits, summary, {"clean": asdict(options), "tokenized": pretokenized, "split": plan,
                                     "end_token": END_TOKEN})


def featurize(splits: dict[str, pd.DataFrame], clean_meta: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The vocabulary fitted on the train tokens (rarer words map to the OOV id), train and validation as ids."""
    vocabulary.check_size(params["vocab_size"], params["min_count"], "tokenize.language_model")
    words = vocabulary.fit_vocabulary(splits["train"]["text"], params["vocab_size"], params["min_count"])
    tables = {name: pd.DataFrame({"id": part["id"], "ids": vocabulary.encode(part["text"], words)})
              for name, part in splits.items()}
    oov = {name: round(float(np.mean(np.concatenate([*table["ids"], np.zeros(0, np.int32)]) == 1)), 4)
           for name, table in tables.items()}
    meta = {
        **{key: clean_meta[key] for key in ("kind", "clean", "dataset", "end_token", "tokenized") if key in clean_meta},
        "oov_token": vocabulary.OOV_TOKEN,
        "vocab_size": len(words) + vocabulary.RESERVED,
        "tokens": {name: int(table["ids"].map(len).sum()) for name, table in tables.items()},
        "oov_rate": oov,
    }
    return {vocabulary.VOCAB_FILE: vocabulary.vocabulary_text(words), vocabulary.META_FILE: meta,
            **{f"{name}.parquet": table for name, table in tables.items()}}


def _stream(table: pd.DataFrame) -> np.ndarray:
    return np.concatenate([*table["ids"], np.zeros(0, np.int32)]).astype(np.int32)


def test_stream(clean_dir: Path, words: list[str]) -> np.ndarray:
    """The test split as one id stream in the training vocabulary (unknown words -> OOV id)."""
    test = read_parquet(clean_dir / "test.parquet", "clean")
    return vocabulary.encode_stream(test["text"], words)


# --------------------------------------------------------------------------- baseline


def baseline(tokenized_dir: Path, clean_dir: Path, params: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """An interpolated Kneser-Ney n-gram model on the same train tokens and vocabulary; its
    validation and test perplexity and top-1/top-5 accuracy (the model saved into ``out_dir``)."""
    import time

    from tasks.baselines.ngram import KneserNey

    words, meta = vocabulary.read_vocabulary(tokenized_dir)
    streams = {name: _stream(read_parquet(tokenized_dir / f"{name}.parquet", "tokenize")) for name in ("train", "validation")}
    streams["test"] = test_stream(clean_dir, words)
    started = time.perf_counter()
    model = KneserNey.fit(streams["train"], meta["vocab_size"], order=params["order"], discount=params["discount"])
    fitted = time.perf_counter() - started
    model.save(out_dir / NGRAM_FILE)
    # A language model is not ensembled with its baseline (tasks/targets/classification.py): an empty file,
    # so that changing the baseline never reruns training, which depends on this file.
    np.save(out_dir / VALIDATION_PROBABILITIES, np.zeros(0, np.float32))
    metrics: dict[str, Any] = {"model": f"interpolated Kneser-Ney, order {params['order']}",
                               "discounts": [round(float(d), 4) for d in model.discounts], "fit_seconds": round(fitted, 2)}
    for name in ("validation", "test"):
        stream = streams[name][1:]  # the LSTM predicts every token after the first: score the same tokens
        log_probs = model.log_probs(streams[name])[1:]
        top = model.top_k(streams[name], 5)[1:]
        metrics[name] = {
            "perplexity": float(np.exp(-log_probs.mean())),
            "top1_accuracy": float((top[:, 0] == stream).mean()),
            "top5_accuracy": float((top == stream[:, None]).any(axis=1).mean()),
            "tokens": int(len(stream)),
        }
    return metrics


def baseline_headline(metrics: dict[str, Any]) -> str:
    return (f"perplexity {metrics['perplexity']:.2f}, top-1 {metrics['top1_accuracy']:.4f}, "
            f"top-5 {metrics['top5_accuracy']:.4f}")


# --------------------------------------------------------------------------- train


def train(params: dict[str, Any], tokenized_dir: Path, model_dir: Path, live_dir: Path, checkpoint_dir: Path) -> dict[str, Any]:
    """Fit the recurrent language model (truncated BPTT) and save its weights, vocabulary and card."""
    from dvclive import Live

    from tasks.core.artifacts import write_card
    from tasks.core.artifacts import PROGRESS_FILE
    from tasks.networks.training import configure_tensorflow, log_epoch

    lm.check_params(params, "train.language_model")
    device = configure_tensorflow(params)
    words, meta = vocabulary.read_vocabulary(tokenized_dir)
    streams = {name: _stream(read_parquet(tokenized_dir / f"{name}.parquet", "tokenize")) for name in ("train", "validation")}
    architecture = {key: params[key] for key in lm.ARCHITECTURE_KEYS}
    model = lm.build(meta["vocab_size"], architecture)
    with Live(str(live_dir), dvcyaml=False, save_dvc_exp=False, report=None) as live:
        summary = lm.fit(model, streams["train"], streams["validation"], params, checkpoint_dir,
                         lambda epoch, resumed, logs: log_epoch(live, PROGRESS_FILE, epoch, params["epochs"], resumed, logs))
    model.save_weights(str(model_dir / lm.WEIGHTS_FILE))
    (model_dir / vocabulary.VOCAB_FILE).write_text(vocabulary.vocabulary_text(words), encoding="utf-8")
    write_card(model_dir, {
        "kind": meta["kind"],
        "vocab_size": meta["vocab_size"],
        "architecture": architecture,
        "clean": meta["clean"],
        "tokenized": meta.get("tokenized", False),
        "end_token": meta["end_token"],
        "history": summary["history"],
        "params": params,
    })
    return {**device, **{key: value for key, value in summary.items() if key != "history"},
            "train_tokens": int(len(streams["train"]))}


# --------------------------------------------------------------------------- generate and evaluate


class Generator:
    """The trained language model with its vocabulary and cleaning: a prompt in, a continuation out."""

    def __init__(self, model_dir: Path) -> None:
        from tasks.core.common import damaged_model, load_model_part
        from tasks.core.artifacts import read_card

        self.card = read_card(model_dir)
        if self.card.get("kind") != "language_model":
            raise PipelineError(f"{model_dir}: the model is a {self.card.get('kind')} model, not a language model; "
                                "use python -m tasks.predict")
        card_path = Path(model_dir) / "model.json"
        try:
            self.options = CorpusOptions(**self.card["clean"])
            vocab_size = int(self.card["vocab_size"])
        except (KeyError, TypeError, ValueError) as error:
            raise damaged_model(card_path, "a language model card",
                                f"missing {error}" if isinstance(error, KeyError) else error) from error
        vocab_path = Path(model_dir) / vocabulary.VOCAB_FILE
        self.words = load_model_part(vocab_path, "a vocabulary file (UTF-8, one token a line)",
                                     lambda path: path.read_text(encoding="utf-8").split("\n")[:-1])
        if len(self.words) + vocabulary.RESERVED != vocab_size:
            raise damaged_model(vocab_path, "this model's vocabulary",
                                f"{len(self.words)} tokens; {card_path} says {vocab_size - vocabulary.RESERVED}")
        self.index = vocabulary.index_of(self.words)
        self.model = lm.load(model_dir, self.card)

    def prompt_ids(self, prompt: str) -> tuple[list[int], list[str]]:
        """The prompt cleaned like the training text (no end token after it); unknown words -> OOV id."""
        tokens = [token for token in corpus_texts([prompt], self.options, False)[0].split() if token != END_TOKEN]
        return [self.index.get(token, 1) for token in tokens], tokens

    def continue_text(self, prompt: str, words: int, temperature: float = 1.0, top_k: int | None = None,
                      seed: int = 0) -> dict[str, Any]:
        ids, tokens = self.prompt_ids(prompt)
        generated = lm.generate(self.model, ids, words, temperature, top_k, seed)
        continuation = [self.words[token - vocabulary.RESERVED] for token in generated]
        return {"prompt": prompt, "prompt_tokens": tokens,
                "unknown_prompt_words": [token for token, index in zip(tokens, ids) if index == 1],
                "continuation": continuation, "text": detokenize(continuation)}


def detokenize(tokens: list[str]) -> str:
    """Tokens as readable text: end tokens become line breaks, no space before punctuation."""
    text = " ".join(tokens).replace(f" {END_TOKEN} ", "\n").replace(END_TOKEN, "\n")
    for mark in (".", ",", ";", ":", "!", "?", "'s", "n't", "''", ")"):
        text = text.replace(f" {mark}", mark)
    return text.strip()


def evaluate(model_dir: Path, test: pd.DataFrame, params: dict[str, Any], baseline: dict[str, Any] | None,
             plots_dir: Path, report_dir: Path) -> dict[str, Any]:
    """Exact test perplexity, top-1/top-5 accuracy, OOV rate, the baseline beside them,
    learning curves (CSV for DVC and PNG) and sample continuations of fixed prompts."""
    generator = Generator(model_dir)
    stream = vocabulary.encode_stream(test["text"], generator.words)
    scored = lm.score(generator.model, stream)
    metrics: dict[str, Any] = {
        "perplexity": scored["perplexity"],
        "top1_accuracy": scored["top1_accuracy"],
        "top5_accuracy": scored["top5_accuracy"],
        "oov_rate": float((stream == 1).mean()) if len(stream) else 0.0,
        "n_test_tokens": scored["tokens"],
        "vocab_size": generator.card["vocab_size"],
    }
    if baseline:
        test_baseline = baseline["test"]
        metrics["baseline"] = {"model": baseline.get("model"), **test_baseline}
        metrics["perplexity_vs_baseline"] = metrics["perplexity"] / test_baseline["perplexity"]
    history = pd.DataFrame(generator.card.get("history") or [])
    if not history.empty:
        history.rename(columns={"epoch": "step"}).to_csv(plots_dir / "learning_curves.csv", index=False)
        _plot_history(history, plots_dir / "learning_curves.png", baseline)
    samples = [generator.continue_text(prompt, params["words"], params["temperature"], params["top_k"], params["seed"])
               for prompt in params["prompts"]]
    write_json(report_dir / "samples.json", samples)
    (report_dir / "samples.md").write_text(samples_markdown(samples, params), encoding="utf-8")
    return metrics


def samples_markdown(samples: list[dict[str, Any]], params: dict[str, Any]) -> str:
    lines = ["# Sample continuations", "",
             f"{params['words']} tokens each, temperature {params['temperature']}, top-k {params['top_k']}, seed {params['seed']}.", ""]
    for sample in samples:
        unknown = f" (unknown words: {', '.join(sample['unknown_prompt_words'])})" if sample["unknown_prompt_words"] else ""
        lines += [f"**{sample['prompt']}**{unknown} ...", "", "> " + sample["text"].replace("\n", " / "), ""]
    return "\n".join(lines)


def _plot_history(history: pd.DataFrame, path: Path, baseline: dict[str, Any] | None) -> None:
    from tasks.checks.eda import figure, save

    plot = figure(6.4, 4.0)
    axis = plot.subplots()
    axis.plot(history["epoch"], history["val_perplexity"], marker="o", label="LSTM validation perplexity")
    if baseline:
        axis.axhline(baseline["validation"]["perplexity"], color="tab:gray", linestyle="--", label="n-gram baseline (validation)")
    axis.set(xlabel="epoch", ylabel="perplexity", title="Validation perplexity per epoch")
    axis.legend()
    save(plot, path)


def headline(metrics: dict[str, Any]) -> str:
    ratio = metrics.get("perplexity_vs_baseline")
    versus = f", {ratio:.3f} x the n-gram baseline's {metrics['baseline']['perplexity']:.1f}" if ratio else ""
    return (f"test perplexity {metrics['perplexity']:.2f}{versus}; top-1 {metrics['top1_accuracy']:.4f}, "
            f"top-5 {metrics['top5_accuracy']:.4f}, OOV rate {metrics['oov_rate']:.4f} (n={metrics['n_test_tokens']})")


def predict_file(source: Path, output: Path, model_dir: Path, **_: Any) -> int:
    raise PipelineError(f"{model_dir}: the model is a language model; continue text with "
                        "python -m tasks.generate \"PROMPT\" --words N")
