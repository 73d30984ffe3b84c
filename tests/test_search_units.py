"""Unit tests of the search's pieces: splits, responsibility degrees, the k searches."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from freqrex.boxes import Energy, Interval, Rect, split
from freqrex.config import Config
from freqrex.errors import FreqrexError
from freqrex.extraction import linear_prefix, rank_bins, smallest_prefix
from freqrex.responsibility import child_responsibility


@given(lo=st.integers(0, 1000), size=st.integers(1, 5000), min_size=st.integers(1, 50),
       seed=st.integers(0, 2**32 - 1))
@settings(max_examples=200, deadline=None)
def test_split_tiles_the_box_with_children_of_min_size(lo, size, min_size, seed):
    box = Interval(lo, lo + size)
    _assert_tiles(box, split(box, np.random.default_rng(seed), min_size), min_size)


def _assert_tiles(box, children, min_size):
    """Children of ``min_size`` or more, as many as fit up to four, tiling ``box``."""
    if box.size // min_size < 2:
        assert children == []
        return
    assert len(children) == min(4, box.size // min_size)
    assert children[0].lo == box.lo and children[-1].hi == box.hi
    assert all(a.hi == b.lo for a, b in zip(children, children[1:]))
    assert all(c.size >= min_size for c in children)


def test_split_is_reproducible_and_random():
    box = Interval(0, 10_000)
    a = split(box, np.random.default_rng(7), 1)
    b = split(box, np.random.default_rng(7), 1)
    c = split(box, np.random.default_rng(8), 1)
    assert a == b
    assert a != c


@given(seed=st.integers(0, 2**32 - 1), rect=st.booleans())
@settings(max_examples=60, deadline=None)
def test_energy_along_a_box_is_the_direct_sum(seed, rect):
    rng = np.random.default_rng(seed)
    power = rng.exponential(size=(37, 23) if rect else (300,))
    energy = Energy(power)
    if rect:
        f0, f1 = sorted(rng.choice(38, 2, replace=False))
        t0, t1 = sorted(rng.choice(24, 2, replace=False))
        box = Rect(int(f0), int(f1), int(t0), int(t1))
        cells = power[f0:f1, t0:t1]
        for axis, sums in ((0, cells.sum(1)), (1, cells.sum(0))):
            np.testing.assert_allclose(energy.along(box, axis),
                                       np.concatenate(([0], np.cumsum(sums))), atol=1e-9)
    else:
        lo, hi = sorted(rng.choice(301, 2, replace=False))
        np.testing.assert_allclose(energy.along(Interval(int(lo), int(hi)), 0),
                                   np.concatenate(([0], np.cumsum(power[lo:hi]))), atol=1e-9)


@given(lo=st.integers(0, 100), size=st.integers(1, 2000), min_size=st.integers(1, 50),
       seed=st.integers(0, 2**32 - 1))
@settings(max_examples=200, deadline=None)
def test_energy_cuts_tile_the_box_with_children_of_min_size(lo, size, min_size, seed):
    rng = np.random.default_rng(seed)
    power = rng.exponential(size=lo + size) * (rng.random(lo + size) < 0.1)  # mostly silent
    box = Interval(lo, lo + size)
    children = split(box, np.random.default_rng(seed), min_size, energy=Energy(power))
    assert children == split(box, np.random.default_rng(seed), min_size,
                             energy=Energy(power))   # same seed, same cuts
    _assert_tiles(box, children, min_size)


def test_energy_cuts_fall_where_the_energy_is():
    # all the energy in the first 100 of 10 000 bins: uniform cuts almost never land
    # there, cuts by energy always do, each child a random share of that band
    power = np.zeros(10_000)
    power[:100] = 1.0
    energy = Energy(power)
    box = Interval(0, 10_000)
    by_energy = [split(box, np.random.default_rng(s), 1, energy=energy) for s in range(200)]
    uniform = [split(box, np.random.default_rng(s), 1) for s in range(200)]
    inner = lambda children: [c.hi for c in children[:-1]]  # noqa: E731
    assert all(max(inner(c)) <= 100 for c in by_energy)
    assert sum(max(inner(c)) <= 100 for c in uniform) <= 2
    first = np.array([c[0].size for c in by_energy])
    assert 15 < first.mean() < 35   # the smallest of 3 uniform shares of 100: 25 on average


def test_energy_cuts_of_a_rectangle_follow_its_energy_on_both_axes():
    power = np.zeros((64, 200))
    power[40:48, 150:160] = 1.0     # one loud patch
    box = Rect(0, 64, 0, 200)
    for s in range(50):
        quadrants = split(box, np.random.default_rng(s), 1, energy=Energy(power))
        assert len(quadrants) == 4
        f, t = quadrants[0].f1, quadrants[0].t1
        assert 41 <= f <= 48 and 151 <= t <= 160


def test_a_silent_box_is_cut_as_uniform_cuts_would():
    power = np.zeros(5_000)
    power[:10] = 1.0
    box = Interval(1_000, 5_000)
    for s in range(20):
        assert (split(box, np.random.default_rng(s), 3, energy=Energy(power))
                == split(box, np.random.default_rng(s), 3))


def _table(rule, m=4):
    return np.array([rule({i for i in range(m) if k >> i & 1}) for k in range(1 << m)])


def test_responsibility_of_a_sole_cause_is_one():
    degrees, witnesses = child_responsibility(_table(lambda s: 0 in s), 4)
    np.testing.assert_allclose(degrees, [1, 0, 0, 0])
    assert witnesses[0] == 0b1111


def test_responsibility_of_a_disjunction_is_one_half():
    degrees, _ = child_responsibility(_table(lambda s: bool(s & {0, 1})), 4)
    np.testing.assert_allclose(degrees, [0.5, 0.5, 0, 0])


def test_responsibility_of_a_conjunction_is_one_each():
    degrees, _ = child_responsibility(_table(lambda s: {0, 1} <= s), 4)
    np.testing.assert_allclose(degrees, [1, 1, 0, 0])


def test_responsibility_of_two_out_of_three():
    # passes with any two of children 0, 1, 2: each is critical once one other is removed
    degrees, witnesses = child_responsibility(_table(lambda s: len(s & {0, 1, 2}) >= 2), 4)
    np.testing.assert_allclose(degrees, [0.5, 0.5, 0.5, 0])
    assert bin(witnesses[0]).count("1") == 3


def test_no_cause_when_nothing_passes():
    degrees, witnesses = child_responsibility(np.zeros(16, dtype=bool), 4)
    assert not degrees.any() and (witnesses == -1).all()


class Counting:
    """A monotone predicate k >= threshold that counts its batches."""

    def __init__(self, threshold):
        self.threshold, self.rounds, self.probes = threshold, 0, 0
        self.asked = set()

    def __call__(self, ks):
        self.rounds += 1
        self.probes += len(ks)
        self.asked.update(int(k) for k in ks)
        return np.asarray(ks) >= self.threshold


@given(lo=st.integers(1, 50), width=st.integers(0, 300_000), frac=st.floats(0, 1.2),
       probes=st.integers(3, 32))
@settings(max_examples=300, deadline=None)
def test_smallest_prefix_finds_the_threshold_of_a_monotone_predicate(lo, width, frac, probes):
    hi = lo + width
    threshold = lo + int(frac * width) if frac <= 1 else hi + 1
    pred = Counting(threshold)
    found, proven = smallest_prefix(pred, lo, hi, dense_limit=64, probes=probes)
    assert found == (threshold if threshold <= hi else None)
    # proven exactly when every smaller k was asked; always within the dense range
    end = found if found is not None else hi + 1
    assert proven == (set(range(lo, end)) <= pred.asked)
    if threshold <= 64 or hi <= 64:
        assert proven
    # O(log n) rounds: one dense and geometric round, then a factor ~probes per round
    assert pred.rounds <= 2 + np.ceil(np.log(max(width, 2)) / np.log(probes / 2 + 1)) + 1


@given(lo=st.integers(1, 20), width=st.integers(0, 3000), frac=st.floats(0, 1.2),
       chunk=st.integers(1, 70))
@settings(max_examples=200, deadline=None)
def test_linear_prefix_agrees_with_smallest_prefix(lo, width, frac, chunk):
    hi = lo + width
    threshold = lo + int(frac * width) if frac <= 1 else hi + 1
    assert linear_prefix(Counting(threshold), lo, hi, chunk=chunk, probes=8)[0] == \
        smallest_prefix(Counting(threshold), lo, hi, probes=8)[0]


def test_ranking_orders_by_responsibility_then_magnitude():
    resp = np.array([0.0, 2.0, 1.0, 1.0, 0.0, 5.0])
    mag = np.array([9.0, 1.0, 1.0, 3.0, 8.0, 0.0])
    np.testing.assert_array_equal(rank_bins(resp, mag, np.arange(6)), [5, 1, 3, 2, 0, 4])
    np.testing.assert_array_equal(rank_bins(resp, mag, np.arange(1, 5)), [1, 3, 2, 4])
    grid = rank_bins(resp.reshape(2, 3), mag.reshape(2, 3), np.array([0, 2, 4, 5]))
    np.testing.assert_array_equal(grid, [5, 2, 0, 4])


@pytest.mark.parametrize("bad", [
    {"iterations": 0}, {"min_box_size": -1}, {"confidence_filter": 1.5},
    {"domain": "wavelet"}, {"search": "binary"}, {"output_activation": "relu"},
    {"freq_range": (500.0, 100.0)}, {"seed": -3}, {"batch_size": 2.5},
])
def test_config_rejects_bad_parameters(bad):
    with pytest.raises(FreqrexError):
        Config(**bad)
