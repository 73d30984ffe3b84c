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
from freqrex.mutants import EMPTY, Mutants, Steps, join, minus, run_key

__all__ = ["shrink", "shrink_together"]

Shrunk = tuple[np.ndarray, bool, str, int]


def shrink(domain: Domain, criterion: Criterion, kind: str, bins: np.ndarray,
           budget: int, mutants: Mutants | None = None) -> Shrunk:
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

    The necessary set's rounds are *guided*. It starts at the edge of its predicate (the
    clip without it barely leaves the target's class), so nearly every chunk's removal
    fails there and a plain round pays ``g`` tests to drop one chunk. Each test's margins
    (how far the kept set passes, how far the removal breaks the decision) say what the
    chunk's removal did; shared evenly among its features, they predict, taken as
    additive, how much room each next chunk's removal leaves. A guided round tries the
    ``g / 8`` most promising chunks first (:func:`_parts`) and the others only when none of
    those can go, so no chunk is skipped before ``g`` doubles and *minimal* keeps its
    meaning. The sufficient and complete sets' rounds pass often enough that trying all
    their chunks at once is cheaper.

    Returns
    -------
    bins : np.ndarray
        The shrunk set, in the order of ``bins``.
    minimal : bool
        Proven subset-minimal (the last round tried every single removal).
    note : str
        Why not, when not.
    spent : int
        Mutants evaluated (a mutant another shrinking run together evaluated first is
        known, as one an earlier run evaluated).
    """
    mutants = mutants or Mutants(domain, criterion)
    return mutants.run([_shrinking(domain, criterion, kind, bins, budget, mutants)])[0]


def shrink_together(domain: Domain, criterion: Criterion, sets: list[tuple[str, np.ndarray]],
                    budget: int, mutants: Mutants) -> list[Shrunk]:
    """:func:`shrink` each ``(kind, bins)`` of ``sets``, each with its own ``budget``, in
    lock-step: each round's tests of all the sets go to the model together (fewer, larger
    calls), and each set is shrunk as it would be alone, but for which of two sets pays
    for a mutant both ask for."""
    return mutants.run([_shrinking(domain, criterion, kind, bins, budget, mutants)
                        for kind, bins in sets])


def _shrinking(domain: Domain, criterion: Criterion, kind: str, bins: np.ndarray,
               budget: int, mutants: Mutants) -> Steps[Shrunk]:
    """:func:`shrink` as steps for :meth:`Mutants.run`."""
    per_set = 2 if kind == "necessary" else 1
    spent = 0

    def holds(drops: list[list[np.ndarray]]) -> Steps[tuple[np.ndarray, np.ndarray | None,
                                                            np.ndarray]]:
        """The predicate on ``current`` without each drop (chunks, runs of its positions),
        ``p_t`` on each kept set (None for the necessary predicate) and, for the
        necessary predicate, its margins on each set (:func:`_margins`)."""
        nonlocal spent
        keys = _drop_keys(sums, drops)
        build = lambda rows: domain.keep([current[_kept(len(current), drops[i])]  # noqa: E731
                                          for i in rows])
        p = None
        if kind == "necessary":
            ok, evaluated = yield from mutants.necessary_steps(keys, build)
        else:
            (kept, _), evaluated = yield from mutants.ask_steps(keys, build)
            ok, p = criterion.holds(kind, kept), kept[:, criterion.target]
        spent += evaluated
        return ok, p, (_margins(criterion, mutants, keys) if guided else _NO_MARGINS)

    current = np.asarray(bins, dtype=np.int64)
    sums = mutants.run_sums(current)
    two_sided, guided = kind == "complete", kind == "necessary"
    here = criterion.original_confidence   # p_t of the current set: two-sided order only
    if two_sided and (budget > 0 or not mutants.missing([run_key(sums, 0, len(current))])):
        _, p, _ = yield from holds([[]])   # known when the search tested that prefix
        assert p is not None   # known for the kept sets of every kind but necessary
        here = float(p[0])
    # guided rounds: the current set's margins, and what removing each feature did to them
    margins = (_margins(criterion, mutants, _drop_keys(sums, [[]]))[0] if guided
               else _NO_MARGINS[0])
    change = np.full((len(current) if guided else 0, 3), np.nan)
    g = 2
    while len(current) > 1:
        g = min(g, len(current))
        chunks = np.array_split(np.arange(len(current)), g)
        passing, note = np.zeros(0, dtype=np.int64), ""
        # A round the budget cannot pay for tries the least responsible chunks it can,
        # then stops: the set is never larger than stopping before the round leaves it.
        for part in _parts(chunks, change, margins) if guided else [np.arange(g)]:
            fit = _affordable(len(part), budget - spent, per_set)
            note = "" if fit == len(part) else (
                f"not shrunk to a minimal set: minimal_budget ran out in a round of {g} "
                f"chunks of its {len(current)} features ({budget - spent} mutants were left "
                f"for up to {per_set * len(part)}; the {fit} least responsible chunks were "
                f"tried)")
            if not fit:
                return current, False, note, spent
            part = part[len(part) - fit:]
            ok, p, m = yield from holds([[chunks[i]] for i in part])
            for i, row in zip(part, m if guided else ()):   # shared among its features
                seen = np.isfinite(row)   # a margin not asked keeps what was seen before
                change[chunks[i][:, None], np.flatnonzero(seen)] = (
                    (row - margins)[seen] / len(chunks[i]))
            passing = part[np.flatnonzero(ok)][::-1]   # least responsible first
            if len(passing) or note:
                break
        if not len(passing):
            if note:
                return current, False, note, spent
            if g == len(current):
                break
            g *= 2
            continue
        if two_sided:
            assert p is not None
            moved = np.zeros(g)
            moved[part] = p - here
            passing = _nearest_first(passing, moved, here - criterion.original_confidence)
            here = float(p[np.searchsorted(part, passing[0])])
        if guided:
            margins = m[np.searchsorted(part, passing[0])]
        unions = [[chunks[i] for i in passing[:j]] for j in _halvings(len(passing))]
        chosen = [chunks[passing[0]]]
        if unions and spent + per_set * len(unions) <= budget:
            ok, p, m = yield from holds(unions)
            hit = next((j for j, o in enumerate(ok) if o), None)
            if hit is not None:
                chosen = unions[hit]
                if two_sided:
                    assert p is not None
                    here = float(p[hit])
                if guided:
                    margins = m[hit]
        keep = _kept(len(current), chosen)
        current, change = current[keep], change[keep] if guided else change
        sums = mutants.run_sums(current)
        if note:
            return current, False, note, spent
    return current, True, "", spent


_NO_MARGINS = np.full((1, 3), np.nan)
_FIRST_SHARE = 8
"""A guided round first tries this share of its chunks (at least two): those predicted to
keep the predicate with the most room."""


def _drop_keys(sums: np.ndarray, drops: list[list[np.ndarray]]) -> list:
    """The names of a set (whose ``run_sums`` are ``sums``) without each drop: the whole's
    name less its dropped runs, O(1) per run."""
    whole = run_key(sums, 0, len(sums) - 1)
    return [minus(whole, reduce(join, (run_key(sums, c[0], c[-1] + 1) for c in drop), EMPTY))
            for drop in drops]


def _margins(criterion: Criterion, mutants: Mutants, keys: list) -> np.ndarray:
    """The necessary predicate's margins on each named set, ``[len(keys), 3]``: the kept
    set's two (:meth:`Criterion.kept_margins`) and the removal's
    (:meth:`Criterion.removal_margin`); NaN where the model was not asked (the removal of
    a set whose kept half was known to fail)."""
    out = np.full((len(keys), 3), np.nan)
    rows, kept = mutants.known(keys)
    if rows:
        out[rows, :2] = criterion.kept_margins(kept)
    rows, removed = mutants.known(keys, removal=True)
    if rows:
        out[rows, 2] = criterion.removal_margin(removed)
    return out


def _parts(chunks: list[np.ndarray], change: np.ndarray,
           margins: np.ndarray) -> list[np.ndarray]:
    """The order in which a guided round tries its chunks: the ``g / _FIRST_SHARE`` most
    promising first (:func:`_promising`), the rest only when none of those can go; one
    part of all the chunks while fewer than half the features have been tried."""
    g, tried = len(chunks), np.isfinite(change).any(axis=1)
    first = max(2, g // _FIRST_SHARE)
    if first >= g or 2 * int(tried.sum()) <= len(change):
        return [np.arange(g)]
    promising = np.sort(_promising(chunks, change, margins)[:first])
    return [promising, np.setdiff1d(np.arange(g), promising)]


def _promising(chunks: list[np.ndarray], change: np.ndarray, margins: np.ndarray) -> np.ndarray:
    """The chunks, those whose removal is predicted to leave the most room first.

    ``margins`` are the current set's (NaN: not known, no constraint) and ``change[f]``
    what removing feature ``f`` did to each (a tried chunk's change shared evenly among its
    features; NaN where never tried: the median of the tried). Taking the changes as
    additive, a chunk's room is the smallest of its predicted margins (ties: the earlier).

    Examples
    --------
    >>> change = np.array([[-0.1, -0.1, 0.0], [-0.3, -0.3, 0.0], [np.nan] * 3])
    >>> _promising([np.array([0]), np.array([1]), np.array([2])], change,
    ...            np.array([0.5, 0.5, np.nan])).tolist()
    [0, 2, 1]
    """
    filled = change.copy()
    for column in filled.T:
        seen = np.isfinite(column)
        column[~seen] = np.median(column[seen]) if seen.any() else 0.0
    start = np.where(np.isfinite(margins), margins, np.inf)
    room = np.array([np.min(start + filled[c].sum(axis=0)) for c in chunks])
    return np.argsort(-room, kind="stable")


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
