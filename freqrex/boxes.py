"""Boxes of the feature space and their random splits.

A box is a contiguous interval of rfft bins (fft domain) or a rectangle of STFT cells,
rows being frequencies and columns frames (stft domain). Splitting cuts a box into (at
most) four non-empty children at random cut points, no child smaller than ``min_size``
features: an interval at three points, a rectangle once in frequency and once in time.
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


def split(box: Box, rng: np.random.Generator, min_size: int, parts: int = 4) -> list[Box]:
    """Cut ``box`` into up to ``parts`` children at uniformly drawn cut points.

    Boxes too small for four children of ``min_size`` get as many as fit; a box that
    cannot hold two children returns an empty list (it is a leaf).
    """
    if isinstance(box, Rect):
        return _split_rect(box, rng, min_size)
    return [Interval(a, b) for a, b in _cuts(box.lo, box.hi, rng, min_size, parts)]


def _cuts(lo: int, hi: int, rng: np.random.Generator, min_size: int,
          parts: int = 4) -> list[tuple[int, int]]:
    """``[lo, hi)`` cut into up to ``parts`` runs of at least ``min_size``."""
    count = min(parts, (hi - lo) // min_size)
    if count < 2:
        return []
    # Draw the cuts in the slack left once every child has its minimum size: each child is
    # then at least min_size and the cuts are uniform over the rest.
    slack = hi - lo - count * min_size
    cuts = np.sort(rng.integers(0, slack + 1, size=count - 1))
    sizes = np.diff(np.concatenate(([0], cuts, [slack]))) + min_size
    edges = lo + np.concatenate(([0], np.cumsum(sizes)))
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def _split_rect(box: Rect, rng: np.random.Generator, min_size: int) -> list[Box]:
    height, width = box.f1 - box.f0, box.t1 - box.t0
    if height >= 2 and width >= 2:
        f = box.f0 + int(rng.integers(1, height))
        t = box.t0 + int(rng.integers(1, width))
        quadrants: list[Box] = [Rect(box.f0, f, box.t0, t), Rect(box.f0, f, t, box.t1),
                                Rect(f, box.f1, box.t0, t), Rect(f, box.f1, t, box.t1)]
        if min(q.size for q in quadrants) >= min_size:
            return quadrants
    # A strip, or quadrants too small: cut across the longer side only.
    if height >= width:
        rows = _cuts(box.f0, box.f1, rng, math.ceil(min_size / width))
        return [Rect(a, b, box.t0, box.t1) for a, b in rows]
    cols = _cuts(box.t0, box.t1, rng, math.ceil(min_size / height))
    return [Rect(box.f0, box.f1, a, b) for a, b in cols]


def flat_features(boxes: list[Box], shape: tuple[int, ...]) -> np.ndarray:
    """All features of a union of disjoint boxes, as one flat index array."""
    if not boxes:
        return np.empty(0, dtype=np.int64)
    return np.concatenate([b.flat(shape) for b in boxes])
