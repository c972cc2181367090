"""Text normalisation with NLTK: markup removal, tokens, stopwords, WordNet lemmas.

Pure functions over strings. WordNet and the stopword list load once per process,
and each distinct token is lemmatised once (a dictionary cache), so cleaning costs
one regex pass and a few dict lookups per token. Shared by the clean stage and by
inference (tasks.predict), so training and serving text go through the same code.
"""
from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, fields
from typing import Any, Iterable

MARKUP = re.compile(r"<[^>]*>|&[a-z]+;|&#\d+;|https?://\S+")
# Words (with inner apostrophes, so "don't" stays one token) or single punctuation marks.
TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|[^\w\s]")
CONTRACTION = re.compile(r"['’](s|re|ve|ll|d|m)$")
# Sentiment hinges on these: never dropped as stopwords.
NEGATIONS = frozenset(
    {"not", "no", "never", "nor", "none", "nobody", "nothing", "neither", "nowhere", "cannot", "without"}
)


@dataclass(frozen=True)
class CleanOptions:
    """The switches of ``params.yaml`` ``clean`` that change the text."""

    strip_markup: bool = True
    lowercase: bool = True
    lemmatize: bool = True
    remove_stopwords: bool = True
    remove_punctuation: bool = True
    keep_stopwords: tuple[str, ...] = ()
    max_tokens: int = 2000

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "CleanOptions":
        """Pick this class's fields out of a params section, ignoring the rest."""
        values = {f.name: params[f.name] for f in fields(cls) if f.name in params}
        values["keep_stopwords"] = tuple(values.get("keep_stopwords") or ())
        return cls(**values)


@functools.cache
def stopwords(keep: tuple[str, ...] = ()) -> frozenset[str]:
    """NLTK's English stopwords without the negations and the ``keep`` words."""
    from nltk.corpus import stopwords as corpus

    from tasks.core.common import ensure_nltk_resource

    ensure_nltk_resource("corpora/stopwords", "stopwords")
    words = {word.replace("’", "'") for word in corpus.words("english")}
    return frozenset(word for word in words if word not in NEGATIONS and word not in keep and not word.endswith("n't"))


class Lemmatizer:
    """WordNet's noun lemmatizer (what ``WordNetLemmatizer().lemmatize(word)`` returns), fast.

    NLTK's WordNetCorpusReader parses the index of every part of speech when it loads
    (seconds); noun lemmas need only ``index.noun`` and ``noun.exc``. This runs NLTK's
    own ``_morphy`` over just those, and caches each distinct token's lemma.
    """

    def __init__(self) -> None:
        from nltk.corpus.reader.wordnet import WordNetCorpusReader

        from tasks.core.common import ensure_nltk_resource

        root = ensure_nltk_resource("corpora/wordnet", "wordnet")
        self._morphy = WordNetCorpusReader._morphy
        self.MORPHOLOGICAL_SUBSTITUTIONS = WordNetCorpusReader.MORPHOLOGICAL_SUBSTITUTIONS
        with root.join("index.noun").open() as index:
            self._lemma_pos_offset_map = {
                line.split(b" ", 1)[0].decode(): {"n": ()} for line in index if not line.startswith(b" ")
            }
        with root.join("noun.exc").open() as exceptions:
            rows = [line.decode().split() for line in exceptions]
        self._exception_map = {"n": {terms[0]: terms[1:] for terms in rows if terms}}
        self._cache: dict[str, str] = {}

    def __call__(self, token: str) -> str:
        lemma = self._cache.get(token)
        if lemma is None:
            lemmas = self._morphy(self, token, "n") if token.isalpha() else []
            lemma = self._cache[token] = min(lemmas, key=len) if lemmas else token
        return lemma


@functools.cache
def lemmatizer() -> Lemmatizer:
    """The process's one lemmatizer (WordNet loads once)."""
    return Lemmatizer()


def normalise_token(token: str) -> str:
    """Fold contractions: "n't" becomes "not" (a negation), "'s"/"'re"/... are dropped."""
    token = token.replace("’", "'")
    if token.endswith("n't"):
        return "not"
    return CONTRACTION.sub("", token)


