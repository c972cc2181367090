"""tasks.baselines.ngram: the fast Kneser-Ney models against NLTK's KneserNeyInterpolated, a slow
reference of modified Kneser-Ney, and their own invariants."""
from __future__ import annotations

import numpy as np
import pytest
from nltk.lm import KneserNeyInterpolated
from nltk.util import everygrams

from collections import Counter

from tasks.baselines.ngram import AUTO_FALLBACK_DISCOUNT, MODIFIED_FALLBACK_DISCOUNTS, KneserNey

VOCAB_SIZE = 30  # ids 22..29 never occur in the toy streams: words the model has never seen
END = 2


def toy_stream(length: int = 400, seed: int = 0) -> np.ndarray:
    """A sparse Markov chain over ids 1..21 (1 = OOV, 2 = end token), so n-grams up to order 4 repeat."""
    rng = np.random.default_rng(seed)
    followers = {token: rng.choice(np.arange(2, 22), size=3, replace=False) for token in range(1, 22)}
    tokens = [END]
    for _ in range(length - 1):
        tokens.append(1 if rng.random() < 0.05 else int(rng.choice(followers[tokens[-1]])))
    return np.array(tokens, dtype=np.int32)


def proper_stream() -> np.ndarray:
    """The toy stream with its first five tokens repeated at the end.

    NLTK's lower orders mix raw counts (gamma's numerator) with continuation counts (alpha and
    T), which disagree for the n-grams at the very start of the stream: they have no token
    before them. Repeating the start later gives each of those n-grams a predecessor, so both
    count the same words and NLTK's distribution sums to 1 after every context.
    """
    tokens = toy_stream()
    return np.concatenate([tokens, tokens[:5]])


def nltk_model(stream: np.ndarray, order: int, discount: float) -> KneserNeyInterpolated:
    """NLTK's model over the same n-grams: one "sentence" (the whole stream), no padding.

    Tokens become strings; the vocabulary is the stream itself (cutoff 1), so fitting maps
    nothing to <UNK>. Scores go through ``unmasked_score``: ``score`` would map the ids never
    seen in training to <UNK>, i.e. answer with the probability of a different word.
    """
    names = [f"w{token}" for token in stream]
    model = KneserNeyInterpolated(order, discount=discount)
    model.fit([list(everygrams(names, max_len=order))], vocabulary_text=names)
    return model


def nltk_distribution(model: KneserNeyInterpolated, context: tuple[int, ...]) -> np.ndarray:
    """NLTK's probability of every id 0..VOCAB_SIZE-1 after ``context`` (0 for padding)."""
    names = tuple(f"w{token}" for token in context) or None
    return np.array([0.0] + [model.unmasked_score(f"w{word}", names) for word in range(1, VOCAB_SIZE)])


def contexts_to_check(stream: np.ndarray, order: int, seed: int = 1) -> list[tuple[int, ...]]:
    """Seen contexts of every length up to order-1, unseen ones, never-seen ids, and over-long ones."""
    rng = np.random.default_rng(seed)
    contexts = {()}
    for length in range(1, order):
        starts = rng.choice(len(stream) - length, size=25, replace=False)
        contexts.update(tuple(int(t) for t in stream[start : start + length]) for start in starts)
        contexts.update(tuple(int(t) for t in rng.integers(1, VOCAB_SIZE, size=length)) for _ in range(8))
        contexts.add((25,) * length)
    contexts.update(tuple(int(t) for t in stream[start : start + order + 1]) for start in (0, 40, 77))
    return sorted(contexts)


def start_affected(context: tuple[int, ...], stream: np.ndarray, order: int) -> bool:
    """Whether ``context`` backs off through a stream-start context whose NLTK counts disagree.

    That is a suffix ``stream[:m]`` (m <= order-2, a lower order) whose next token
    ``stream[m]`` follows it only at the start, where nothing precedes it.
    """
    context = context[max(len(context) - order + 1, 0) :]
    ngrams = {tuple(int(t) for t in stream[i : i + m + 1]) for m in range(1, order - 1) for i in range(1, len(stream) - m)}
    return any(
        context[len(context) - m :] == tuple(int(t) for t in stream[:m]) and tuple(int(t) for t in stream[: m + 1]) not in ngrams
        for m in range(1, min(order - 2, len(context)) + 1)
    )


