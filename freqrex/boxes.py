"""Boxes of the feature space and their random splits.

A box is a contiguous interval of rfft bins. Splitting cuts a box into (at most) four
non-empty children at random cut points, no child smaller than ``min_size`` bins.
"""

from __future__ import annotations

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

    def bins(self) -> np.ndarray:
        return np.arange(self.lo, self.hi, dtype=np.int64)


def split(box: Interval, rng: np.random.Generator, min_size: int, parts: int = 4) -> list[Interval]:
    """Cut ``box`` into up to ``parts`` children at uniformly drawn cut points.

    Boxes too small for four children of ``min_size`` get as many as fit; a box that
    cannot hold two children returns an empty list (it is a leaf).
    """
    count = min(parts, box.size // min_size)
    if count < 2:
        return []
    # Draw the cuts in the slack left once every child has its minimum size: each child is
    # then at least min_size and the cuts are uniform over the rest.
    slack = box.size - count * min_size
    cuts = np.sort(rng.integers(0, slack + 1, size=count - 1))
    sizes = np.diff(np.concatenate(([0], cuts, [slack]))) + min_size
    edges = box.lo + np.concatenate(([0], np.cumsum(sizes)))
    return [Interval(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def bins_of(boxes: list[Interval]) -> np.ndarray:
    """All bins of a union of disjoint boxes, as one index array."""
    if not boxes:
        return np.empty(0, dtype=np.int64)
    return np.concatenate([b.bins() for b in boxes])
