"""Cheap rankings to measure the causal one against, and the curves that compare rankings.

Every ranking has one face: ``ranking(domain, criterion, budget, seed) -> (order, mutants)``,
the searched features (``domain.candidates()``) most important first and the mutants it
spent, never more than ``budget``.

- **magnitude**: larger ``|X_k|`` first (no model call);
- **random**: a seeded permutation (no model call);
- **occlusion** (Captum's feature ablation): remove one band at a time and score it by the
  drop of ``p_target``; bands at the widths the search's 4-way splits produce (a quarter,
  a sixteenth ... of the searched features), as many levels as the budget pays for, the
  levels' drops summed, so a coarse band's verdict orders its bins and finer bands order
  them within it;
- **random_mask** (FreqRISE): ``budget`` random masks keeping each band of a coarse grid
  (randomly shifted, as RISE shifts its upsampled masks) with probability 1/2; saliency =
  mean of the masks weighted by ``p_target`` on each.

In the stft domain a "band" is a run of the cells in their flat order (row-major: a
frequency row across its frames, then the next row).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from freqrex.criterion import Criterion
from freqrex.domains import Domain
from freqrex.extraction import Prefixes, rank_bins

Ranking = Callable[[Domain, Criterion, int, int], tuple[np.ndarray, int]]
MASK_BANDS = 64      # cells of the random masks' grid over the searched features
MASK_BATCH = 256     # masks made and evaluated together


def magnitude(domain: Domain, criterion: Criterion, budget: int,
              seed: int) -> tuple[np.ndarray, int]:
    """Larger ``|X_k|`` first; ties by index."""
    candidates = domain.candidates()
    return rank_bins(np.zeros(domain.shape), domain.magnitude(), candidates), 0


def random_order(domain: Domain, criterion: Criterion, budget: int,
           seed: int) -> tuple[np.ndarray, int]:
    """A permutation drawn from ``seed``."""
    return np.random.default_rng(seed).permutation(domain.candidates()), 0


def occlusion(domain: Domain, criterion: Criterion, budget: int,
              seed: int) -> tuple[np.ndarray, int]:
    """Single-band ablation at the search's band widths, as many levels as ``budget`` pays."""
    candidates = domain.candidates()
    score = np.zeros(domain.n_features)
    spent, level = 0, 1
    while True:
        count = min(4 ** level, len(candidates))
        if spent + count > budget:
            break
        bands = np.array_split(candidates, count)
        without = domain.remove(domain.keep(list(bands)))
        drop = criterion.original_confidence - criterion.probabilities(without)[:, criterion.target]
        for band, d in zip(bands, drop):
            score[band] += d
        spent += count
        if count == len(candidates):
            break
        level += 1
    return rank_bins(score.reshape(domain.shape), domain.magnitude(), candidates), spent


def random_mask(domain: Domain, criterion: Criterion, budget: int,
                seed: int) -> tuple[np.ndarray, int]:
    """FreqRISE-style saliency from ``budget`` random band masks (probability 1/2)."""
    rng = np.random.default_rng(seed)
    candidates = domain.candidates()
    width = max(1, -(-len(candidates) // MASK_BANDS))
    position = np.arange(len(candidates))
    saliency = np.zeros(len(candidates))
    for start in range(0, budget, MASK_BATCH):
        count = min(MASK_BATCH, budget - start)
        shifts = rng.integers(0, width, count)
        grid = rng.random((count, MASK_BANDS + 1)) < 0.5
        masks = grid[np.arange(count)[:, None], (position[None, :] + shifts[:, None]) // width]
        p = criterion.probabilities(domain.keep([candidates[m] for m in masks]))
        saliency += p[:, criterion.target] @ masks
    saliency /= max(budget, 1) * 0.5
    score = np.zeros(domain.n_features)
    score[candidates] = saliency
    return rank_bins(score.reshape(domain.shape), domain.magnitude(), candidates), budget


BASELINES: dict[str, Ranking] = {"magnitude": magnitude, "random": random_order,
                                 "occlusion": occlusion, "random_mask": random_mask}


def curve_points(n: int, points: int = 33) -> np.ndarray:
    """Prefix sizes for the curves: evenly spaced over ``[0, n]`` plus 1, 2, 4, 8, ...
    (where the sets of a good ranking live)."""
    even = np.linspace(0, n, points).round().astype(np.int64)
    geometric = 1 << np.arange(int(np.log2(max(n, 1))) + 1)
    return np.unique(np.concatenate([even, geometric[geometric <= n]]))


def curves(prefixes: Prefixes, n: int,
           points: int = 33) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deletion and insertion curves of one ranking.

    Returns
    -------
    ks : np.ndarray
        Prefix sizes.
    deletion : np.ndarray
        ``p_target`` of the clip without the top ``k`` features (high area: the ranking
        missed what matters).
    insertion : np.ndarray
        ``p_target`` of the top ``k`` features alone, added to an empty signal (high
        area: the ranking found it early).
    """
    ks = curve_points(n, points)
    kept, removed = prefixes.outputs(ks, removal=True)   # one batch for both curves
    assert removed is not None
    target = prefixes.criterion.target
    return ks, removed[:, target], kept[:, target]


def area(ks: np.ndarray, values: np.ndarray, n: int) -> float:
    """Area under a curve over the share of features, ``[0, 1]`` (trapezoids)."""
    x = np.asarray(ks, dtype=np.float64) / max(n, 1)
    y = np.asarray(values, dtype=np.float64)
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))
