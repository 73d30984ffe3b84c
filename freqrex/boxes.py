"""Boxes of the feature space and their random splits.

A box is a contiguous interval of rfft bins (fft domain) or a rectangle of STFT cells,
rows being frequencies and columns frames (stft domain). Splitting cuts a box into (at
most) four non-empty children at random cut points, no child smaller than ``min_size``
features: an interval at three points, a rectangle once in frequency and once in time.

Cut points are uniform over a box's features, or, given the clip's :class:`Energy`,
uniform over its energy: each child then holds a random share of the box's energy
rather than of its bins, so quiet bands are cut less finely and loud ones sooner.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, order=True)
class Interval:
    """The half-open bin interval ``[lo, hi)``."""

    lo: int
    hi: int

    @property
    def size(self) -> int:
        return self.hi - self.lo

    @property
    def index(self) -> slice:
        """Where the box sits in a per-bin array."""
        return slice(self.lo, self.hi)

    def flat(self, shape: tuple[int, ...]) -> np.ndarray:
        """Flat indices of the box's features in an array of ``shape``."""
        return np.arange(self.lo, self.hi, dtype=np.int64)


@dataclass(frozen=True, order=True)
class Rect:
    """STFT cells: frequency rows ``[f0, f1)`` by frames ``[t0, t1)``."""

    f0: int
    f1: int
    t0: int
    t1: int

    @property
    def size(self) -> int:
        return (self.f1 - self.f0) * (self.t1 - self.t0)

    @property
    def index(self) -> tuple[slice, slice]:
        return slice(self.f0, self.f1), slice(self.t0, self.t1)

    def flat(self, shape: tuple[int, ...]) -> np.ndarray:
        rows = np.arange(self.f0, self.f1, dtype=np.int64)[:, None]
        cols = np.arange(self.t0, self.t1, dtype=np.int64)[None, :]
        return (rows * shape[1] + cols).ravel()


Box = Interval | Rect


class Energy:
    """The clip's energy per feature, summed so that any box's share along an axis is a
    difference: cut points drawn by energy cost one search per cut.

    Parameters
    ----------
    power : np.ndarray
        Energy per feature, shaped like the domain (``[bins]`` or ``[rows, frames]``).
    """

    def __init__(self, power: np.ndarray) -> None:
        power = np.asarray(power, dtype=np.float64)
        # a summed-area table: the energy of features [0, i) (by [0, j) frames), zero-padded
        self._total = np.zeros(tuple(d + 1 for d in power.shape))
        inner = (slice(1, None),) * power.ndim
        self._total[inner] = power.cumsum(0).cumsum(1) if power.ndim == 2 else power.cumsum()

    def along(self, box: Box, axis: int) -> np.ndarray:
        """Energy of the box before each cut position along ``axis`` (0: bins or rows,
        1: frames), ``[size along axis + 1]``, rising from 0."""
        t = self._total
        if isinstance(box, Interval):
            return t[box.lo:box.hi + 1] - t[box.lo]
        if axis == 0:
            cum = t[box.f0:box.f1 + 1, box.t1] - t[box.f0:box.f1 + 1, box.t0]
        else:
            cum = t[box.f1, box.t0:box.t1 + 1] - t[box.f0, box.t0:box.t1 + 1]
        return cum - cum[0]


def split(box: Box, rng: np.random.Generator, min_size: int, parts: int = 4,
          energy: Energy | None = None) -> list[Box]:
    """Cut ``box`` into up to ``parts`` children at randomly drawn cut points.

    Cut points are uniform over the box's features, or over its energy when ``energy``
    is given. Boxes too small for four children of ``min_size`` get as many as fit; a box
    that cannot hold two children returns an empty list (it is a leaf).
    """
    if isinstance(box, Rect):
        return _split_rect(box, rng, min_size, energy)
    cum = energy.along(box, 0) if energy is not None else None
    return [Interval(a, b) for a, b in _cuts(box.lo, box.hi, rng, min_size, parts, cum)]


def _cuts(lo: int, hi: int, rng: np.random.Generator, min_size: int,
          parts: int = 4, cum: np.ndarray | None = None) -> list[tuple[int, int]]:
    """``[lo, hi)`` cut into up to ``parts`` runs of at least ``min_size``, uniformly over
    the positions or, given ``cum`` (the energy before each position), over the energy."""
    count = min(parts, (hi - lo) // min_size)
    if count < 2:
        return []
    if cum is not None and cum[-1] > 0:
        return _energy_cuts(lo, hi, rng, min_size, count, cum)
    # Draw the cuts in the slack left once every child has its minimum size: each child is
    # then at least min_size and the cuts are uniform over the rest.
    slack = hi - lo - count * min_size
    cuts = sorted(rng.integers(0, slack + 1, size=count - 1).tolist())
    # plain ints: a split has four children, too few for numpy's per-call cost to pay
    edges = [lo + cut + i * min_size for i, cut in enumerate([0, *cuts, slack])]
    return list(zip(edges[:-1], edges[1:]))


def _energy_cuts(lo: int, hi: int, rng: np.random.Generator, min_size: int, count: int,
                 cum: np.ndarray) -> list[tuple[int, int]]:
    """``count`` runs whose cuts fall at uniformly drawn shares of the energy, each moved
    just as far as the minimum sizes need."""
    shares = np.sort(rng.random(count - 1)) * cum[-1]
    # the first position whose energy before it passes the share: the cut falls after the
    # feature that holds the share
    drawn = lo + np.searchsorted(cum, shares, side="right")
    edges = [lo]
    for i, cut in enumerate(drawn.tolist()):
        edges.append(min(max(cut, edges[-1] + min_size), hi - (count - 1 - i) * min_size))
    edges.append(hi)
    return list(zip(edges[:-1], edges[1:]))


def _split_rect(box: Rect, rng: np.random.Generator, min_size: int,
                energy: Energy | None) -> list[Box]:
    height, width = box.f1 - box.f0, box.t1 - box.t0
    if height >= 2 and width >= 2:
        f = box.f0 + _cut(height, rng, energy.along(box, 0) if energy else None)
        t = box.t0 + _cut(width, rng, energy.along(box, 1) if energy else None)
        quadrants: list[Box] = [Rect(box.f0, f, box.t0, t), Rect(box.f0, f, t, box.t1),
                                Rect(f, box.f1, box.t0, t), Rect(f, box.f1, t, box.t1)]
        if min(q.size for q in quadrants) >= min_size:
            return quadrants
    # A strip, or quadrants too small: cut across the longer side only.
    if height >= width:
        rows = _cuts(box.f0, box.f1, rng, math.ceil(min_size / width), 4,
                     energy.along(box, 0) if energy else None)
        return [Rect(a, b, box.t0, box.t1) for a, b in rows]
    cols = _cuts(box.t0, box.t1, rng, math.ceil(min_size / height), 4,
                 energy.along(box, 1) if energy else None)
    return [Rect(box.f0, box.f1, a, b) for a, b in cols]


def _cut(length: int, rng: np.random.Generator, cum: np.ndarray | None) -> int:
    """One cut inside ``[1, length)``: uniform, or at a uniform share of the energy."""
    if cum is None or cum[-1] <= 0:
        return int(rng.integers(1, length))
    share = rng.random() * cum[-1]
    return min(max(int(np.searchsorted(cum, share, side="right")), 1), length - 1)


def flat_features(boxes: list[Box], shape: tuple[int, ...]) -> np.ndarray:
    """All features of a union of disjoint boxes, as one flat index array."""
    if not boxes:
        return np.empty(0, dtype=np.int64)
    return np.concatenate([b.flat(shape) for b in boxes])
