"""Kneser-Ney n-gram language models (modified and interpolated) over integer token ids.

The classical baseline the LSTM language model is judged against (test perplexity ratio).
``nltk.lm.KneserNeyInterpolated`` computes the same probabilities but rescans every
higher-order n-gram on each call (a trigram fitted on 800,000 Brown tokens scores 5 tokens/s);
this module counts with numpy once and scores a whole stream with a few vectorised lookups.

Data model: token ids are ints; 0 is padding and never occurs in a stream, 1 is the OOV token,
2..vocab_size-1 are words. Every distribution is over ids 1..vocab_size-1. Training data is one
contiguous stream (documents and sentences already separated by end tokens inside it); n-grams
are taken over it without padding, and position i of a scored stream is predicted from up to
``order - 1`` tokens before it in the same stream.

Model (NLTK 3.10's recursion, levels n = order down to 1)::

    P_n(w | c) = max(k_n(c w) - D_n, 0) / T_n(c) + gamma_n(c) * P_{n-1}(w | c')
    gamma_n(c) = D_n * |{w : k_n(c w) > 0}| / T_n(c),      T_n(c) = sum_w k_n(c w)

c' is c without its first token. The counts k_n are raw counts at the top order and
continuation counts N1+(. c w) (the number of distinct tokens seen before ``c w``) below it.
A context with T_n(c) = 0 defers to the lower order (alpha 0, gamma 1). The unigram level is
the continuation-count unigram k_1(w) / T_1 (raw counts for an order-1 model), plus the
``unigram_floor``.

``discount``: how much each count gives up to the lower order.

* ``"modified"`` (the default; Chen & Goodman 1999, what KenLM and SRILM build): three
  discounts per order, for n-grams counted once, twice and three or more times, from that
  order's count-of-counts n1..n4 (raw at the top, continuation below)::

      Y = n1 / (n1 + 2 n2),  D1 = 1 - 2 Y n2 / n1,  D2 = 2 - 3 Y n3 / n2,  D3+ = 3 - 4 Y n4 / n3

  and gamma_n(c) = (D1 N1(c) + D2 N2(c) + D3+ N3+(c)) / T_n(c), N_i(c) the number of words with
  count i after c. An order whose count-of-counts cannot give valid discounts (some n_i = 0, or a
  D_i outside (0, i]: usual for tiny corpora and at the unigram level of a small vocabulary) gets
  KenLM's ``--discount_fallback`` discounts 0.5, 1.0, 1.5.
* ``"auto"``: one discount per order, Ney's D = n1 / (n1 + 2 n2) (interpolated Kneser-Ney); an
  order with no n-gram counted exactly once gets ``AUTO_FALLBACK_DISCOUNT`` = 0.5.
* a float in (0, 1]: that one discount at every order, as NLTK (which also allows 0; 0 switches
  smoothing off, so unseen continuations get probability 0, and is refused here).

One discount per order is the recursion above with D_n for every count; NLTK's
``KneserNeyInterpolated`` is that model. Every distribution sums to 1 whichever is chosen.

``unigram_floor`` (default on): NLTK's unigram level gives a word never seen as a continuation
(never after another token in the training stream) probability 0, hence infinite perplexity on
any text containing one. With the floor the unigram level is discounted like the others and its
gamma mass goes to the uniform distribution over ids 1..vocab_size-1 (Chen & Goodman 1998)::

    P_1(w) = max(k_1(w) - D_1, 0) / T_1 + D_1 * |{w : k_1(w) > 0}| / T_1 / (vocab_size - 1)

(with ``modified``, D_1 per count as at the other orders, and the uniform share of their sum).

Deviations from NLTK:

* Floor on: every level above the unigram (alpha and gamma) is NLTK's, but the unigram level
  itself is the discounted one above, so each probability differs from NLTK's by
  (product of the gammas on its backoff chain) * (P_1 floored - P_1 NLTK), a small amount
  everywhere. No floor can equal NLTK and give unseen words mass while keeping the sum at 1.
  Floor off: equal to NLTK (to rounding; the arithmetic is the same) wherever NLTK's
  distribution sums to 1.
* The training stream's first tokens: NLTK's lower orders take gamma's numerator from raw
  counts but alpha and T from continuation counts. The n-gram at stream position 0 has no token
  before it, so when a prefix ``stream[:m]`` (m <= order - 2) followed by ``stream[m]`` occurs
  nowhere else, NLTK's gamma for context ``stream[:m]`` counts one word more than its alphas
  share out (the distribution sums to more than 1), or, when the context has no continuation at
  all, NLTK divides by zero. Here gamma counts the words with a positive continuation count,
  and a context with no continuation count defers, so every distribution sums to 1; contexts
  whose backoff chain meets no such prefix are exactly NLTK's.
* ``order=1`` has no NLTK counterpart (NLTK's unigram divides by the number of bigrams, 0):
  here it is the raw-count unigram, with or without the floor.

Storage: each order n keeps its distinct n-grams as sorted int64 keys ``id(c) * vocab_size + w``,
where id(c) is the index of the (n-1)-gram c among that order's keys (for n = 2 the token id), so
keys stay below len(stream) * vocab_size whatever the order; lookups are ``np.searchsorted``. Per n-gram: alpha, the
id of its suffix (n-1)-gram; per context: gamma. ``top_k`` uses the recursion above: for w not
seen after c, P_n(w|c) = gamma_n(c) * P_{n-1}(w|c') keeps the order of P_{n-1}, so the top k of
P_n(.|c) lie among the words seen after c and the top k of P_{n-1}(.|c'). That gives a top-k table
per training context, built once per k from the unigram top k upwards (linear in the number of
n-grams); a position's prediction is the row of its longest context seen in training (the longer,
unseen ones pass it through with alpha 0, gamma 1). Ties go to the smaller id, as ``probabilities`` ranks them.

Measured on a 2-core machine that was busy with other work (load about 2.7), seconds: fit on
800,000 tokens; log_probs and top_k(5) over 200,000 tokens, the first top_k call building the
top-k tables, a second one reusing them; peak resident memory of the whole process. "zipf": an
i.i.d. Zipf stream over 16,000 ids (nearly every higher n-gram distinct, the worst case for
memory); "brown": NLTK's Brown corpus, lowercased, 13,190 ids (words seen 3 times or fewer -> 1).

    stream  order  fit   log_probs  top_k first  top_k again  peak memory
    zipf    3      0.3   0.08       2.1          0.10         420 MB
    zipf    4      0.5   0.10       4.9          0.11         650 MB
    zipf    5      0.7   0.09       7.2          0.11         790 MB
    brown   3      0.2   0.08       1.1          0.13         280 MB
    brown   4      0.4   0.11       5.0          0.11         530 MB
    brown   5      0.6   0.15       5.8          0.12         710 MB
"""
from __future__ import annotations

