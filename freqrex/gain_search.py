"""The gain attack: the smallest change of the k most responsible coefficients that flips.

For each ``k`` the ``k`` coefficients get one common gain ``g`` (``x' = x - (1 - g) s_k``,
``s_k`` their signal), and the change is ``|20 log10 g|`` dB: cuts down to removal
(``g = 0``) and boosts both count. The search spends one model batch per step, all ``k``
together:

1. a grid: the original, ``gain_points`` cuts and as many boosts evenly spaced in dB up to
   ``gain_max_db`` (a geometric grid of gains), and removal;
2. per ``k`` and direction, the bracket between the largest change that did not flip and
   the smallest that did is refined with ``gain_points`` evenly spaced dB values, until it
   is at most ``gain_tolerance_db`` wide. A direction whose bracket starts above the best
   flip of the other is dropped.

Guarantee: the reported gain was evaluated and flips; every tested gain with a smaller
change did not; and the tested gain next to it on the same side, at most
``gain_tolerance_db`` smaller, did not flip. The model need not be monotone in ``g``, so a
smaller flipping change may lie between the first grid's points (a gap of
``gain_max_db / gain_points`` dB); the answer is exact to the tolerance when the top class
changes once along each direction. Between the largest grid cut and removal nothing is
refined (the change is infinite there): such an answer is removal.

When nothing flips, the answer is the tried gain (other than 1) that came closest (largest
margin), with ``flipped`` False; when the unchanged clip already counts as a flip (a
targeted class already on top), it is gain 1 (0 dB).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Found", "search_gains"]


@dataclass
class Found:
    """The answer of the search for one ``k``."""

    gain: float                 # the smallest flipping gain; if none flipped, the tried gain
                                # (not 1) that came closest
    flipped: bool
    probabilities: np.ndarray = field(repr=False)
    evaluations: int            # waveforms the model scored for this k


@dataclass
class _Bracket:
    """One direction (sign -1: cuts, +1: boosts) of one ``k``: ``lo`` dB did not flip,
    ``hi`` dB did (None: nothing flipped yet)."""

    sign: int
    lo: float = 0.0
    hi: float | None = None


def _gain(sign: int, db: float) -> float:
    return 0.0 if math.isinf(db) else 10.0 ** (sign * db / 20.0)


def search_gains(model: Callable[[np.ndarray], np.ndarray], x: np.ndarray, tops: np.ndarray,
                 flips: Callable[[np.ndarray], np.ndarray],
                 progress: Callable[[np.ndarray], np.ndarray],
                 points: int, max_db: float, tolerance_db: float) -> list[Found]:
    """Search the smallest flipping gain for each signal in ``tops``.

    Parameters
    ----------
    model : callable
        float32 ``[B, n]`` waveforms to probabilities ``[B, C]``.
    x : np.ndarray
        The clip, float32 ``[n]``.
    tops : np.ndarray
        float32 ``[K, n]``: the signal of the changed coefficients, one row per ``k``.
    flips, progress : callable
        Per row of probabilities: whether it counts as a flip, and how close it comes
        (higher is closer; chooses the reported try when nothing flips).
    points, max_db, tolerance_db : int, float, float
        ``gain_points``, ``gain_max_db`` and ``gain_tolerance_db`` of AttackConfig.

    Returns
    -------
    list of Found
        One per row of ``tops``.
    """
    grid = [max_db * (i + 1) / points for i in range(points)]
    tried: list[dict[tuple[int, float], np.ndarray]] = [{} for _ in tops]
    first = [(-1, d) for d in [*grid, math.inf]] + [(1, d) for d in grid]
    asks = [(0, (1, 0.0))] + [(k, t) for k in range(len(tops)) for t in first]
    _evaluate(model, x, tops, asks, tried)
    original = tried[0][(1, 0.0)]
    for seen in tried[1:]:
        seen[(1, 0.0)] = original  # one waveform, counted once
    brackets = [[_Bracket(-1), _Bracket(1)] for _ in tried]
    for pair, seen in zip(brackets, tried):
        for b in pair:
            _narrow(b, seen, flips)
    while True:
        asks = []
        for k, pair in enumerate(brackets):
            best = min((b.hi for b in pair if b.hi is not None), default=math.inf)
            for b in pair:
                if (b.hi is not None and not math.isinf(b.hi) and b.hi - b.lo > tolerance_db
                        and b.lo < best):
                    step = (b.hi - b.lo) / (points + 1)
                    asks += [(k, (b.sign, b.lo + step * (j + 1))) for j in range(points)]
        if not asks:
            break
        _evaluate(model, x, tops, asks, tried)
        for k, pair in enumerate(brackets):
            for b in pair:
                _narrow(b, tried[k], flips)
    return [_answer(pair, seen, flips, progress, k == 0)
            for k, (pair, seen) in enumerate(zip(brackets, tried))]


def _evaluate(model: Callable[[np.ndarray], np.ndarray], x: np.ndarray, tops: np.ndarray,
              asks: list[tuple[int, tuple[int, float]]],
              tried: list[dict[tuple[int, float], np.ndarray]]) -> None:
    """One model batch: the waveform of each (k, (sign, dB)) asked."""
    batch = np.stack([changed(x, tops[k], _gain(*t)) for k, t in asks])
    probs = np.asarray(model(batch), dtype=np.float64)
    for (k, t), p in zip(asks, probs):
        tried[k][t] = p


def changed(x: np.ndarray, top: np.ndarray, gain: float) -> np.ndarray:
    """The clip with the coefficients of signal ``top`` multiplied by ``gain`` (float32)."""
    return (x - (1.0 - gain) * top).astype(np.float32)


def _narrow(b: _Bracket, seen: dict[tuple[int, float], np.ndarray],
            flips: Callable[[np.ndarray], np.ndarray]) -> None:
    """The bracket from every tried change of this direction: ``hi`` the smallest that
    flipped, ``lo`` the largest below it that did not."""
    dbs = sorted(d for s, d in seen if s == b.sign or d == 0.0)
    hits = [d for d in dbs if bool(flips(seen[(b.sign if d else 1, d)][None])[0])]
    if not hits:
        b.lo, b.hi = max(dbs), None
        return
    b.hi = hits[0]
    b.lo = max((d for d in dbs if d < b.hi), default=0.0)


def _answer(pair: list[_Bracket], seen: dict[tuple[int, float], np.ndarray],
            flips: Callable[[np.ndarray], np.ndarray],
            progress: Callable[[np.ndarray], np.ndarray], owns_original: bool) -> Found:
    evaluations = len(seen) - (0 if owns_original else 1)
    flipping = [b for b in pair if b.hi is not None]
    if flipping:
        b = min(flipping, key=lambda b: (b.hi, b.sign))  # a tie goes to the cut
        assert b.hi is not None
        key = (b.sign if b.hi else 1, b.hi)
        return Found(_gain(b.sign, b.hi), True, seen[key], evaluations)
    keys = sorted(t for t in seen if t != (1, 0.0))  # the unchanged clip is no attack
    scores = [float(progress(seen[t][None])[0]) for t in keys]
    sign, db = keys[int(np.argmax(scores))]
    return Found(_gain(sign, db), False, seen[(sign, db)], evaluations)
