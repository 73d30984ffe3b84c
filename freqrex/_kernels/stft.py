"""STFT analysis and batched inverse STFT of masked coefficient sets.

Convention: periodic Hann window, ``n_fft // 2`` zeros padded on both sides (frames are
centred on samples ``t * hop``), ``T = n // hop + 1`` frames, coefficients ``[F, T]`` with
``F = n_fft // 2 + 1``. The inverse is the weighted overlap-add with window-sum-square
normalisation, exact (to rounding) for ``hop <= n_fft / 2``. Both directions are linear,
so the inverse of a masked coefficient set is the sum of the inverses of its parts.

How the inverse is made fast (numbers from the 2-core dev box, ``bench/test_bench_stft.py``):

* **Only live frames are transformed.** A rectangle ``(f0, f1, t0, t1)`` touches frames
  ``t0 .. t1-1`` only, and a cell set only the frames holding one of its cells; every
  other frame is all zeros and contributes nothing.  Likewise only output samples under
  a live frame are overlap-added; the rest of the row is written as zeros once.
* **Work units own output samples.**  Each output row is cut into blocks of about
  ``_BLOCK_FRAMES * hop`` samples; a unit transforms every live frame overlapping its
  block (the ``n_fft / hop - 1`` frames straddling a block edge are transformed by both
  neighbours, ~1-3 % extra) and *writes* its block.  Units therefore never share an
  output sample: they run on the worker pool of :mod:`freqrex._kernels.pool` with no
  locks or reductions, handed out on demand like the FFT rows.
* **Small batched FFTs stay in cache.**  A unit's frames are gathered (Numba) into a
  per-worker ``[frames, F]`` buffer, inverse-transformed by one batched pyFFTW c2r plan,
  then windowed, overlap-added and normalised (Numba) while still in L2.  FFTW_ESTIMATE
  is used: for 64-512 point batches it matched FFTW_MEASURE (~0.3 us per 512-point
  frame, 2-3x numpy's pocketfft) and plans in ~0.1 ms, so no wisdom is needed.
  Batch plans exist per multiple of ``_PLAN_STEP`` frames; a unit rounds its frame
  count up with zero frames instead of planning every count.
* **Precision by conditioning.**  The overlap-add divides by the window-sum-square, so
  a frame's rounding error is amplified by ``sum(w) / sum(w**2)`` at each sample: at
  most ~2 for ``hop <= n_fft / 4`` (Hann), but up to ~1e4 in the last ``hop`` samples
  when ``hop = n_fft / 2``.  Frames are therefore transformed and accumulated in float32
  when that factor stays below ``_FLOAT32_MAX_GAIN`` over the whole signal (~30 % faster
  than double: half the bytes, ~0.3 vs ~0.45 us per 512-point c2r) and in float64
  otherwise, where the result matches the float64 reference to float32 rounding.
  complex128 coefficients are accepted as well and cast per frame.
* The window-sum-square normaliser is cached per ``(n, n_fft, hop)``.

The forward :func:`stft` is plain numpy; pyfftw and the Numba kernels (:mod:`.frames`)
are imported by the first inverse.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from . import pool

if TYPE_CHECKING:
    from .frames import Worker

__all__ = ["istft_boxes", "istft_prefix", "istft_sets", "n_frames", "stft", "window"]

# Frame starts per work unit.  ~128 frames keep a unit's spectra and frames (~270 KiB in
# float32 at n_fft = 512) in L2 while the per-unit Python overhead (two Numba calls and
# one FFTW execute, ~10 us) stays small next to its ~50-100 us of work.  64 and 256
# measured the same within noise.
_BLOCK_FRAMES = 128
# Batch plans exist for every multiple of this many frames (a unit's count is rounded up).
_PLAN_STEP = 8
# Below this many live frames per call the pool hand-off costs more than the second core
# saves: a split at n_fft = 512, hop = 128 (~2 live frames per hop of signal) broke even
# around n = 24 000-32 000 samples (375-500 frames, ~0.25 ms) and gained 25-45 % at
# n >= 48 000 (the two vCPUs of the dev box do not always scale like two cores).
_POOL_MIN_FRAMES = 512
# Largest error gain sum(w) / sum(w**2) for which float32 frames are accurate enough:
# the error then stays within a few float32 ulps of the local signal scale.
_FLOAT32_MAX_GAIN = 4.0


def window(n_fft: int) -> np.ndarray:
    """Periodic Hann window of length ``n_fft`` (float64)."""
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)


def n_frames(n: int, hop: int) -> int:
    """Number of STFT frames of a signal of ``n`` samples: ``n // hop + 1``."""
    return n // hop + 1


