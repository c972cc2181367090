"""Language model, predict: continuing a prompt (tasks.generate); batch scoring is refused."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tasks.core.common import PipelineError
from tasks.inputs import vocabulary
from tasks.inputs.textclean import END_TOKEN, CorpusOptions, corpus_texts
from tasks.networks import lm


class Generator:
    """The trained language model with its vocabulary and cleaning: a prompt in, a continuation out."""

    def __init__(self, model_dir: Path) -> None:
        from tasks.core.artifacts import read_card
        from tasks.core.common import damaged_model, load_model_part

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


def predict_file(source: Path, output: Path, model_dir: Path, **_: Any) -> int:
    raise PipelineError(f"{model_dir}: the model is a language model; continue text with "
                        "python -m tasks.generate \"PROMPT\" --words N")