@pytest.mark.parametrize(("order", "discount"), [(2, 0.1), (3, 0.75), (4, 0.5)])
def test_probabilities_equal_nltk_for_every_context_and_word(order: int, discount: float) -> None:
    stream = proper_stream()
    ours = KneserNey.fit(stream, VOCAB_SIZE, order, discount, unigram_floor=False)
    theirs = nltk_model(stream, order, discount)
    contexts = contexts_to_check(stream, order)
    assert len(contexts) > 20 * (order - 1)
    for context in contexts:
        expected = nltk_distribution(theirs, context)
        assert expected.sum() == pytest.approx(1.0, abs=1e-12), context  # the stream was built to keep NLTK proper
        np.testing.assert_allclose(ours.probabilities(context), expected, rtol=0, atol=1e-12, err_msg=str(context))


@pytest.mark.parametrize("order", [3, 4])
def test_differs_from_nltk_only_where_the_stream_start_breaks_nltk(order: int) -> None:
    # Starts with a common token followed by an id seen nowhere else: at order 3 NLTK's
    # distribution after (END,) sums to more than 1; at order 4 it divides by zero after (END, 24).
    stream = np.concatenate([[END, 24], toy_stream(seed=3)])
    ours = KneserNey.fit(stream, VOCAB_SIZE, order, 0.75, unigram_floor=False)
    theirs = nltk_model(stream, order, 0.75)
    contexts = contexts_to_check(stream, order) + [(END,), (5, END), (END, 24), (7, END, 24)]
    affected = 0
    for context in contexts:
        distribution = ours.probabilities(context)
        assert distribution.sum() == pytest.approx(1.0, abs=1e-12), context
        if start_affected(context, stream, order):
            affected += 1
            try:
                assert nltk_distribution(theirs, context).sum() > 1 + 1e-6, context
            except ZeroDivisionError:
                assert order == 4 and context[-2:] == (END, 24), context
        else:
            np.testing.assert_allclose(distribution, nltk_distribution(theirs, context), rtol=0, atol=1e-12, err_msg=str(context))
    assert 0 < affected < len(contexts)


def test_floor_changes_only_the_unigram_level() -> None:
    """P_floor(.|c) - P_nltk(.|c) = (product of gammas on c's chain) * (P_1 floor - P_1 nltk)."""
    stream = proper_stream()
    floored = KneserNey.fit(stream, VOCAB_SIZE, 3, 0.75)
    unfloored = KneserNey.fit(stream, VOCAB_SIZE, 3, 0.75, unigram_floor=False)
    unigram_change = floored.probabilities([]) - unfloored.probabilities([])
    assert unigram_change[22:].min() > 0  # the never-seen words now have mass
    for context in contexts_to_check(stream, 3):
        change = floored.probabilities(context) - unfloored.probabilities(context)
        scale = change @ unigram_change / (unigram_change @ unigram_change)
        assert 0 < scale <= 1
        np.testing.assert_allclose(change, scale * unigram_change, rtol=0, atol=1e-14)


@pytest.mark.parametrize("order", [1, 2, 3, 5])
@pytest.mark.parametrize(("discount", "unigram_floor"), [("modified", True), ("auto", True), (0.3, True), (0.9, False)])
def test_every_distribution_sums_to_one(order: int, discount: float | str, unigram_floor: bool) -> None:
    stream = proper_stream() if not unigram_floor else toy_stream(seed=5)  # floor off: NLTK-proper stream
    model = KneserNey.fit(stream, VOCAB_SIZE, order, discount, unigram_floor)
    for context in contexts_to_check(stream, max(order, 2)):
        distribution = model.probabilities(context)
        assert distribution[0] == 0.0
        assert distribution.min() >= 0.0
        assert abs(distribution.sum() - 1.0) < 1e-9, context
        if unigram_floor:
            assert distribution[1:].min() > 0.0