def _padded_length(n: int, n_fft: int, hop: int) -> int:
    return (n_frames(n, hop) - 1) * hop + n_fft


def stft(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """STFT of a mono waveform: complex128 ``[n_fft // 2 + 1, n // hop + 1]``."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    pad = n_fft // 2
    padded = np.zeros(_padded_length(n, n_fft, hop))
    padded[pad:pad + n] = x
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    return np.fft.rfft(frames * window(n_fft), axis=1).T.copy()


class _Normaliser:
    """Per-geometry constants of the overlap-add (read-only arrays).

    Attributes
    ----------
    inv_wss : np.ndarray
        float64 ``[n]``, ``1 / wss`` (0 in the holes).
    holes : np.ndarray
        Samples no window reaches (``wss == 0``, only for ``hop > n_fft / 2``): the
        reference computes ``0 / 0`` there, so they are NaN in every row, as there.
    dtype : np.dtype
        Real dtype the frames are computed in (see the module docstring).
    """

    def __init__(self, n: int, n_fft: int, hop: int) -> None:
        w = window(n_fft)
        pad = n_fft // 2
        # For hop > n_fft / 2 + 1 the frames can end before sample n - 1; the reference
        # then returns rows shorter than n.  Here the rows keep length n and the samples
        # past the last frame are holes like any other.
        length = max(_padded_length(n, n_fft, hop), pad + n)
        w2 = w**2
        wss = np.zeros(length)
        wsum = np.zeros(length)
        for t in range(n_frames(n, hop)):  # the reference's summation order
            wss[t * hop:t * hop + n_fft] += w2
            wsum[t * hop:t * hop + n_fft] += w
        wss, wsum = wss[pad:pad + n], wsum[pad:pad + n]
        self.holes = np.flatnonzero(wss == 0)
        safe = np.where(wss == 0, 1.0, wss)
        self.inv_wss = np.where(wss == 0, 0.0, 1.0 / safe)
        gain = float((wsum * self.inv_wss).max(initial=0.0))
        self.dtype = np.dtype(np.float32 if gain <= _FLOAT32_MAX_GAIN else np.float64)
        self.inv_wss.flags.writeable = False
        self.holes.flags.writeable = False


@lru_cache(maxsize=4)  # ~8 bytes per sample each; one clip length is in use at a time
def _normaliser(n: int, n_fft: int, hop: int) -> _Normaliser:
    return _Normaliser(n, n_fft, hop)


@lru_cache(maxsize=8)
def _synthesis_window(n_fft: int) -> np.ndarray:
    """Hann window divided by ``n_fft``: FFTW's c2r is unnormalised, numpy's irfft is not."""
    w = window(n_fft) / n_fft
    w.flags.writeable = False
    return w


# --------------------------------------------------------------------------- plans


class _WorkerSet:
    """Per-thread workers for one ``(n_fft, dtype)``; the lock serialises callers."""

    def __init__(self, n_fft: int, capacity: int, dtype: np.dtype) -> None:
        self.lock = threading.Lock()
        self.capacity = capacity
        from . import frames

        self.workers = [frames.Worker(n_fft, capacity, dtype) for _ in range(pool.threads())]


def _plan_rows(frames: int) -> int:
    """Batch size of the plan that transforms ``frames`` frames (rounded up)."""
    return -(-frames // _PLAN_STEP) * _PLAN_STEP


def _capacity(n_fft: int, hop: int) -> int:
    # frames overlapping a block of _BLOCK_FRAMES hops, rounded up to a plan size
    return _plan_rows(_BLOCK_FRAMES + -(-n_fft // hop) + 1)


def _get_workers(n_fft: int, hop: int, dtype: np.dtype) -> _WorkerSet:
    need = _capacity(n_fft, hop)
    return pool.plan(("stft", n_fft, dtype.str), lambda: _WorkerSet(n_fft, need, dtype),
                     fits=lambda wset: wset.capacity >= need)


# --------------------------------------------------------------------------- driver

Unit = tuple[int, int, int, int, int]  # (row, s0, s1, ta, tb), see _units
Fill = Callable[["Worker", int, int, int], int]  # (worker, row, ta, tb) -> live frames


class _Geometry:
    """Sizes of one call, checked against the coefficient array."""

    def __init__(self, coefficients: np.ndarray, n_fft: int, hop: int, n: int) -> None:
        self.n_fft, self.hop, self.n = int(n_fft), int(hop), int(n)
        if self.n_fft < 1 or self.hop < 1 or self.n < 0:
            raise ValueError(f"invalid STFT geometry n_fft={n_fft}, hop={hop}, n={n}")
        self.rows = self.n_fft // 2 + 1
        self.frames = n_frames(self.n, self.hop)
        if coefficients.ndim != 2 or coefficients.shape != (self.rows, self.frames):
            raise ValueError(
                f"coefficients {coefficients.shape} do not match n_fft={n_fft}, hop={hop}, "
                f"n={n} (need {(self.rows, self.frames)})"
            )
        self.pad = self.n_fft // 2

    def first_frame(self, s: int) -> int:
        """First frame whose support reaches sample ``s`` or later."""
        return (s + self.pad - self.n_fft) // self.hop + 1

    def end_frame(self, s: int) -> int:
        """One past the last frame starting before sample ``s``."""
        return -(-(s + self.pad) // self.hop)


def _units(geo: _Geometry, spans: np.ndarray) -> list[Unit]:
    """Work units ``(row, s0, s1, ta, tb)`` tiling every output row.

    ``spans[p] = (ta, tb)`` are row p's live frames (``ta >= tb``: none).  A unit writes
    samples ``[s0, s1)`` from the live frames in ``[ta, tb)`` (none: zeros).  Sorted
    most frames first so the dynamic hand-out ends with the cheap units.
    """
    units = []
    block = _BLOCK_FRAMES * geo.hop
    for p, (ta, tb) in enumerate(spans.tolist()):
        if ta >= tb:
            if geo.n:
                units.append((p, 0, geo.n, 0, 0))
            continue
        lo = max(0, ta * geo.hop - geo.pad)
        hi = min(geo.n, (tb - 1) * geo.hop - geo.pad + geo.n_fft)
        if lo > 0:
            units.append((p, 0, lo, 0, 0))
        if hi < geo.n:
            units.append((p, hi, geo.n, 0, 0))
        for s0 in range(lo, hi, block):
            s1 = min(hi, s0 + block)
            units.append(
                (p, s0, s1, max(ta, geo.first_frame(s0)), min(tb, geo.end_frame(s1)))
            )
    units.sort(key=lambda u: u[3] - u[4])
    return units


def _run(geo: _Geometry, spans: np.ndarray, fill: Fill) -> np.ndarray:
    """Synthesise every row: ``fill(worker, row, ta, tb) -> live frame count``."""
    from .frames import overlap_add

    out = np.empty((spans.shape[0], geo.n), dtype=np.float32)
    units = _units(geo, spans)
    if not units:
        return out
    norm = _normaliser(geo.n, geo.n_fft, geo.hop)
    inv_wss = norm.inv_wss
    win = _synthesis_window(geo.n_fft)
    wset = _get_workers(geo.n_fft, geo.hop, norm.dtype)
    block = _BLOCK_FRAMES * geo.hop
    hop, pad = geo.hop, geo.pad

    def job(w: Worker, unit: Unit) -> None:
        p, s0, s1, ta, tb = unit
        m = 0
        if tb > ta:
            m = fill(w, p, ta, tb)
            if m:
                w.plan(_plan_rows(m)).execute()
        overlap_add(w.frames, w.live, m, win, inv_wss, out[p], s0, s1, hop, pad,
                    w.scratch(block))

    frames = sum(u[4] - u[3] for u in units)
    with wset.lock:
        workers = min(len(wset.workers), len(units))
        if frames < _POOL_MIN_FRAMES:
            workers = 1
        pool.run(wset.workers[:workers], units, job)
    if norm.holes.size:
        out[:, norm.holes] = np.nan
    return out


def _as_coefficients(coefficients: np.ndarray) -> np.ndarray:
    # complex64 is the documented input; complex128 is kept as is (the fill kernels
    # cast to the frames' precision), so a full-precision STFT keeps its extra digits
    coefficients = np.asarray(coefficients)
    if coefficients.dtype not in (np.complex64, np.complex128):
        coefficients = coefficients.astype(np.complex128)
    return np.ascontiguousarray(coefficients)


# --------------------------------------------------------------------------- public API


def istft_boxes(coefficients: np.ndarray, bounds: np.ndarray, n_fft: int, hop: int,
                n: int) -> np.ndarray:
    """Inverse STFT of the coefficients restricted to each of several rectangles.

    Parameters
    ----------
    coefficients : np.ndarray
        complex64 ``[F, T]`` STFT (``F = n_fft // 2 + 1``, ``T = n // hop + 1``).
    bounds : np.ndarray
        int64 ``[P, 4]`` non-negative rows ``(f0, f1, t0, t1)``: rows ``[f0, f1)`` by
        frames ``[t0, t1)``, clipped to ``[F, T]`` as slicing would (``f1 <= f0`` or
        ``t1 <= t0``: an empty rectangle, a zero row).
    n_fft, hop : int
        Window length and hop.
    n : int
        Signal length.

    Returns
    -------
    np.ndarray
        float32 ``[P, n]``: row ``p`` is the inverse STFT of ``coefficients`` with every
        cell outside rectangle ``p`` zeroed.
    """
    coefficients = _as_coefficients(coefficients)
    geo = _Geometry(coefficients, n_fft, hop, n)
    bounds = np.asarray(bounds, dtype=np.int64).reshape(-1, 4)
    if bounds.size and (bounds < 0).any():
        raise ValueError("box bounds must be non-negative")
    f0 = bounds[:, 0]
    f1 = np.minimum(np.maximum(bounds[:, 1], f0), geo.rows)
    t0 = bounds[:, 2]
    t1 = np.minimum(np.maximum(bounds[:, 3], t0), geo.frames)
    empty = (f1 <= f0) | (t1 <= t0)
    spans = np.stack([np.where(empty, 0, t0), np.where(empty, 0, t1)], axis=1)
    f0l, f1l = f0.tolist(), f1.tolist()
    from .frames import fill_box

    def fill(w: Worker, p: int, ta: int, tb: int) -> int:
        return fill_box(coefficients, f0l[p], f1l[p], ta, tb,
                        w.spec[:_plan_rows(tb - ta)], w.live)

    return _run(geo, spans, fill)


def _keyed(coefficients: np.ndarray, geo: _Geometry, keys: list[np.ndarray],
           column_mins: list[np.ndarray], which: Sequence[int],
           kths: Sequence[int]) -> np.ndarray:
    """Rows keeping the cells with ``keys[which[p]] < kths[p]``."""
    spans = np.zeros((len(which), 2), dtype=np.int64)
    for p, (c, k) in enumerate(zip(which, kths)):
        live = np.flatnonzero(column_mins[c] < k)
        if live.size:
            spans[p] = live[0], live[-1] + 1
    from .frames import fill_keyed

    def fill(w: Worker, p: int, ta: int, tb: int) -> int:
        c = which[p]
        # the slice is sized for every frame of [ta, tb) being live; the kernel zeroes
        # the rows past the live count, so the (smaller) plan used sees only zeros there
        return fill_keyed(coefficients, keys[c], column_mins[c], kths[p], ta, tb,
                          w.spec[:_plan_rows(tb - ta)], w.live)

    return _run(geo, spans, fill)


def _check_cells(idx: np.ndarray, size: int, what: str) -> np.ndarray:
    idx = np.ascontiguousarray(idx, dtype=np.int64).ravel()
    if idx.size and (idx.min() < 0 or idx.max() >= size):
        raise ValueError(f"{what} must be flat cell indices in [0, {size})")
    return idx


def istft_sets(coefficients: np.ndarray, sets: Sequence[np.ndarray], n_fft: int, hop: int,
               n: int) -> np.ndarray:
    """Inverse STFT of the coefficients restricted to each of several cell sets.

    Parameters
    ----------
    coefficients : np.ndarray
        complex64 ``[F, T]`` STFT.
    sets : Sequence[np.ndarray]
        int64 flat cell indices (``f * T + t``) in ``[0, F * T)``, any order, duplicates
        harmless.
    n_fft, hop : int
        Window length and hop.
    n : int
        Signal length.

    Returns
    -------
    np.ndarray
        float32 ``[len(sets), n]``: row ``p`` keeps the cells ``sets[p]``.
    """
    coefficients = _as_coefficients(coefficients)
    geo = _Geometry(coefficients, n_fft, hop, n)
    size = geo.rows * geo.frames
    keys, column_mins = [], []
    for s in sets:
        idx = _check_cells(s, size, "set entries")
        # 0 = kept, 1 = dropped: one byte per cell, and "key < 1" selects the set
        flat = np.ones(size, dtype=np.uint8)
        flat[idx] = 0
        key = flat.reshape(geo.rows, geo.frames)
        keys.append(key)
        column_mins.append(key.min(axis=0))
    return _keyed(coefficients, geo, keys, column_mins, range(len(keys)), [1] * len(keys))


def istft_prefix(coefficients: np.ndarray, ranking: np.ndarray, ks: np.ndarray, n_fft: int,
                 hop: int, n: int) -> np.ndarray:
    """Inverse STFT of the coefficients restricted to prefixes of a ranking.

    Parameters
    ----------
    coefficients : np.ndarray
        complex64 ``[F, T]`` STFT.
    ranking : np.ndarray
        int64 ``[R]`` flat cell indices, most important first.
    ks : np.ndarray
        int64 ``[M]`` prefix lengths in ``[0, R]``.
    n_fft, hop : int
        Window length and hop.
    n : int
        Signal length.

    Returns
    -------
    np.ndarray
        float32 ``[M, n]``: row ``i`` keeps the cells ``ranking[:ks[i]]``.
    """
    coefficients = _as_coefficients(coefficients)
    geo = _Geometry(coefficients, n_fft, hop, n)
    size = geo.rows * geo.frames
    ranking = _check_cells(ranking, size, "ranking entries")
    ks = np.asarray(ks, dtype=np.int64).ravel()
    if ks.size and (ks.min() < 0 or ks.max() > ranking.size):
        raise ValueError(f"ks must lie in [0, {ranking.size}]")
    # a cell is in ranking[:k] iff its first position is < k: one rank array serves
    # every prefix, and a frame is live iff its best-ranked cell is < k
    # int32 halves the bytes the fill kernel streams; int64 only for absurd rankings
    from .synth import ranks

    dtype = np.int32 if ranking.size < np.iinfo(np.int32).max else np.int64
    key = ranks(ranking, size, dtype).reshape(geo.rows, geo.frames)
    column_min = key.min(axis=0)
    return _keyed(coefficients, geo, [key], [column_min], [0] * ks.size, ks.tolist())
