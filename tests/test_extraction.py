"""The extraction against independent answers: exhaustive scans, and the model itself.

- the smallest prefix equals an exhaustive scan whenever that answer lies within the
  dense limit, and keeps its documented promise otherwise (random non-monotone
  predicates up to ~4 000 features, and a band oracle's real prefixes);
- every reported minimal set fails once any one of its features is dropped (checked with
  the model on numpy reconstructions, not freqrex's kernels);
- the three definitions, both ways; degenerate decisions are said aloud.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import BANDS, SR, callable_band_oracle, make_clip, two_band_model

import freqrex
from freqrex import CallableModel, examples, extraction, minimal
from freqrex.config import Config, ModelConfig
from freqrex.criterion import KINDS, Criterion
from freqrex.domains import FFTDomain
from freqrex.extraction import Prefixes, coarse_prefix, extract, smallest_prefix
from freqrex.minimal import shrink, shrink_together
from freqrex.model import load_model
from freqrex.model.activation import softmax
from freqrex.mutants import Mutants, minus, overlapped, run_key

DENSE = 64


def first_true(table: np.ndarray, lo: int) -> int | None:
    hits = np.flatnonzero(table[lo:])
    return int(lo + hits[0]) if hits.size else None


def check_promise(table: np.ndarray, lo: int, hi: int) -> None:
    """What the docs promise, checked against the whole table ``table[k]``."""
    calls = []

    def predicate(ks):
        calls.append(len(ks))
        return table[ks]

    k, proven = smallest_prefix(predicate, lo, hi, dense_limit=DENSE)
    exact = first_true(table[:hi + 1], lo)
    dense_end = max(lo - 1, DENSE)   # every k from lo up to here is tested first
    if exact is not None and exact <= dense_end:
        assert (k, proven) == (exact, True)
    if k is None:
        assert exact is None or not proven
        return
    assert table[k] and (k == lo or not table[k - 1])   # holds, at a boundary
    assert exact is not None and k >= exact
    assert proven == (k == exact) or not proven          # proven means exact
    if proven:
        assert k == exact
    later = table[dense_end + 1:hi + 1]
    if exact > dense_end and np.all(np.diff(later.astype(int)) >= 0):
        assert k == exact                                  # monotone beyond the dense range
    assert len(calls) <= 2 + int(np.log(max(hi - lo, 2)) / np.log(17)) + 2


@given(n=st.integers(1, 4000), lo=st.integers(1, 40), density=st.floats(0.0, 0.05),
       tail=st.integers(0, 4000), seed=st.integers(0, 2**31))
@settings(max_examples=300, deadline=None)
def test_smallest_prefix_against_an_exhaustive_scan(n, lo, density, tail, seed):
    """Random non-monotone predicates: sparse isolated hits below a solid tail."""
    rng = np.random.default_rng(seed)
    hi = lo + n
    table = rng.random(hi + 1) < density
    table[min(hi, lo + tail):] = True
    table[:lo] = False
    check_promise(table, lo, hi)


@given(n=st.integers(65, 4000), seed=st.integers(0, 2**31))
@settings(max_examples=100, deadline=None)
def test_smallest_prefix_is_exact_for_hits_within_the_dense_limit(n, seed):
    rng = np.random.default_rng(seed)
    table = np.zeros(n + 2, dtype=bool)
    table[rng.integers(1, DENSE + 1)] = True          # one isolated hit, nothing around it
    table[rng.integers(DENSE + 1, n + 1):] = True
    k, proven = smallest_prefix(lambda ks: table[ks], 1, n + 1, dense_limit=DENSE)
    assert proven and k == first_true(table, 1)


def _oracle_criterion(domain, target=0, **rules):
    logits = callable_band_oracle(BANDS, SR)

    def model(x):
        z = np.asarray(logits(x), dtype=np.float64)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    p0 = float(model(domain.x[None])[0, target])
    return Criterion(model, target, p0, 0.5, **rules)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 5000), st.integers(1, 5000), st.sampled_from([0.0, 0.05, 0.2]))
def test_coarse_prefix_is_within_its_tolerance_of_the_threshold(n, threshold, tolerance):
    calls = []

    def predicate(ks: np.ndarray) -> np.ndarray:
        calls.append(len(ks))
        return ks >= threshold

    k = coarse_prefix(predicate, 1, n, tolerance=tolerance)
    if threshold > n:
        assert k is None
        return
    assert k is not None and threshold <= k <= max(threshold, int(threshold / (1 - tolerance)) + 1)
    if tolerance == 0.0:
        assert k == threshold
    # one geometric batch, then refinements that each divide the bracket by ~PROBES
    assert len(calls) <= 1 + int(np.ceil(np.log(max(n, 2)) / np.log(33))) + 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_smallest_prefix_on_an_oracle_against_its_exhaustive_scan(seed):
    """A band oracle over 4 001 bins, with a ranking shuffled to make it non-monotone."""
    n = 8000
    domain = FFTDomain(make_clip(seed, n=n), SR)
    criterion = _oracle_criterion(domain)
    rng = np.random.default_rng(seed)
    hz = np.arange(domain.n_features) * SR / n
    band = np.flatnonzero((hz >= BANDS[0][0]) & (hz < BANDS[0][1]))
    rest = rng.permutation(np.setdiff1d(np.arange(domain.n_features), band))
    ranking = np.concatenate([rest[:30], rng.permutation(band), rest[30:]])
    every = np.arange(1, len(ranking) + 1)
    for kind in ("sufficient", "complete", "necessary"):
        scan = Prefixes(domain, criterion, ranking).holds(kind, every)
        table = np.concatenate([[False], scan])
        check_promise(table, 1, len(ranking))


@pytest.fixture(scope="module")
def oracle_run():
    model = _oracle_criterion(FFTDomain(make_clip(7), SR)).model
    return model, freqrex.explain(CallableModel(model, sample_rate=SR), make_clip(7),
                                  sample_rate=SR, seed=1, iterations=4, search_limit=600,
                                  minimal_budget=2000)


def _keep(x, bins):
    spectrum = np.fft.rfft(x.astype(np.float64))
    mask = np.zeros(spectrum.shape[0], dtype=bool)
    mask[np.asarray(bins, dtype=np.int64)] = True
    return np.fft.irfft(spectrum * mask, x.shape[0]).astype(np.float32)


@pytest.mark.parametrize("kind", KINDS)
def test_every_feature_of_a_minimal_set_is_needed(oracle_run, kind):
    model, result = oracle_run
    e = result.explanations[kind]
    assert e.found and e.verified and e.minimal and e.size <= e.prefix_size
    c = Criterion(model, result.target, result.confidence, 0.5)
    kept = np.stack([_keep(result.audio, e.bins)]
                    + [_keep(result.audio, np.delete(e.bins, i)) for i in range(e.size)])
    removed = result.audio[None] - kept
    holds = c.holds(kind, model(kept), model(removed))
    assert holds[0], "the set itself meets its definition"
    if e.size > 1:
        assert not holds[1:].any(), "some feature could be dropped"


@pytest.mark.parametrize(("confidence_filter", "tolerance"), [(0.5, 0.02), (0.999, 0.2)])
def test_the_sufficient_set_is_shrunk_on_from_a_smaller_sufficient_set(
        monkeypatch, confidence_filter, tolerance):
    """A necessary or complete set shrunk smaller than the sufficient one, and sufficient
    itself, is shrunk on as the sufficient set: the result is no larger than any of them
    that is sufficient, and is checked with the model on numpy reconstructions (it holds,
    no single bin can go). A smaller set that is not sufficient (a complete tolerance
    wider than the confidence filter) is not taken."""
    domain = FFTDomain(make_clip(1, n=1024), SR)
    logits = two_band_model("either", domain.x)   # many bins of one band's energy suffice

    def model(x):
        return softmax(np.asarray(logits(x), dtype=np.float64))

    criterion = Criterion(model, 0, float(model(domain.x[None])[0, 0]), confidence_filter,
                          complete_tolerance=tolerance)
    ranking = np.random.default_rng(0).permutation(domain.n_features)
    config = Config(minimal_budget=20000)
    found = extract(domain, criterion, ranking, config)
    monkeypatch.setattr(extraction, "_shrink_from_smaller", lambda *args: None)
    alone = extract(domain, criterion, ranking, config)
    x = domain.x

    def sufficient(sets):
        return criterion.passes(model(np.stack([_keep(x, b) for b in sets])))

    others = [alone[kind].bins for kind in ("necessary", "complete") if alone[kind].k]
    smaller = [b for b in others if len(b) < len(alone["sufficient"].bins)]
    assert smaller, "the case has a smaller set of another kind"
    e = found["sufficient"]
    assert e.verified and e.minimal and sufficient([e.bins])[0]
    assert not sufficient([np.delete(e.bins, i) for i in range(len(e.bins))]).any()
    taken = [b for b, ok in zip(smaller, sufficient(smaller)) if ok]
    if confidence_filter == 0.5:
        assert taken, "the necessary set is sufficient by definition"
        assert len(e.bins) <= min(len(b) for b in taken) < len(alone["sufficient"].bins)
    else:
        assert not taken, "the wide tolerance makes the smaller sets insufficient"
        assert e.bins.tolist() == alone["sufficient"].bins.tolist()
    for kind in ("necessary", "complete"):   # the other two are left as they were
        assert found[kind].bins.tolist() == alone[kind].bins.tolist()


def test_the_json_records_the_rules_and_the_guarantees(oracle_run):
    _, result = oracle_run
    doc = json.loads(result.to_json())
    assert doc["criterion"]["necessary_rule"] == "class"
    assert doc["criterion"]["complete_tolerance"] == 0.02
    assert doc["warnings"] == []
    for e in doc["explanations"].values():
        assert {"prefix_size", "proven_smallest", "minimal", "minimal_note"} <= set(e)


def test_complete_is_two_sided_and_necessary_needs_another_class_on_top():
    c = Criterion(lambda x: x, target=0, original_confidence=0.6, confidence_filter=0.5,
                  complete_tolerance=0.05)
    probs = np.array([[0.6, 0.4], [0.64, 0.36], [0.9, 0.1], [0.5, 0.5], [0.56, 0.44]])
    assert c.complete(probs).tolist() == [True, True, False, False, True]
    kept = np.array([[0.9, 0.1]] * 3)
    removed = np.array([[0.45, 0.55], [0.2, 0.1], [0.5, 0.5]])  # flipped, low but on top, tie
    assert c.holds("necessary", kept, removed).tolist() == [True, False, True]
    weak = Criterion(c.model, 0, 0.6, 0.5, necessary_rule="confidence")
    assert weak.holds("necessary", kept, removed).tolist() == [True, True, True]


def test_the_weaker_necessary_rule_is_an_option_and_recorded():
    x = make_clip(3)
    run = freqrex.explain(callable_band_oracle(BANDS, SR), x, sample_rate=SR, seed=0,
                          iterations=2, search_limit=200, necessary_rule="confidence")
    assert run.to_dict()["criterion"]["necessary_rule"] == "confidence"
    with pytest.raises(freqrex.FreqrexError, match="necessary_rule"):
        Config(necessary_rule="maybe")


def test_tied_scores_are_a_warning_never_a_verified_explanation():
    def flat(batch):
        return np.full((batch.shape[0], 3), 0.25)

    with pytest.warns(freqrex.FreqrexWarning, match="tied"):
        result = freqrex.explain(CallableModel(flat), make_clip(), sample_rate=SR,
                                 iterations=2, search_limit=100)
    assert result.warnings and "tied" in result.to_dict()["warnings"][0]
    assert not any(e.found or e.verified for e in result.explanations.values())


def test_extraction_spends_no_mutants_it_has_seen():
    domain = FFTDomain(make_clip(2, n=4096), SR)
    counted = []
    base = _oracle_criterion(domain)

    def model(x):
        counted.append(x.shape[0])
        return base.model(x)

    c = Criterion(model, 0, base.original_confidence, 0.5)
    ranking = np.argsort(-domain.magnitude())
    found = extract(domain, c, ranking, Config(minimal_budget=0))
    large = [e for e in found.values() if e.k is not None and e.k > 1]
    assert large
    for e in large:   # no budget to shrink: said so, never claimed minimal
        assert not e.minimal and "minimal_budget" in e.minimal_note and len(e.bins) == e.k
    # prefix searches share their outputs: no more mutants than distinct prefixes + checks
    assert sum(counted) <= 3 * (DENSE + 40) + 4


def test_each_set_has_its_own_minimal_budget(monkeypatch):
    """The necessary set's shrinking does not eat into the complete set's: each kind is
    shrunk with the whole ``minimal_budget`` (what one kind spends is at most that), and
    the complete set comes out smaller than it would with what the others left."""
    budget = 60
    domain = FFTDomain(make_clip(1, n=4096), SR)
    criterion = _oracle_criterion(domain)
    ranking = np.argsort(-domain.magnitude())
    runs = []

    def recorded(domain, criterion, sets, given, mutants):
        out = shrink_together(domain, criterion, sets, given, mutants)
        runs.extend((kind, given, spent) for (kind, _), (*_, spent) in zip(sets, out))
        return out

    monkeypatch.setattr(extraction, "shrink_together", recorded)
    found = extract(domain, criterion, ranking, Config(minimal_budget=budget))
    assert [kind for kind, _, _ in runs] == list(KINDS)
    assert all(given == budget and spent <= budget for _, given, spent in runs)
    left = budget - sum(spent for kind, _, spent in runs if kind != "complete")
    assert sum(spent for _, _, spent in runs) > budget   # a shared budget would have run out
    complete = found["complete"]
    starved, _, _, _ = shrink(domain, criterion, "complete", ranking[:complete.k], left)
    assert len(complete.bins) < len(starved)


@pytest.mark.parametrize("budget", [10_000, 40])
def test_sets_shrunk_together_are_those_shrunk_alone_in_fewer_model_calls(budget):
    """Shrinking the three sets in lock-step only batches their tests together: each set
    comes out as it does shrunk alone (the same features, minimal or not for the same
    reason), from fewer model calls than the three runs one after the other make, and
    no more mutants evaluated."""
    domain = FFTDomain(make_clip(1, n=4096), SR)
    ranking = np.random.default_rng(1).permutation(domain.n_features)  # three long prefixes
    alone, calls_alone, evaluated_alone = [], 0, 0
    starts = {}
    for kind in KINDS:
        counted = _counting_criterion(domain)
        found = extract(domain, counted.criterion, ranking, Config(minimal_budget=0))
        starts[kind] = ranking[:found[kind].k]
        mutants = Mutants(domain, counted.criterion)
        before = counted.calls
        alone.append(shrink(domain, counted.criterion, kind, starts[kind], budget, mutants))
        calls_alone += counted.calls - before
        evaluated_alone += mutants.evaluated
    counted = _counting_criterion(domain)
    mutants = Mutants(domain, counted.criterion)
    together = shrink_together(domain, counted.criterion,
                               [(kind, starts[kind]) for kind in KINDS], budget, mutants)
    for (bins, minimal_, note, spent), (bins1, minimal1, note1, spent1) in zip(together, alone):
        assert bins.tolist() == bins1.tolist() and minimal_ == minimal1 and note == note1
        assert spent <= spent1 <= budget
    assert all(len(bins) < len(starts[kind]) for kind, (bins, *_) in zip(KINDS, together))
    assert counted.calls < calls_alone and mutants.evaluated <= evaluated_alone


class _counting_criterion:   # noqa: N801 - a test helper used like a function
    """The oracle criterion with its model calls counted."""

    def __init__(self, domain):
        base = _oracle_criterion(domain)
        self.calls = 0

        def model(x):
            self.calls += 1
            return base.model(x)

        self.criterion = Criterion(model, base.target, base.original_confidence, 0.5)


def test_nearest_first_unions_removals_that_cancel():
    # least responsible first, every union of two or more pushes p_t past a 0.05 tolerance
    change = np.array([0.03, 0.03, 0.03, 0.03, -0.03, -0.03])
    order = minimal._nearest_first(np.arange(6), change, 0.0)
    assert order.tolist() == [0, 4, 1, 5, 2, 3]
    running = np.cumsum(change[order])
    assert np.all(np.abs(running[:5]) <= 0.05) and abs(np.cumsum(change)[1]) > 0.05
    # from where the set stands: 0.04 above p0, the change that brings it back comes first
    assert minimal._nearest_first(np.arange(3), np.array([0.01, -0.06, -0.03]),
                                  0.04).tolist() == [2, 0, 1]


def _additive_complete(seed: int, features: int = 64):
    """A clip of ``features + 4`` equal bins and a model whose ``p_t`` is 0.7 plus the
    effects of the bins it misses: 4 essential (-0.2), the rest small and negative, and 4
    bins outside the set to shrink that raise ``p_t`` by 0.04 together, so the set starts
    0.04 above ``p0`` and can lose 0.09 of ``p_t`` before it is no longer complete."""
    n = 2048
    every = np.arange(20, 20 + (features + 4) * 7, 7)
    X = np.zeros(n // 2 + 1, dtype=complex)
    X[every] = 1.0
    x = np.fft.irfft(X, n).astype(np.float32)
    lower = np.random.default_rng(seed).uniform(0.002, 0.04, features - 4)
    effect = np.r_[[-0.2] * 4, -lower, [0.01] * 4]

    def model(w):
        energy = np.abs(np.fft.rfft(np.asarray(w, np.float64), axis=1)[:, every]) ** 2
        p = 0.7 + ((1 - energy) * effect).sum(axis=1)
        return np.stack([p, 1 - p], axis=1)

    domain = FFTDomain(x, 8000)
    criterion = Criterion(model, 0, 0.7, 0.5, complete_tolerance=0.05)
    return domain, criterion, every[:features]


def test_the_complete_set_is_unioned_nearest_p0_first(monkeypatch):
    """On a model whose every removal lowers ``p_t``, unioning the removable chunks nearest
    ``p0`` first (the small changes after the one that brings ``p_t`` back) leaves a
    smaller minimal complete set than unioning them least responsible first, clip after
    clip; every set is minimal and complete by the model itself."""
    ordered, plain = [], []
    for seed in range(4):
        domain, criterion, bins = _additive_complete(seed)
        ordered.append(shrink(domain, criterion, "complete", bins, 2000))
    monkeypatch.setattr(minimal, "_nearest_first", lambda chunks, change, offset: chunks)
    for seed in range(4):
        domain, criterion, bins = _additive_complete(seed)
        plain.append(shrink(domain, criterion, "complete", bins, 2000))
    for seed, (got, base) in enumerate(zip(ordered, plain)):
        assert got[1] and base[1], "both proven minimal"
        assert len(got[0]) < len(base[0]), seed
        domain, criterion, _ = _additive_complete(seed)
        kept = domain.keep([got[0]] + [np.delete(got[0], i) for i in range(len(got[0]))])
        holds = criterion.complete(criterion.probabilities(kept))
        assert holds[0] and not holds[1:].any()


@pytest.mark.parametrize("kind", KINDS)
def test_a_round_the_budget_cannot_pay_for_still_tries_what_it_can(kind, monkeypatch):
    """With too little budget for a whole round, the shrinking tries the least responsible
    chunks it can pay for: within its budget, the set still meets its definition (by the
    model), it is never larger than stopping before the round would leave it, and
    sometimes smaller."""
    domain = FFTDomain(make_clip(1, n=4096), SR)
    criterion = _oracle_criterion(domain)
    ranking = np.argsort(-domain.magnitude())
    found = extract(domain, criterion, ranking, Config(minimal_budget=0))
    bins = ranking[:found["complete"].k]   # large enough to shrink, and meets every kind

    def meets(features):
        kept = domain.keep([features])
        return criterion.holds(kind, criterion.probabilities(kept),
                               criterion.probabilities(domain.remove(kept)))[0]

    assert meets(bins)
    budgets = range(4, 80, 5)
    short = [shrink(domain, criterion, kind, bins, b) for b in budgets]
    monkeypatch.setattr(minimal, "_affordable",
                        lambda chunks, left, per_set: chunks if left >= per_set * chunks else 0)
    stopped = [shrink(domain, criterion, kind, bins, b) for b in budgets]
    for b, got, base in zip(budgets, short, stopped):
        assert got[3] <= b and set(got[0]) <= set(base[0]) and meets(got[0]), b
    assert any(len(got[0]) < len(base[0]) for got, base in zip(short, stopped))


def test_a_guided_round_tries_the_most_promising_chunks_first():
    """The necessary set's rounds: all chunks at once until half the features were tried,
    then the g / 8 chunks predicted to leave the most room (here the two whose features
    cost the removal margin nothing), the rest after; untried features count as the
    median of the tried ones."""
    chunks = np.array_split(np.arange(64), 16)
    change = np.full((64, 3), np.nan)
    margins = np.array([0.2, 0.2, 0.05])
    assert [part.tolist() for part in minimal._parts(chunks, change, margins)] == [
        list(range(16))]
    change[:] = [0.0, 0.0, -0.01]
    change[chunks[3], 2] = change[chunks[11], 2] = 0.0
    first, rest = minimal._parts(chunks, change, margins)
    assert first.tolist() == [3, 11]
    assert rest.tolist() == [i for i in range(16) if i not in (3, 11)]
    change = np.array([[-0.1, -0.1, 0.0], [-0.3, -0.3, 0.0], [np.nan] * 3])
    singles = [np.array([i]) for i in range(3)]
    assert minimal._promising(singles, change, np.array([0.5, 0.5, np.nan])).tolist() == [
        0, 2, 1]


def test_the_necessary_margins_are_positive_exactly_where_the_predicate_holds():
    rng = np.random.default_rng(0)
    for rule in ("class", "confidence"):
        c = Criterion(lambda x: x, target=1, original_confidence=0.8, confidence_filter=0.5,
                      necessary_rule=rule)
        kept, removed = rng.dirichlet(np.ones(3), 500), rng.dirichlet(np.ones(3), 500)
        margins = np.column_stack([c.kept_margins(kept), c.removal_margin(removed)])
        inside = (margins[:, 0] > 0) & (margins[:, 1] >= 0) & (margins[:, 2] > 0)
        assert np.array_equal(inside, c.holds("necessary", kept, removed))
        assert 0 < inside.sum() < 500


@pytest.mark.parametrize("clip", ["flute.wav", "organ.wav"])
def test_guided_rounds_shrink_the_necessary_set_further_in_the_same_budget(clip, monkeypatch):
    """On the bundled model, whose necessary sets never get to be minimal within
    ``minimal_budget``, guided rounds leave a smaller necessary set than rounds that try
    every chunk at once; each meets the definition by the model on numpy
    reconstructions."""
    path = next(p for p in examples.example_clips() if p.name == clip)
    params = dict(seed=0, iterations=2, search_limit=300)
    guided = freqrex.explain(examples.reference_model(), path, **params)
    monkeypatch.setattr(minimal, "_parts", lambda chunks, change, margins: [
        np.arange(len(chunks))])
    plain = freqrex.explain(examples.reference_model(), path, **params)
    sets = [r.explanations["necessary"] for r in (guided, plain)]
    assert sets[0].size < sets[1].size
    model = load_model(examples.reference_model(), ModelConfig(), activation="auto")
    for result, e in zip((guided, plain), sets):
        c = Criterion(model, result.target, result.prediction.target_confidence, 0.5)
        kept = _keep(result.audio, e.bins)[None]
        assert e.verified and c.holds("necessary", model(kept), model(result.audio - kept))[0]


@pytest.mark.parametrize("rule", ["class", "confidence"])
def test_the_necessary_predicate_asks_the_model_only_what_decides_it(rule):
    """``Mutants.necessary`` gives the predicate's answers from both halves, evaluated on
    their own, with fewer waveforms: a set whose removal keeps the decision is never
    scored with the set kept."""
    domain = FFTDomain(make_clip(3, n=4096), SR)
    base = _oracle_criterion(domain)
    criterion = Criterion(base.model, 0, base.original_confidence, 0.5, necessary_rule=rule)
    ranking = np.argsort(-domain.magnitude())
    ks = np.unique(np.geomspace(1, len(ranking), 40).astype(np.int64))
    both = Mutants(domain, criterion)
    keys = both.prefix_keys(ranking, ks.tolist())
    kept, removed = both.ask(keys, lambda rows: domain.keep_top(ranking, ks[rows]),
                             removal=True)
    expected = criterion.holds("necessary", kept, removed)
    assert expected.any() and not expected.all()   # both answers occur
    lazy = Mutants(domain, criterion)
    got = lazy.necessary(lazy.prefix_keys(ranking, ks.tolist()),
                         lambda rows: domain.keep_top(ranking, ks[rows]))
    assert got.tolist() == expected.tolist()
    assert lazy.evaluated < both.evaluated == 2 * len(ks)
    # asked again: everything is known
    before = lazy.evaluated
    again = lazy.necessary(keys, lambda rows: domain.keep_top(ranking, ks[rows]))
    assert again.tolist() == expected.tolist() and lazy.evaluated == before


def test_overlapped_consumes_in_order_what_a_plain_loop_would():
    jobs = list(range(7))
    seen = []
    overlapped(jobs, lambda j: np.full(3, j), lambda j, made: seen.append((j, made.tolist())))
    assert seen == [(j, [j] * 3) for j in jobs]


def test_overlapped_raises_the_first_failure_and_leaves_nothing_running():
    built = []

    def build(j):
        built.append(j)
        if j == 3:
            raise ValueError("bad build")
        return j

    with pytest.raises(ValueError, match="bad build"):
        overlapped(list(range(6)), build, lambda j, made: None)
    assert built == [0, 1, 2, 3]

    def consume(j, made):
        if j == 1:
            raise RuntimeError("bad model")

    built.clear()
    with pytest.raises(RuntimeError, match="bad model"):
        overlapped(list(range(6)), build, consume)
    # the build in flight (if it had started) finished; no later one started
    assert built in ([0, 1], [0, 1, 2])
    settled = list(built)
    time.sleep(0.05)
    assert built == settled


def test_the_name_of_a_set_less_a_subset_is_the_name_of_what_is_left():
    domain = FFTDomain(make_clip(1, n=4096), SR)
    names = Mutants(domain, _oracle_criterion(domain))
    rng = np.random.default_rng(0)
    whole = rng.permutation(domain.n_features)[:900]
    for size in (0, 1, 17, 900):
        part = rng.choice(len(whole), size=size, replace=False)
        assert minus(names.key(whole), names.key(whole[part])) == names.key(
            np.delete(whole, part))


def test_the_name_of_a_run_of_an_ordered_set_is_the_name_of_its_features():
    domain = FFTDomain(make_clip(1, n=4096), SR)
    names = Mutants(domain, _oracle_criterion(domain))
    rng = np.random.default_rng(1)
    ordered = rng.permutation(domain.n_features)[:1500]
    sums = names.run_sums(ordered)
    for a, b in [(0, 0), (0, 1), (0, 1500), (700, 701), *rng.integers(0, 1501, (30, 2))]:
        a, b = sorted((int(a), int(b)))
        assert run_key(sums, a, b) == names.key(ordered[a:b])


def test_the_adaptive_stop_keeps_the_map_of_its_last_improving_iteration():
    """With ``stable_rounds`` the search stops once that many iterations in a row found no
    smaller sufficient prefix, says so in the JSON, and keeps the map of the iterations up
    to the last improving one: bit for bit the map of a fixed search of that many."""
    from freqrex.examples import example_clips, reference_model

    clip = next(p for p in example_clips() if p.name == "guitar.wav")
    model = freqrex.OnnxModel(reference_model())
    adaptive = freqrex.explain(model, clip, seed=0, iterations=10, search_limit=3000,
                               stable_rounds=2, minimal_budget=50)
    search = adaptive.stats.to_dict()["search"]
    assert search["stopped"] == "stable" and search["iterations"] < 10
    used, sizes = search["used_iterations"], search["sufficient_prefix_sizes"]
    assert len(sizes) == search["iterations"] and sizes[used - 1] is not None
    assert all(k is None for k in sizes[used:]) and len(sizes) - used == 2
    improved = [k for k in sizes if k is not None]
    assert improved == sorted(improved, reverse=True)   # each one below the one before
    replay = freqrex.explain(model, clip, seed=0, iterations=used, search_limit=300 * used,
                             minimal_budget=50)
    assert replay.stats.stopped == "iterations"
    assert replay.responsibility.tobytes() == adaptive.responsibility.tobytes()


def test_iterations_in_lock_step_give_the_map_of_iterations_one_at_a_time(monkeypatch):
    """Without a stop, iterations share model batches (fewer, fuller calls); the map and
    the sets are bit for bit those of running them one at a time."""
    from freqrex import responsibility
    from freqrex.examples import example_clips, reference_model

    clip = next(p for p in example_clips() if p.name == "piano.wav")
    model = freqrex.OnnxModel(reference_model())
    params = dict(seed=4, iterations=4, search_limit=600, minimal_budget=60)
    together = freqrex.explain(model, clip, **params)
    monkeypatch.setattr(responsibility, "GROUP_BYTES", 1)   # one iteration at a time
    alone = freqrex.explain(model, clip, **params)
    assert together.responsibility.tobytes() == alone.responsibility.tobytes()
    assert together.stats.mutants == alone.stats.mutants
    assert together.stats.model_calls < alone.stats.model_calls
    for kind, e in alone.explanations.items():
        assert together.explanations[kind].bins.tolist() == e.bins.tolist(), kind