def clean_text(text: str, options: CleanOptions) -> list[str]:
    """One document's tokens after the cleaning steps the options switch on."""
    if options.strip_markup:
        text = MARKUP.sub(" ", text)
    if options.lowercase:
        text = text.lower()
    drop = stopwords(options.keep_stopwords) if options.remove_stopwords else frozenset()
    lemma = lemmatizer() if options.lemmatize else None
    tokens = []
    for raw in TOKEN.findall(text):
        if not raw[0].isalnum():
            if not options.remove_punctuation:
                tokens.append(raw)
            continue
        token = normalise_token(raw)
        if not token or token in drop:
            continue
        tokens.append(lemma(token) if lemma else token)
        if len(tokens) >= options.max_tokens:
            break
    return tokens


def clean_texts(texts: Iterable[str], options: CleanOptions) -> list[str]:
    """Clean many documents; each result is its tokens joined by single spaces."""
    return [" ".join(clean_text(text, options)) for text in texts]


PARALLEL_MIN_ROWS = 5000  # below this, starting processes costs more than it saves
CHUNKS_PER_WORKER = 4  # equal chunks, a few per worker, so no worker idles at the end


def clean_column(texts: list[str], options: CleanOptions, workers: int = 0) -> list[str]:
    """Clean texts, over ``workers`` forked processes (0: one per core) when there are enough to pay for them."""
    if options.lemmatize:
        lemmatizer()  # load WordNet before forking: workers inherit it instead of each loading it
    if options.remove_stopwords:
        stopwords(options.keep_stopwords)
    return parallel_map(clean_texts, texts, (options,), workers)


# --------------------------------------------------------------------------- language-model text

END_TOKEN = "</s>"
END_OF = ("sentence", "document")


@dataclass(frozen=True)
class CorpusOptions:
    """``params.yaml`` ``clean.language_model``: how text becomes a language model's tokens.

    Punctuation stays (it is part of what is predicted); no stopwords are dropped and nothing
    is lemmatised. ``end_of`` says where the end token goes: after each sentence or document.
    """

    lowercase: bool = True
    strip_markup: bool = True
    end_of: str = "sentence"

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "CorpusOptions":
        options = cls(**{f.name: params[f.name] for f in fields(cls) if f.name in params})
        if options.end_of not in END_OF:
            from tasks.core.common import PipelineError

            raise PipelineError(f"params.yaml: clean.language_model.end_of must be one of {list(END_OF)}, not {options.end_of!r}")
        return options


@functools.cache
def _nltk_tokenizers():
    """NLTK's sentence splitter (Punkt's default parameters: the trained model is not needed)
    and its Treebank-style word tokenizer."""
    from nltk.tokenize import NLTKWordTokenizer
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    return PunktSentenceTokenizer(), NLTKWordTokenizer()


def corpus_sentences(text: str, options: CorpusOptions, pretokenized: bool) -> list[list[str]]:
    """A document's sentences as token lists: a pre-tokenized corpus (one sentence per line of
    space-separated tokens, e.g. Brown) keeps its tokens; raw text goes through NLTK."""
    if options.strip_markup:
        text = MARKUP.sub(" ", text)
    if options.lowercase:
        text = text.lower()
    if pretokenized:
        return [line.split() for line in text.splitlines() if line.strip()]
    sentences, words = _nltk_tokenizers()
    return [tokens for sentence in sentences.tokenize(text) if (tokens := words.tokenize(sentence))]


def corpus_text(text: str, options: CorpusOptions, pretokenized: bool) -> str:
    """A document as the language model reads it: tokens joined by spaces, with end tokens."""
    sentences = corpus_sentences(text, options, pretokenized)
    if options.end_of == "sentence":
        return " ".join(token for sentence in sentences for token in (*sentence, END_TOKEN))
    tokens = [token for sentence in sentences for token in sentence]
    return " ".join([*tokens, END_TOKEN]) if tokens else ""


def corpus_texts(texts: list[str], options: CorpusOptions, pretokenized: bool) -> list[str]:
    return [corpus_text(text, options, pretokenized) for text in texts]


def parallel_map(function, texts: list[str], extra: tuple, workers: int = 0) -> list[str]:
    """``function(chunk, *extra)`` over chunks of ``texts`` in forked processes (0: one per core)."""
    from concurrent.futures import ProcessPoolExecutor

    workers = workers or os.cpu_count() or 1
    if workers <= 1 or len(texts) < PARALLEL_MIN_ROWS:
        return function(texts, *extra)
    size = -(-len(texts) // (workers * CHUNKS_PER_WORKER))
    chunks = [texts[start : start + size] for start in range(0, len(texts), size)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return [text for chunk in pool.map(function, chunks, *([item] * len(chunks) for item in extra)) for text in chunk]
