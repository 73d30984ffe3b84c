"""Sufficient, necessary and complete bin sets from a responsibility ranking.

Bins are ranked by responsibility (ties: larger magnitude first) and ``top(k)`` is the
first ``k``. Each explanation is the smallest ``k`` meeting its predicate. The predicates
are nearly monotone in ``k``, so the default search brackets ``k`` with geometric steps
and then probes evenly inside the bracket, one model batch per round; ``linear`` scans in
steps of ``chunk`` like ReX. Whatever is found is verified by one last model call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from freqrex.config import Config
from freqrex.criterion import KINDS, Criterion
from freqrex.domains import Domain

Predicate = Callable[[np.ndarray], np.ndarray]


@dataclass
class Extracted:
    """One explanation as found by the search, before it is dressed up for reporting."""

    kind: str
    k: int | None                    # number of top-ranked bins; None when not found
    verified: bool = False
    probabilities: np.ndarray | None = None          # model output on the kept bins
    removed_probabilities: np.ndarray | None = None  # on the clip without them (necessary)
    audio: np.ndarray | None = None


def rank_bins(responsibility: np.ndarray, magnitude: np.ndarray,
              candidates: np.ndarray) -> np.ndarray:
    """``candidates`` (flat feature indices) by responsibility, then magnitude, descending."""
    r, m = responsibility.ravel()[candidates], magnitude.ravel()[candidates]
    return candidates[np.lexsort((candidates, -m, -r))]


def extract(domain: Domain, criterion: Criterion, ranking: np.ndarray,
            config: Config) -> dict[str, Extracted]:
    """Find and verify the sufficient, necessary and complete sets.

    Returns
    -------
    dict
        ``kind -> Extracted`` for the three kinds, in order.
    """
    predicates = _predicates(domain, criterion, ranking, config.complete_tolerance)
    search = _searcher(config)
    total = len(ranking)
    k_suff = search(predicates["sufficient"], 1, total)
    k_nec = search(predicates["necessary"], k_suff, total) if k_suff else None
    start = k_nec or k_suff
    k_comp = search(predicates["complete"], start, total) if start else None
    found = {"sufficient": k_suff, "necessary": k_nec, "complete": k_comp}
    return _verify(domain, criterion, ranking, found, config.complete_tolerance)


def _predicates(domain: Domain, criterion: Criterion, ranking: np.ndarray,
                tolerance: float) -> dict[str, Predicate]:
    target = criterion.target

    def sufficient(ks: np.ndarray) -> np.ndarray:
        return criterion.test(domain.keep_top(ranking, ks))

    def necessary(ks: np.ndarray) -> np.ndarray:
        kept = domain.keep_top(ranking, ks)
        both = criterion.test(np.concatenate([kept, domain.remove(kept)]))
        return both[:len(ks)] & ~both[len(ks):]

    def complete(ks: np.ndarray) -> np.ndarray:
        probs = criterion.probabilities(domain.keep_top(ranking, ks))
        return _recovers(probs, target, criterion.original_confidence, tolerance)

    return {"sufficient": sufficient, "necessary": necessary, "complete": complete}


def _recovers(probs: np.ndarray, target: int, original: float, tolerance: float) -> np.ndarray:
    return (np.argmax(probs, axis=1) == target) & (probs[:, target] >= original - tolerance)


def _searcher(config: Config) -> Callable[[Predicate, int, int], int | None]:
    probes = max(3, config.batch_size // 2)
    if config.search == "linear":
        return lambda pred, lo, hi: linear_search(pred, lo, hi, config.chunk, probes)
    return lambda pred, lo, hi: bracket_search(pred, lo, hi, probes)


def bracket_search(predicate: Predicate, lo: int, hi: int, probes: int) -> int | None:
    """Smallest ``k`` in ``[lo, hi]`` where ``predicate`` holds, for a monotone predicate.

    First round: ``k = lo, lo+1, lo+3, lo+7, ..., hi`` in one batch. Then ``probes`` evenly
    spaced values inside the bracket per round until it is one wide: O(log n) rounds.
    ``None`` when the predicate fails on every probe of the first round (``hi`` included).
    """
    steps = lo + (1 << np.arange(int(np.log2(max(hi - lo, 1))) + 2)) - 1
    ks = np.unique(np.append(steps[steps < hi], hi))
    ok = predicate(ks)
    if not ok.any():
        return None
    j = int(np.argmax(ok))
    if j == 0:
        return int(ks[0])
    below, above = int(ks[j - 1]), int(ks[j])   # predicate fails at below, holds at above
    while above - below > 1:
        inner = np.unique(np.linspace(below, above, probes + 2).round().astype(np.int64))
        inner = inner[(inner > below) & (inner < above)]
        ok = predicate(inner)
        if ok.any():
            i = int(np.argmax(ok))
            above = int(inner[i])
            below = int(inner[i - 1]) if i > 0 else below
        else:
            below = int(inner[-1])
    return above


def linear_search(predicate: Predicate, lo: int, hi: int, chunk: int, probes: int) -> int | None:
    """Smallest ``k`` in ``[lo, hi]`` where ``predicate`` holds, scanning in steps of ``chunk``.

    The step that first holds is then scanned bin by bin, so the answer is exact at the
    resolution of one bin whenever the predicate is monotone within that step.
    """
    coarse = np.unique(np.append(np.arange(lo, hi + 1, chunk), hi))
    k = _first_true(predicate, coarse, probes)
    if k is None or chunk == 1:
        return k
    previous = coarse[coarse < k]
    start = int(previous[-1]) + 1 if previous.size else lo
    fine = _first_true(predicate, np.arange(start, k, dtype=np.int64), probes)
    return fine if fine is not None else k


def _first_true(predicate: Predicate, ks: np.ndarray, probes: int) -> int | None:
    for start in range(0, len(ks), probes):
        batch = ks[start:start + probes]
        ok = predicate(batch)
        if ok.any():
            return int(batch[int(np.argmax(ok))])
    return None


def _verify(domain: Domain, criterion: Criterion, ranking: np.ndarray,
            found: dict[str, int | None], tolerance: float) -> dict[str, Extracted]:
    """One final model call on every set found (and on the clip without the necessary one)."""
    kinds = [kind for kind in KINDS if found[kind] is not None]
    results = {kind: Extracted(kind, None) for kind in KINDS}
    if not kinds:
        return results
    kept = domain.keep_top(ranking, np.array([found[k] for k in kinds]))
    removed = domain.remove(kept[kinds.index("necessary")])[None] if "necessary" in kinds else None
    batch = kept if removed is None else np.concatenate([kept, removed])
    probs = criterion.probabilities(batch)
    passes = criterion.passes(probs)
    for row, kind in enumerate(kinds):
        result = Extracted(kind, found[kind], probabilities=probs[row], audio=kept[row])
        if kind == "sufficient":
            result.verified = bool(passes[row])
        elif kind == "necessary":
            result.removed_probabilities = probs[-1]
            result.verified = bool(passes[row] and not passes[-1])
        else:
            result.verified = bool(_recovers(probs[row:row + 1], criterion.target,
                                             criterion.original_confidence, tolerance)[0])
        results[kind] = result
    return results
