"""Text normalisation with NLTK: markup removal, tokens, stopwords, WordNet lemmas.

Pure functions over strings. WordNet and the stopword list load once per process,
and each distinct token is lemmatised once (a dictionary cache), so cleaning costs
one regex pass and a few dict lookups per token. Shared by the clean stage and by
inference (tasks.predict), so training and serving text go through the same code.
"""
from __future__ import annotations

import functools
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

    from tasks.common import ensure_nltk_resource

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

        from tasks.common import ensure_nltk_resource

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