def test_unseen_words_have_zero_probability_only_without_the_floor() -> None:
    stream = toy_stream()
    test = np.array([3, 4, 23, 5], dtype=np.int32)  # 23 never occurs in training
    unfloored = KneserNey.fit(stream, VOCAB_SIZE, 3, 0.75, unigram_floor=False)
    assert unfloored.log_probs(test)[2] == -np.inf
    assert unfloored.perplexity(test) == np.inf
    floored = KneserNey.fit(stream, VOCAB_SIZE, 3, 0.75)
    assert np.isfinite(floored.log_probs(test)).all()
    assert np.isfinite(floored.perplexity(test))


@pytest.mark.parametrize("order", [1, 2, 3, 4])
@pytest.mark.parametrize(("k", "unigram_floor"), [(1, True), (5, True), (5, False), (VOCAB_SIZE - 1, False)])
def test_top_k_is_the_head_of_the_full_distribution_ranking(order: int, k: int, unigram_floor: bool) -> None:
    model = KneserNey.fit(toy_stream(), VOCAB_SIZE, order, 0.6, unigram_floor)
    # Other text from the same chain plus never-seen ids: seen, partly seen and unseen contexts.
    scored = np.concatenate([toy_stream(150, seed=7), [23, 24, 3, 23, 1, 4, 4, 4]])
    predictions = model.top_k(scored, k)
    assert predictions.shape == (len(scored), k)
    for position in range(len(scored)):
        distribution = model.probabilities(scored[max(0, position - order + 1) : position])
        ids = np.arange(1, VOCAB_SIZE)
        ranking = ids[np.lexsort((ids, -distribution[1:]))]  # most probable first, ties to the smaller id
        np.testing.assert_array_equal(predictions[position], ranking[:k], err_msg=f"position {position}")


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_log_probs_are_the_log_of_each_positions_probability(order: int) -> None:
    model = KneserNey.fit(toy_stream(), VOCAB_SIZE, order)
    scored = np.concatenate([toy_stream(120, seed=9), [23, 3, 23, 1]])
    log_probs = model.log_probs(scored)
    assert log_probs.dtype == np.float64 and log_probs.shape == (len(scored),)
    expected = [np.log(model.probabilities(scored[max(0, i - order + 1) : i])[token]) for i, token in enumerate(scored)]
    np.testing.assert_allclose(log_probs, expected, rtol=0, atol=1e-12)
    assert model.perplexity(scored) == pytest.approx(np.exp(-np.mean(expected)), rel=1e-12)


def test_log_probs_equal_nltk_on_a_stream() -> None:
    stream = proper_stream()
    ours = KneserNey.fit(stream, VOCAB_SIZE, 3, 0.75, unigram_floor=False)
    theirs = nltk_model(stream, 3, 0.75)
    scored = toy_stream(80, seed=11)
    expected = [
        theirs.unmasked_score(f"w{token}", tuple(f"w{t}" for t in scored[max(0, i - 2) : i]) or None)
        for i, token in enumerate(scored)
    ]
    np.testing.assert_allclose(ours.log_probs(scored), np.log(expected), rtol=0, atol=1e-12)


@pytest.mark.parametrize("discount", ["modified", "auto", 0.4])
def test_save_and_load_round_trip_without_pickle(tmp_path, discount: float | str) -> None:
    model = KneserNey.fit(toy_stream(), VOCAB_SIZE, 4, discount)
    path = tmp_path / "kn.npz"
    model.save(path)
    with np.load(path, allow_pickle=False) as saved:
        assert all(saved[name].dtype != object for name in saved.files)
    loaded = KneserNey.load(path)
    scored = np.concatenate([toy_stream(200, seed=13), [23, 3]])
    assert (loaded.order, loaded.vocab_size, loaded.discounts, loaded.unigram_floor) == (
        model.order, model.vocab_size, model.discounts, model.unigram_floor
    )
    np.testing.assert_array_equal(loaded.log_probs(scored), model.log_probs(scored))
    np.testing.assert_array_equal(loaded.top_k(scored, 3), model.top_k(scored, 3))


