"""Batched masked inverse real FFTs (pyFFTW) and narrow-band synthesis.

Design (numbers from the 2-core dev box; see ``bench/README.md``):

* **One single-row plan per signal length and worker**, not one ``howmany=P`` plan per
  ``(P, K, n)``.  Each worker thread owns a plan with its own SIMD-aligned buffers and
  rows are handed out to the workers on demand by :func:`.pool.run` (``FFTW.execute``
  drops the GIL); the plans live in the one plan cache of :mod:`.pool`.  At
  n = 480 000 a batched FFTW_ESTIMATE plan with 2 FFTW threads took 44 ms for 16 rows
  against ~9 ms this way.  A plan per ``n`` also serves every batch size the search uses.
* **The masked spectrum is built in the plan's own input** (the inverse transform
  destroys it anyway), pre-scaled so the raw ``execute()`` needs no normalisation pass,
  and the result goes straight into the caller's output row when that row has the
  plan's alignment.
* **Even n use a half-length complex transform** (see :class:`RowPlan`): under
  FFTW_ESTIMATE it is 1.4-1.6x faster than FFTW's c2r.
* **Narrow intervals are synthesised directly** (a sum of ``w`` cosines) when a fixed
  cost model says it beats a row FFT: up to 8 bins at n = 480 000, 2 at n = 16 000,
  16 for lengths with large prime factors.
* **Planner effort**: FFTW_ESTIMATE, planned in a few ms and made the same way whatever
  wisdom the process holds (:mod:`.planner`): FFTW_MEASURE rows were ~1.2x faster but
  round differently from plan to plan, and the same seed must give the same bits.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
import pyfftw

from . import pool
from .rows import RowPlan, get_plans
from .synth import ranks, synth_band

__all__ = [
    "bin_set_parts",
    "interval_parts",
    "irfft_batch",
    "prefix_parts",
    "rfft",
]

# Below this many output samples per call the pool hand-off outweighs the second core:
# 5 rows of 16 000 took 82 us serial vs 103 us pooled, 5 rows of 48 000 247 vs 175 us.
_POOL_MIN_SAMPLES = 1 << 17
# Row cost model (microseconds), fitted on the dev box so that the FFT/direct-synthesis
# choice is a fixed function of (width, n) and results never depend on timing noise.
# Measured row FFT (fold included): 0.013 / 0.19 / 0.59 ms at n = 16k / 160k / 480k;
# direct synthesis at n = 480k: 0.08 / 0.18 / 0.50 / 0.77 ms for w = 1 / 4 / 8 / 12.
# Lengths with a prime factor FFTW has no codelet for are far slower (a 160 001-sample
# row: 5.4 ms), hence the penalty.
_FFT_US_PER_NLOGN = 0.066e-3
_FFT_US_FIXED = 2.0
_FFT_ROUGH_PENALTY = 8.0
_SYN_US_FIXED = 10.0  # the two 512-entry cos/sin tables
_SYN_US_PER_N = 0.15e-3
_SYN_US_PER_NW = 0.12e-3
_SYNTH_MAX_WIDTH = 16  # bounds the synthesis table (w x 512 doubles, twice)
# At or below this length one batched numpy (pocketfft) transform of every row beats
# FFTW plans run row by row from Python, whose per-row hand-offs dominate a short row
# (bench/test_bench_kernels.py, 32 bin-set rows: numpy 1.1-3.0x faster at 512 to 4 096
# samples, 0.8-1.7x at 8 192, FFTW 1.7-2x faster at 16 000 and 2-2.5x at 64 000). numpy
# transforms each row alone, so a row is the same bit for bit however many rows share
# the call (tested).
_NUMPY_MAX_N = 1 << 12


# --------------------------------------------------------------------------- driver

RowJob = Callable[[RowPlan, int], None]


def _run_rows(n: int, order: Sequence[int], job: RowJob) -> None:
    """Run job(plan, p) for every row p in ``order`` (most expensive first, ideally)."""
    if len(order) == 0:
        return
    pset = get_plans(n)
    workers = min(len(pset.plans), len(order))
    if len(order) * n < _POOL_MIN_SAMPLES:
        workers = 1
    with pset.lock:
        pool.run(pset.plans[:workers], order, job)


def _numpy_rows(spectra: np.ndarray, n: int, out: np.ndarray | None) -> np.ndarray:
    """The inverse transforms of ``spectra``'s rows in one numpy call (short clips: see
    ``_NUMPY_MAX_N``), into ``out`` when given."""
    rows = (np.fft.irfft(spectra, n).astype(np.float32, copy=False) if spectra.shape[0]
            else np.empty((0, n), dtype=np.float32))   # numpy 2: complex64 in, float32 out
    if out is None:
        return rows
    out = _out_array(rows.shape[0], n, out)
    out[...] = rows
    return out


def _check_n(K: int, n: int) -> int:  # noqa: N803
    n = operator.index(n)
    if n < 1 or K != n // 2 + 1:
        raise ValueError(f"{K} bins do not match a signal of length n={n} (need n//2+1)")
    return n


def _out_array(rows: int, n: int, out: np.ndarray | None) -> np.ndarray:
    if out is None:
        # aligned rows let FFTW write in place whenever n keeps the row stride aligned
        return pyfftw.empty_aligned((rows, n), dtype=np.float32)
    if out.shape != (rows, n) or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {(rows, n)}")
    return out


def _as_spectrum(X: np.ndarray) -> np.ndarray:  # noqa: N803
    X = np.ascontiguousarray(X, dtype=np.complex64)
    if X.ndim != 1:
        raise ValueError(f"spectrum must be 1-D, got shape {X.shape}")
    return X


# --------------------------------------------------------------------------- public API


def rfft(x: np.ndarray) -> np.ndarray:
    """Forward real FFT of a clip (done once per clip, so plain numpy).

    Parameters
    ----------
    x : np.ndarray
        float32/float64 ``[n]`` waveform.

    Returns
    -------
    np.ndarray
        complex128 ``[n//2 + 1]``.
    """
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"rfft expects a 1-D waveform, got shape {x.shape}")
    return np.fft.rfft(x.astype(np.float64, copy=False))


def irfft_batch(spectra: np.ndarray, n: int, out: np.ndarray | None = None) -> np.ndarray:
    """Inverse real FFT of every row of ``spectra``.

    Parameters
    ----------
    spectra : np.ndarray
        complex64 ``[P, K]`` with ``K = n//2 + 1``; not modified.
    n : int
        Output signal length.
    out : np.ndarray, optional
        float32 ``[P, n]`` C-contiguous destination.

    Returns
    -------
    np.ndarray
        float32 ``[P, n]``, row p equal to ``numpy.fft.irfft(spectra[p], n)``.
    """
    spectra = np.asarray(spectra)
    if spectra.ndim != 2:
        raise ValueError(f"spectra must be [P, K], got shape {spectra.shape}")
    if spectra.dtype != np.complex64:
        spectra = spectra.astype(np.complex64)
    n = _check_n(spectra.shape[1], n)
    if n <= _NUMPY_MAX_N:
        return _numpy_rows(spectra, n, out)
    out = _out_array(spectra.shape[0], n, out)

    def job(plan: RowPlan, p: int) -> None:
        plan.load_row(spectra[p])
        plan.run(out[p])

    _run_rows(n, range(spectra.shape[0]), job)
    return out


@lru_cache(maxsize=64)
def _fft_row_us(n: int) -> float:
    """Modelled cost of one row FFT of length n (see the constants above)."""
    length = n // 2 if n % 2 == 0 else n  # the even path transforms n/2 complex points
    cost = _FFT_US_FIXED + _FFT_US_PER_NLOGN * n * math.log2(max(n, 2))
    return cost * (_FFT_ROUGH_PENALTY if _largest_prime_factor(length) > 13 else 1.0)


def _largest_prime_factor(m: int) -> int:
    largest, d = 1, 2
    while d * d <= m:
        while m % d == 0:
            largest, m = d, m // d
        d += 1
    return max(largest, m)


def _synth_row_us(width: int, n: int) -> float:
    return _SYN_US_FIXED + n * (_SYN_US_PER_N + _SYN_US_PER_NW * width)


def _synth_is_cheaper(width: int, n: int) -> bool:
    return width <= _SYNTH_MAX_WIDTH and _synth_row_us(width, n) < _fft_row_us(n)


def _row_cost(width: int, n: int) -> float:
    """Modelled cost of one interval row, for longest-first scheduling."""
    if width == 0:
        return 0.0
    if _synth_is_cheaper(width, n):
        return _synth_row_us(width, n)
    return _fft_row_us(n)


def interval_parts(
    X: np.ndarray,  # noqa: N803
    bounds: np.ndarray,
    n: int,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Signals of ``X`` restricted to half-open bin intervals.

    Parameters
    ----------
    X : np.ndarray
        complex64 ``[K]`` spectrum of the clip, ``K = n//2 + 1``.
    bounds : np.ndarray
        int64 ``[P, 2]`` rows ``(lo, hi)`` with ``0 <= lo <= hi <= K``.
    n : int
        Signal length.
    out : np.ndarray, optional
        float32 ``[P, n]`` C-contiguous destination.  Reusing one across calls
        saves the page faults of a fresh array (~10 % at n = 480 000).

    Returns
    -------
    np.ndarray
        float32 ``[P, n]``, row p equal to ``irfft(X * 1[lo_p <= k < hi_p], n)``.
    """
    X = _as_spectrum(X)
    K = X.shape[0]  # noqa: N806
    n = _check_n(K, n)
    bounds = np.asarray(bounds, dtype=np.int64).reshape(-1, 2)
    lo, hi = bounds[:, 0], bounds[:, 1]
    if bounds.size and ((lo < 0).any() or (hi > K).any() or (lo > hi).any()):
        raise ValueError(f"bounds must satisfy 0 <= lo <= hi <= {K}")
    if n <= _NUMPY_MAX_N:
        bins = np.arange(K)
        inside = (bins >= lo[:, None]) & (bins < hi[:, None])
        return _numpy_rows(np.where(inside, X, np.complex64(0)), n, out)
    out = _out_array(bounds.shape[0], n, out)

    def job(plan: RowPlan, p: int) -> None:
        a, b = int(lo[p]), int(hi[p])
        if a == b:
            out[p] = 0.0
        elif _synth_is_cheaper(b - a, n):
            synth_band(X, a, b, n, out[p])
        else:
            plan.load_interval(X, a, b)
            plan.run(out[p])

    # longest rows first: cheap direct-synthesis rows then fill the workers' gaps
    cost = [_row_cost(int(b - a), n) for a, b in bounds]
    _run_rows(n, sorted(range(len(cost)), key=cost.__getitem__, reverse=True), job)
    return out


def bin_set_parts(
    X: np.ndarray,  # noqa: N803
    sets: Sequence[np.ndarray],
    n: int,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Signals of ``X`` restricted to arbitrary bin sets.

    Parameters
    ----------
    X : np.ndarray
        complex64 ``[K]`` spectrum, ``K = n//2 + 1``.
    sets : Sequence[np.ndarray]
        P int64 arrays of bin indices in ``[0, K)`` (any order; duplicates allowed).
    n : int
        Signal length.
    out : np.ndarray, optional
        float32 ``[P, n]`` C-contiguous destination.  Reusing one across calls
        saves the page faults of a fresh array (~10 % at n = 480 000).

    Returns
    -------
    np.ndarray
        float32 ``[P, n]``, row p equal to ``irfft(X restricted to sets[p], n)``.
    """
    X = _as_spectrum(X)
    K = X.shape[0]  # noqa: N806
    n = _check_n(K, n)
    idx = [np.ascontiguousarray(s, dtype=np.int64).ravel() for s in sets]
    for s in idx:
        if s.size and (s.min() < 0 or s.max() >= K):
            raise ValueError(f"bin indices must lie in [0, {K})")
    if n <= _NUMPY_MAX_N:
        spectra = np.zeros((len(idx), K), dtype=np.complex64)
        for p, s in enumerate(idx):
            spectra[p, s] = X[s]
        return _numpy_rows(spectra, n, out)
    out = _out_array(len(idx), n, out)

    def job(plan: RowPlan, p: int) -> None:
        plan.load_bins(X, idx[p])
        plan.run(out[p])

    _run_rows(n, range(len(idx)), job)
    return out


def prefix_parts(
    X: np.ndarray,  # noqa: N803
    ranking: np.ndarray,
    ks: np.ndarray,
    n: int,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Signals of ``X`` restricted to the top-``k`` bins of a ranking, for several ``k``.

    Parameters
    ----------
    X : np.ndarray
        complex64 ``[K]`` spectrum, ``K = n//2 + 1``.
    ranking : np.ndarray
        int64 ``[R]`` bin indices in ``[0, K)``, most important first (normally a
        permutation of ``range(K)``).
    ks : np.ndarray
        int64 ``[M]`` prefix lengths in ``[0, R]``.
    n : int
        Signal length.
    out : np.ndarray, optional
        float32 ``[M, n]`` C-contiguous destination.  Reusing one across calls
        saves the page faults of a fresh array (~10 % at n = 480 000).

    Returns
    -------
    np.ndarray
        float32 ``[M, n]``, row i equal to ``irfft(X restricted to ranking[:ks[i]], n)``.
    """
    X = _as_spectrum(X)
    K = X.shape[0]  # noqa: N806
    n = _check_n(K, n)
    ranking = np.ascontiguousarray(ranking, dtype=np.int64).ravel()
    ks = np.asarray(ks, dtype=np.int64).ravel()
    if ranking.size and (ranking.min() < 0 or ranking.max() >= K):
        raise ValueError(f"ranking entries must lie in [0, {K})")
    if ks.size and (ks.min() < 0 or ks.max() > ranking.size):
        raise ValueError(f"ks must lie in [0, {ranking.size}]")
    rank = ranks(ranking, K)
    if n <= _NUMPY_MAX_N:
        return _numpy_rows(np.where(rank < ks[:, None], X, np.complex64(0)), n, out)
    out = _out_array(ks.size, n, out)

    def job(plan: RowPlan, i: int) -> None:
        plan.load_ranked(X, rank, ks[i])
        plan.run(out[i])

    _run_rows(n, range(ks.size), job)
    return out