from os import PathLike
from typing import Sequence

import numpy as np

AUTO = "auto"
MODIFIED = "modified"
AUTO_FALLBACK_DISCOUNT = 0.5  # "auto" at an order where Ney's estimate is 0 (no n-gram counted once)
MODIFIED_FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)  # KenLM's --discount_fallback defaults


class KneserNey:
    """Kneser-Ney model (modified or interpolated) over token ids 1..vocab_size-1; build it with ``fit`` or ``load``.

    ``discounts``: per order 1..order, the discounts of n-grams counted once, twice and three
    or more times (three equal numbers unless ``discount`` is ``"modified"``)."""

    def __init__(
        self,
        vocab_size: int,
        ngram_keys: Sequence[np.ndarray],
        top_counts: np.ndarray,
        discount: float | str = MODIFIED,
        unigram_floor: bool = True,
    ) -> None:
        """Derive every table from the distinct n-grams of orders 2..order and the top order's raw counts.

        ``ngram_keys[n - 2]`` holds order n's sorted keys; ``top_counts`` the raw count of each
        top-order key (of each token id for an order-1 model). Continuation counts follow from the
        keys alone, so these are all a saved model needs.
        """
        self.vocab_size = int(vocab_size)
        self.order = len(ngram_keys) + 1
        self.unigram_floor = bool(unigram_floor)
        self._discount_setting = _checked_discount(discount)
        self._keys = {n: np.asarray(keys, dtype=np.int64) for n, keys in enumerate(ngram_keys, start=2)}
        self._top_counts = np.asarray(top_counts, dtype=np.int64)
        self._suffix = self._suffix_ids()
        counts = self._level_counts()
        self.discounts = tuple(self._level_discounts(n, counts[n]) for n in range(1, self.order + 1))
        self._unigram = self._unigram_probabilities(counts[1])
        self._alpha: dict[int, np.ndarray] = {}
        self._gamma: dict[int, np.ndarray] = {}
        self._seen: dict[int, np.ndarray] = {}
        for n in range(2, self.order + 1):
            self._alpha[n], self._gamma[n], self._seen[n] = self._interpolation_weights(n, counts[n])
        self._top_k_cache: tuple[int, dict[int, tuple[np.ndarray, np.ndarray]]] | None = None

    @classmethod
    def fit(
        cls,
        stream: np.ndarray,
        vocab_size: int,
        order: int = 3,
        discount: float | str = MODIFIED,
        unigram_floor: bool = True,
    ) -> KneserNey:
        """Count the n-grams of one contiguous training stream (no padding) and build the model."""
        if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
            raise ValueError(f"order must be an integer >= 1, got {order!r}")
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, (int, np.integer)) or vocab_size < 2:
            raise ValueError(f"vocab_size must be an integer >= 2 (id 0 is padding, 1 the OOV token), got {vocab_size!r}")
        tokens = _checked_tokens(stream, vocab_size, "stream", allow_empty=False)
        if len(tokens) < order:
            raise ValueError(f"stream has {len(tokens)} tokens; an order-{order} model needs at least {order}")
        ngram_keys = []
        gram_ids = tokens  # the id of the n-gram starting at each position; for n = 1 the token itself
        top_counts = np.bincount(tokens, minlength=vocab_size)  # order 1's; each higher order replaces them
        for n in range(2, order + 1):
            keys, gram_ids, top_counts = np.unique(
                gram_ids[:-1] * vocab_size + tokens[n - 1 :], return_inverse=True, return_counts=True
            )
            ngram_keys.append(keys)
        return cls(vocab_size, ngram_keys, top_counts, discount, unigram_floor)

    def log_probs(self, stream: np.ndarray) -> np.ndarray:
        """Natural-log P(stream[i] | up to order-1 tokens before it), one float64 per position."""
        tokens = _checked_tokens(stream, self.vocab_size, "stream", allow_empty=False)
        ids = self._lookup_ids(tokens)
        probabilities = self._unigram[tokens]
        for n in range(2, min(self.order, len(tokens)) + 1):
            context_ids, gram_ids = ids[n - 1][: len(ids[n])], ids[n]
            alpha = np.where(gram_ids >= 0, self._alpha[n][gram_ids], 0.0)
            gamma = np.where(context_ids >= 0, self._gamma[n][context_ids], 1.0)
            probabilities[n - 1 :] = alpha + gamma * probabilities[n - 1 :]
        with np.errstate(divide="ignore"):
            return np.log(probabilities)

    def perplexity(self, stream: np.ndarray) -> float:
        """exp of the mean negative log-probability per token (inf if a token has probability 0)."""
        return float(np.exp(-np.mean(self.log_probs(stream))))

    def top_k(self, stream: np.ndarray, k: int = 5) -> np.ndarray:
        """(len(stream), k) int32: the most probable ids at each position given the tokens before it, best first."""
        tokens = _checked_tokens(stream, self.vocab_size, "stream", allow_empty=False)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k < self.vocab_size:
            raise ValueError(f"k must be an integer in [1, {self.vocab_size - 1}], got {k!r}")
        tables = self._top_k_tables(int(k))
        predictions = np.repeat(tables[1][0], len(tokens), axis=0)
        ids = self._lookup_ids(tokens)
        for n in range(2, min(self.order, len(tokens)) + 1):
            context_ids = ids[n - 1][: len(tokens) - n + 1]  # the context of positions n-1..end
            known = context_ids >= 0
            known[known] = self._seen[n][context_ids[known]]
            predictions[np.flatnonzero(known) + n - 1] = tables[n][0][context_ids[known]]
        return predictions

    def probabilities(self, context: Sequence[int]) -> np.ndarray:
        """The full distribution over ids 0..vocab_size-1 after ``context`` (0 for id 0); for tests and small uses."""
        tokens = _checked_tokens(context, self.vocab_size, "context", allow_empty=True)
        tokens = tokens[max(len(tokens) - self.order + 1, 0) :]
        ids = self._lookup_ids(tokens)
        distribution = self._unigram.copy()
        for n in range(2, len(tokens) + 2):
            context_id = ids[n - 1][len(tokens) - n + 1]  # the last n-1 tokens
            if context_id < 0 or not self._seen[n][context_id]:
                continue
            first, stop = np.searchsorted(self._keys[n], [context_id * self.vocab_size, (context_id + 1) * self.vocab_size])
            alpha = np.zeros(self.vocab_size)
            alpha[self._keys[n][first:stop] % self.vocab_size] = self._alpha[n][first:stop]
            distribution = alpha + self._gamma[n][context_id] * distribution
        return distribution

    def save(self, path: str | PathLike[str]) -> None:
        """Write the counts and settings as a plain .npz (no pickle); ``load`` rebuilds the tables."""
        keys = {f"keys_{n}": self._keys[n] for n in range(2, self.order + 1)}
        with open(path, "wb") as file:
            np.savez(
                file,
                vocab_size=np.int64(self.vocab_size),
                order=np.int64(self.order),
                top_counts=self._top_counts,
                discount=np.array(str(self._discount_setting)),
                unigram_floor=np.bool_(self.unigram_floor),
                **keys,
            )

    @classmethod
    def load(cls, path: str | PathLike[str]) -> KneserNey:
        """Read a model written by ``save`` (with ``allow_pickle=False``)."""
        with np.load(path, allow_pickle=False) as saved:
            order = int(saved["order"])
            discount = str(saved["discount"])
            return cls(
                int(saved["vocab_size"]),
                [saved[f"keys_{n}"] for n in range(2, order + 1)],
                saved["top_counts"],
                discount if discount in (AUTO, MODIFIED) else float(discount),
                bool(saved["unigram_floor"]),
            )

    def _suffix_ids(self) -> dict[int, np.ndarray]:
        """For each n-gram of order n >= 2, the id of its last n-1 tokens among order n-1's n-grams."""
        suffix: dict[int, np.ndarray] = {}
        for n in range(2, self.order + 1):
            words = self._keys[n] % self.vocab_size
            if n == 2:
                suffix[n] = words
            else:
                suffix_keys = suffix[n - 1][self._keys[n] // self.vocab_size] * self.vocab_size + words
                suffix[n] = np.searchsorted(self._keys[n - 1], suffix_keys)
        return suffix

    def _level_counts(self) -> dict[int, np.ndarray]:
        """k_n per n-gram (per token id for n = 1): raw at the top order, continuation counts below."""
        counts = {self.order: self._top_counts}
        for n in range(self.order - 1, 0, -1):
            size = self.vocab_size if n == 1 else len(self._keys[n])
            counts[n] = np.bincount(self._suffix[n + 1], minlength=size)
        return counts

    def _level_discounts(self, n: int, counts: np.ndarray) -> tuple[float, float, float]:
        """Order n's discounts for counts 1, 2 and 3+ (see the module docstring); 0 for an unfloored unigram (NLTK's)."""
        if n == 1 and not self.unigram_floor:
            return (0.0, 0.0, 0.0)
        if self._discount_setting not in (AUTO, MODIFIED):
            return (float(self._discount_setting),) * 3
        n1, n2, n3, n4 = (int(np.count_nonzero(counts == i)) for i in (1, 2, 3, 4))
        if self._discount_setting == AUTO:
            return (float(n1 / (n1 + 2 * n2)) if n1 else AUTO_FALLBACK_DISCOUNT,) * 3
        if not (n1 and n2 and n3 and n4):
            return MODIFIED_FALLBACK_DISCOUNTS
        y = n1 / (n1 + 2 * n2)
        discounts = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
        if not all(0 < d <= i for i, d in enumerate(discounts, start=1)):
            return MODIFIED_FALLBACK_DISCOUNTS
        return tuple(float(d) for d in discounts)

    def _discount_of(self, n: int, counts: np.ndarray) -> np.ndarray:
        """The discount of each count at order n (the one for count 3+ above 3; a 0 count keeps nothing anyway)."""
        return np.asarray(self.discounts[n - 1])[np.clip(counts, 1, 3) - 1]

    def _unigram_probabilities(self, counts: np.ndarray) -> np.ndarray:
        """P_1 over ids 0..vocab_size-1: continuation (or raw) unigram, interpolated with uniform when floored."""
        discount = self._discount_of(1, counts)
        total = counts.sum()
        uniform_mass = discount[counts > 0].sum() / total / (self.vocab_size - 1)
        probabilities = np.maximum(counts - discount, 0.0) / total + uniform_mass
        probabilities[0] = 0.0
        return probabilities

    def _interpolation_weights(self, n: int, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """alpha per n-gram of order n, gamma per context ((n-1)-gram), and which contexts have counts."""
        discount = self._discount_of(n, counts)
        contexts = self._keys[n] // self.vocab_size
        context_count = self.vocab_size if n == 2 else len(self._keys[n - 1])
        totals = np.bincount(contexts, weights=counts, minlength=context_count)
        given_up = np.bincount(contexts, weights=np.where(counts > 0, discount, 0.0), minlength=context_count)
        seen = totals > 0
        safe_totals = np.where(seen, totals, 1.0)
        alpha = np.maximum(counts - discount, 0.0) / safe_totals[contexts]
        gamma = np.where(seen, given_up / safe_totals, 1.0)
        return alpha, gamma, seen

    def _lookup_ids(self, tokens: np.ndarray) -> dict[int, np.ndarray]:
        """For n = 1..order, the id of the n-gram starting at each position of ``tokens`` (-1 if unseen in training)."""
        ids = {1: tokens}
        for n in range(2, self.order + 1):
            parents = ids[n - 1][:-1]
            keys = np.where(parents >= 0, parents * self.vocab_size + tokens[n - 1 :], -1)
            found = np.minimum(np.searchsorted(self._keys[n], keys), len(self._keys[n]) - 1)
            ids[n] = np.where(self._keys[n][found] == keys, found, -1)
        return ids

    def _top_k_tables(self, k: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Per order n, (ids, probabilities) of the top k after each context of order n; order 1: one row."""
        if self._top_k_cache is not None and self._top_k_cache[0] == k:
            return self._top_k_cache[1]
        vocabulary = np.arange(1, self.vocab_size)
        best = vocabulary[np.lexsort((vocabulary, -self._unigram[1:]))[:k]]
        tables = {1: (best[None, :].astype(np.int32), self._unigram[best][None, :])}
        ngram_probabilities = self._unigram
        for n in range(2, self.order + 1):
            contexts = self._keys[n] // self.vocab_size
            ngram_probabilities = self._alpha[n] + self._gamma[n][contexts] * ngram_probabilities[self._suffix[n]]
            tables[n] = self._context_top_k(n, k, tables[n - 1], ngram_probabilities)
        self._top_k_cache = (k, tables)
        return tables

    def _context_top_k(
        self, n: int, k: int, lower: tuple[np.ndarray, np.ndarray], ngram_probabilities: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top k after each context of order n from the words seen after it and its suffix's top k."""
        vocab_size = self.vocab_size
        contexts = self._keys[n] // vocab_size
        observed = self._seen[n][contexts]
        seen_contexts = np.flatnonzero(self._seen[n])
        lower_rows = np.zeros_like(seen_contexts) if n == 2 else self._suffix[n - 1][seen_contexts]
        lower_ids, lower_probabilities = lower
        backed_off_context = np.repeat(seen_contexts, k)
        backed_off_word = lower_ids[lower_rows].ravel()
        backed_off_probability = (self._gamma[n][seen_contexts, None] * lower_probabilities[lower_rows]).ravel()
        # A suffix top-k word also seen after the context is already among the n-grams, with its alpha.
        backed_off_keys = backed_off_context * vocab_size + backed_off_word
        found = np.minimum(np.searchsorted(self._keys[n], backed_off_keys), len(self._keys[n]) - 1)
        new = self._keys[n][found] != backed_off_keys
        candidate_context = np.concatenate([contexts[observed], backed_off_context[new]])
        candidate_word = np.concatenate([self._keys[n][observed] % vocab_size, backed_off_word[new]])
        candidate_probability = np.concatenate([ngram_probabilities[observed], backed_off_probability[new]])
        ranked = np.lexsort((candidate_word, -candidate_probability, candidate_context))
        ranked_context = candidate_context[ranked]
        rank = np.arange(len(ranked)) - np.searchsorted(ranked_context, ranked_context)
        head = rank < k
        kept, kept_rank = ranked[head], rank[head]
        context_count = vocab_size if n == 2 else len(self._keys[n - 1])
        ids = np.zeros((context_count, k), dtype=np.int32)
        probabilities = np.zeros((context_count, k))
        ids[candidate_context[kept], kept_rank] = candidate_word[kept]
        probabilities[candidate_context[kept], kept_rank] = candidate_probability[kept]
        return ids, probabilities


def _checked_discount(discount: float | str) -> float | str:
    """``discount`` if it is "modified", "auto" or a number in (0, 1]; a clear ValueError otherwise."""
    if discount in (AUTO, MODIFIED):
        return discount
    if isinstance(discount, bool) or not isinstance(discount, (int, float, np.floating, np.integer)) or not 0 < discount <= 1:
        raise ValueError(f"discount must be 'modified', 'auto' or a number in (0, 1], got {discount!r}")
    return float(discount)


def _checked_tokens(tokens: Sequence[int] | np.ndarray, vocab_size: int, what: str, allow_empty: bool) -> np.ndarray:
    """``tokens`` as a 1-D int64 array, every id in [1, vocab_size); ValueError naming the first bad one."""
    array = np.asarray(tokens)
    if array.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional, got shape {array.shape}")
    if not len(array):
        if not allow_empty:
            raise ValueError(f"{what} is empty")
        return array.astype(np.int64)
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{what} must hold integer token ids, got dtype {array.dtype}")
    outside = np.flatnonzero((array < 1) | (array >= vocab_size))
    if len(outside):
        raise ValueError(
            f"{what} holds id {array[outside[0]]} at position {outside[0]}, outside [1, {vocab_size}) "
            "(0 is padding and never a token)"
        )
    return array.astype(np.int64)