def test_auto_discount_is_neys_estimate_per_order() -> None:
    stream = np.array([2, 3, 4, 2, 3, 4, 2, 5, 4, 3, 2], dtype=np.int32)
    # Order 3, raw trigram counts: 234 x2, 342 x2; 423, 425, 254, 543, 432 once: n1=5, n2=2.
    # Order 2, continuation counts N1+(. b c): every bigram has one distinct predecessor
    #   (23 at position 0 has none, at position 3 it has 4): n1=7, n2=0 -> D=1.
    # Order 1, continuation counts: 2 after {3,4}, 3 after {2,4}, 4 after {3,5}, 5 after {2}:
    #   n1=1, n2=3 -> D=1/7.
    model = KneserNey.fit(stream, 7, order=3, discount="auto")
    assert [d[0] for d in model.discounts] == pytest.approx([1 / 7, 1.0, 5 / 9], abs=1e-15)
    assert all(len(set(d)) == 1 for d in model.discounts)  # one discount per order, whatever the count
    assert KneserNey.fit(stream, 7, order=3, discount="auto", unigram_floor=False).discounts[0] == (0.0, 0.0, 0.0)
    # No bigram seen once (23 x4, 32 x3): Ney's estimate would be 0, the fallback applies; the
    # unigram level has n1=2 (3 after 2, 2 after 3), n2=0 -> D=1.
    repetitive = KneserNey.fit(np.array([2, 3] * 4), 7, order=2, discount="auto")
    assert repetitive.discounts == ((1.0,) * 3, (AUTO_FALLBACK_DISCOUNT,) * 3)

    # Order 2: raw bigrams 23, 34, 42 twice; 25, 54, 43, 32 once: n1=4, n2=3 -> D2=0.4.
    bigram = KneserNey.fit(stream, 7, order=2, discount="auto")
    assert [d[0] for d in bigram.discounts] == pytest.approx([1 / 7, 0.4], abs=1e-15)
    # P(3 | 2): 2 is followed by 3 twice and 5 once; 7 distinct bigrams, 4 words continue one.
    unigram_3 = (2 - 1 / 7) / 7 + (1 / 7) * 4 / 7 / 6
    assert bigram.probabilities([2])[3] == pytest.approx((2 - 0.4) / 3 + 0.4 * 2 / 3 * unigram_3, abs=1e-15)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: KneserNey.fit(toy_stream(), VOCAB_SIZE, order=0), "order must be an integer >= 1"),
        (lambda: KneserNey.fit(toy_stream(), VOCAB_SIZE, order=2.5), "order must be an integer >= 1"),
        (lambda: KneserNey.fit(toy_stream(), 1), "vocab_size must be an integer >= 2"),
        (lambda: KneserNey.fit(np.array([], dtype=np.int32), VOCAB_SIZE), "stream is empty"),
        (lambda: KneserNey.fit(np.array([3, 0, 4]), VOCAB_SIZE), r"id 0 at position 1, outside \[1, 30\)"),
        (lambda: KneserNey.fit(np.array([3, 30, 4]), VOCAB_SIZE), r"id 30 at position 1, outside \[1, 30\)"),
        (lambda: KneserNey.fit(np.array([3, -2, 4]), VOCAB_SIZE), "id -2 at position 1"),
        (lambda: KneserNey.fit(np.array([3.0, 4.0]), VOCAB_SIZE, 1), "integer token ids"),
        (lambda: KneserNey.fit(np.array([[3, 4]]), VOCAB_SIZE, 1), "one-dimensional"),
        (lambda: KneserNey.fit(np.array([3, 4]), VOCAB_SIZE, 3), "stream has 2 tokens; an order-3 model needs at least 3"),
        (lambda: KneserNey.fit(toy_stream(), VOCAB_SIZE, discount=0), r"discount must be 'modified', 'auto' or a number in \(0, 1\]"),
        (lambda: KneserNey.fit(toy_stream(), VOCAB_SIZE, discount=1.5), "discount must be"),
        (lambda: KneserNey.fit(toy_stream(), VOCAB_SIZE, discount="ney"), "discount must be"),
        (lambda: KneserNey.fit(toy_stream(), VOCAB_SIZE).log_probs(np.array([], dtype=np.int32)), "stream is empty"),
        (lambda: KneserNey.fit(toy_stream(), VOCAB_SIZE).log_probs(np.array([3, 31])), "id 31 at position 1"),
        (lambda: KneserNey.fit(toy_stream(), VOCAB_SIZE).top_k(np.array([3, 0])), "id 0 at position 1"),
        (lambda: KneserNey.fit(toy_stream(), VOCAB_SIZE).top_k(np.array([], dtype=np.int32)), "stream is empty"),
        (lambda: KneserNey.fit(toy_stream(), VOCAB_SIZE).top_k(np.array([3]), k=0), r"k must be an integer in \[1, 29\]"),
        (lambda: KneserNey.fit(toy_stream(), VOCAB_SIZE).top_k(np.array([3]), k=VOCAB_SIZE), "k must be"),
        (lambda: KneserNey.fit(toy_stream(), VOCAB_SIZE).probabilities([3, 0]), "context holds id 0"),
    ],
)
def test_bad_arguments_raise_value_error(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def reference_modified_kneser_ney(stream: list[int], order: int, vocab_size: int):
    """Modified Kneser-Ney written out from Chen & Goodman's definition, one dictionary per order:
    P(w | c) for any context, slowly. The top order counts n-grams; each lower order counts, for
    each n-gram, the distinct tokens seen before it; the unigram level is floored to uniform."""
    grams = {n: Counter(tuple(stream[i : i + n]) for i in range(len(stream) - n + 1)) for n in range(1, order + 1)}
    counts = {order: grams[order]}
    for n in range(1, order):
        counts[n] = Counter(gram[1:] for gram in grams[n + 1])  # one per distinct predecessor
    discounts = {}
    for n, level in counts.items():
        of = Counter(level.values())
        n1, n2, n3, n4 = (of[i] for i in (1, 2, 3, 4))
        if n1 and n2 and n3 and n4:
            y = n1 / (n1 + 2 * n2)
            found = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
            discounts[n] = found if all(0 < d <= i for i, d in enumerate(found, start=1)) else MODIFIED_FALLBACK_DISCOUNTS
        else:
            discounts[n] = MODIFIED_FALLBACK_DISCOUNTS

    def discount(n: int, count: int) -> float:
        return discounts[n][min(count, 3) - 1] if count else 0.0

    def probability(word: int, context: tuple[int, ...]) -> float:
        n = len(context) + 1
        if n == 1:
            total = sum(counts[1].values())
            given_up = sum(discount(1, k) for k in counts[1].values())
            k = counts[1].get((word,), 0)
            return max(k - discount(1, k), 0) / total + given_up / total / (vocab_size - 1)
        after = {gram[-1]: k for gram, k in counts[n].items() if gram[:-1] == context}
        lower = probability(word, context[1:])
        total = sum(after.values())
        if not total:
            return lower
        k = after.get(word, 0)
        given_up = sum(discount(n, count) for count in after.values())
        return max(k - discount(n, k), 0) / total + given_up / total * lower

    return probability, discounts


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_modified_kneser_ney_equals_the_reference_for_every_context_and_word(order: int) -> None:
    stream = proper_stream()  # every n-gram has a predecessor: the definition's counts are unambiguous
    model = KneserNey.fit(stream, VOCAB_SIZE, order, "modified")
    reference, discounts = reference_modified_kneser_ney([int(t) for t in stream], order, VOCAB_SIZE)
    assert np.ravel(model.discounts) == pytest.approx(np.ravel([discounts[n] for n in range(1, order + 1)]), abs=1e-12)
    for context in contexts_to_check(stream, max(order, 2)):
        short = context[max(len(context) - order + 1, 0) :]
        expected = [0.0] + [reference(word, short) for word in range(1, VOCAB_SIZE)]
        np.testing.assert_allclose(model.probabilities(context), expected, rtol=0, atol=1e-12)


def test_modified_discounts_follow_the_count_of_counts() -> None:
    stream = toy_stream(4000, seed=3)  # long enough for every count-of-count 1..4 at the top order
    model = KneserNey.fit(stream, VOCAB_SIZE, 3, "modified")
    top = model.discounts[2]
    assert top != MODIFIED_FALLBACK_DISCOUNTS and len(set(top)) == 3  # estimated: three discounts, not one
    assert all(0 < d <= i for i, d in enumerate(top, start=1))
    # Two tokens alternating: every bigram counted many times, no count of one: the fallback.
    assert KneserNey.fit(np.array([2, 3] * 6), 7, 2, "modified").discounts[1] == MODIFIED_FALLBACK_DISCOUNTS

