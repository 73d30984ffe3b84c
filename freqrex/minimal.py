"""Subset-minimal sets: a set meeting a predicate shrunk until no single feature can go.

:func:`shrink` takes a set that meets the sufficient, necessary or complete predicate
(the smallest prefix the extraction found, or a multiple explanation's set) and removes
chunks of it ddmin style, in batched rounds, within a budget of mutants; the names of
the sets it asks for (:mod:`freqrex.mutants`) are made in O(1) per run of the set.
"""

from __future__ import annotations

from functools import reduce

import numpy as np

from freqrex.criterion import Criterion
from freqrex.domains import Domain
from freqrex.mutants import EMPTY, Mutants, join, minus, run_key

__all__ = ["shrink"]


def shrink(domain: Domain, criterion: Criterion, kind: str, bins: np.ndarray,
           budget: int, mutants: Mutants | None = None) -> tuple[np.ndarray, bool, str, int]:
    """Shrink a set meeting ``kind``'s predicate to a subset-minimal one (ddmin style).

    Each round removes each of ``g`` chunks of the set in one batch; the chunks whose
    removal keeps the predicate are then dropped together (or half of them, a quarter...:
    the largest union that still holds, one more batch). No chunk removable: ``g`` doubles.
    The last rounds have chunks of one feature: when none of those can go the set is
    *minimal*. Sets are evaluated once each (through ``mutants``, shared with the rest of
    the explanation); the order (most responsible first) is kept. At most ``budget``
    mutants are evaluated: a round it cannot pay for in full tries the least responsible
    chunks it can pay for, drops what it can of them, and ends the shrinking.

    The removable chunks are unioned least responsible first, except for the complete
    set: its predicate is two-sided (``p_t`` within ``complete_tolerance`` of ``p0``), so
    removals that each keep it often break it together, by pushing ``p_t`` the same way.
    Its chunks are unioned in the order that keeps ``p_t``, predicted as the current
    set's plus each removal's own change, nearest ``p0`` (:func:`_nearest_first`), so
    removals that raise and lower ``p_t`` go together.

    Returns
    -------
    bins : np.ndarray
        The shrunk set, in the order of ``bins``.
    minimal : bool
        Proven subset-minimal (the last round tried every single removal).
    note : str
        Why not, when not.
    spent : int
        Mutants evaluated.
    """
    per_set = 2 if kind == "necessary" else 1
    mutants = mutants or Mutants(domain, criterion)
    spent = 0

    def holds(drops: list[list[np.ndarray]]) -> tuple[np.ndarray, np.ndarray | None]:
        """The predicate on ``current`` without each drop (chunks, runs of its positions),
        and ``p_t`` on each kept set (None for the necessary predicate)."""
        nonlocal spent
        before = mutants.evaluated
        # a part's name is the whole's less its dropped runs: O(1) per run (run_sums)
        whole = run_key(sums, 0, len(current))
        keys = [minus(whole, reduce(join, (run_key(sums, c[0], c[-1] + 1) for c in drop),
                                    EMPTY)) for drop in drops]
        build = lambda rows: domain.keep([current[_kept(len(current), drops[i])]  # noqa: E731
                                          for i in rows])
        p = None
        if kind == "necessary":
            ok = mutants.necessary(keys, build)
        else:
            kept = mutants.ask(keys, build)[0]
            ok, p = criterion.holds(kind, kept), kept[:, criterion.target]
        spent += mutants.evaluated - before
        return ok, p

    current = np.asarray(bins, dtype=np.int64)
    sums = mutants.run_sums(current)
    two_sided = kind == "complete"
    here = criterion.original_confidence   # p_t of the current set: two-sided order only
    if two_sided and (budget > 0 or not mutants.missing([run_key(sums, 0, len(current))])):
        _, p = holds([[]])   # known already when the set is a prefix the search tested
        assert p is not None   # known for the kept sets of every kind but necessary
        here = float(p[0])
    g = 2
    while len(current) > 1:
        g = min(g, len(current))
        chunks = np.array_split(np.arange(len(current)), g)
        # A round the budget cannot pay for tries the least responsible chunks it can,
        # then stops: the set is never larger than stopping before the round leaves it.
        fit = _affordable(g, budget - spent, per_set)
        note = "" if fit == g else (
            f"not shrunk to a minimal set: minimal_budget ran out in a round of {g} chunks "
            f"of its {len(current)} features ({budget - spent} mutants were left for up to "
            f"{per_set * g}; the {fit} least responsible chunks were tried)")
        if not fit:
            return current, False, note, spent
        chunks = chunks[g - fit:]
        ok, p = holds([[c] for c in chunks])
        passing = np.flatnonzero(ok)[::-1]   # least responsible first
        if not len(passing):
            if note:
                return current, False, note, spent
            if g == len(current):
                break
            g *= 2
            continue
        if two_sided:
            assert p is not None
            passing = _nearest_first(passing, p - here, here - criterion.original_confidence)
            here = float(p[passing[0]])
        unions = [[chunks[i] for i in passing[:j]] for j in _halvings(len(passing))]
        chosen = [chunks[passing[0]]]
        if unions and spent + per_set * len(unions) <= budget:
            ok, p = holds(unions)
            hit = next((j for j, o in enumerate(ok) if o), None)
            if hit is not None:
                chosen = unions[hit]
                if two_sided:
                    assert p is not None
                    here = float(p[hit])
        current = np.delete(current, np.concatenate(chosen))
        sums = mutants.run_sums(current)
        if note:
            return current, False, note, spent
    return current, True, "", spent


def _affordable(chunks: int, left: int, per_set: int) -> int:
    """How many of a round's chunks ``left`` mutants pay for (``per_set`` per chunk)."""
    return max(0, min(chunks, left // per_set))


def _nearest_first(chunks: np.ndarray, change: np.ndarray, offset: float) -> np.ndarray:
    """``chunks`` in the order that keeps a two-sided quantity nearest its target.

    ``offset`` is where it stands now (``p_t - p0`` of the current set) and
    ``change[c]`` what removing chunk ``c`` alone does to it; taking the changes as
    additive, each next chunk is the one that leaves the running sum nearest zero (ties:
    the earlier in ``chunks``).

    Examples
    --------
    >>> _nearest_first(np.array([0, 1, 2]), np.array([0.03, -0.02, 0.01]), 0.0).tolist()
    [2, 1, 0]
    """
    left, order = np.asarray(chunks, dtype=np.int64), []
    while left.size:
        best = int(np.argmin(np.abs(offset + change[left])))   # the first of equals
        offset += change[left[best]]
        order.append(left[best])
        left = np.delete(left, best)
    return np.array(order, dtype=np.int64)


def _kept(size: int, drop: list[np.ndarray]) -> np.ndarray:
    """Mask of the positions of a set of ``size`` that a drop (runs of positions) keeps."""
    keep = np.ones(size, dtype=bool)
    for run in drop:
        keep[run[0]:run[-1] + 1] = False
    return keep


def _halvings(n: int) -> list[int]:
    """``n, n/2, n/4, ... > 1``: how many removable chunks to try dropping at once."""
    out = []
    while n > 1:
        out.append(n)
        n //= 2
    return out
