"""pyFFTW plans, FFTW wisdom and batched masked inverse transforms.

Design (numbers from the 2-core dev box; see ``bench/README.md``):

* **One single-row plan per signal length and worker**, not one ``howmany=P`` plan per
  ``(P, K, n)``.  Each worker thread owns a plan with its own SIMD-aligned buffers and
  rows are handed out to the workers on demand (``FFTW.execute`` drops the GIL).  At
  n = 480 000 a batched FFTW_ESTIMATE plan with 2 FFTW threads took 44 ms for 16 rows
  against ~9 ms this way, and a batched FFTW_MEASURE plan costs 20-30 s of planning on a
  cold cache.  A plan per ``n`` also serves every batch size the search uses.
* **The masked spectrum is built in the plan's own input** (the inverse transform
  destroys it anyway), pre-scaled so the raw ``execute()`` needs no normalisation pass,
  and the result goes straight into the caller's output row when that row has the
  plan's alignment.
* **Even n use a half-length complex transform** (see :class:`_RowPlan`): under
  FFTW_ESTIMATE it is 1.4-1.6x faster than FFTW's c2r, and no slower under MEASURE.
* **Narrow intervals are synthesised directly** (a sum of ``w`` cosines) when a fixed
  cost model says it beats a row FFT: up to 8 bins at n = 480 000, 2 at n = 16 000,
  16 for lengths with large prime factors.
* **Planner effort**: FFTW_MEASURE only when the wisdom already holds it (an
  ``FFTW_WISDOM_ONLY`` probe costs ~0.1 ms), else FFTW_ESTIMATE, which plans in a few
  ms.  :func:`prepare_plans` pays for MEASURE (0.2 / 1.3 / 5.5 s at n = 16k / 160k /
  480k, for ~1.2x faster rows) and persists it in the wisdom file.
"""

from __future__ import annotations

import atexit
import math
import operator
import os
import struct
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyfftw

from .synth import (
    _fill_bins,
    _fill_interval,
    _fill_ranked,
    _fill_scaled,
    _half_full,
    _half_interval,
    _ranks,
    _synth_band,
)

__all__ = [
    "bin_set_parts",
    "interval_parts",
    "irfft_batch",
    "load_wisdom",
    "prefix_parts",
    "prepare_plans",
    "rfft",
    "save_wisdom",
    "wisdom_path",
]

_WISDOM_FILE = "fftw_wisdom.bin"
_WISDOM_MAGIC = b"FRQXWIS1"
_WISDOM_MAX_BYTES = 64 << 20  # a real wisdom file is a few KiB; refuse to slurp garbage
_PLAN_CACHE_SIZE = 4  # distinct signal lengths kept planned (one per clip length in use)
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


def _usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


_WORKERS = _usable_cores()


# --------------------------------------------------------------------------- wisdom


def wisdom_path() -> Path:
    """Location of the persisted FFTW wisdom.

    Returns
    -------
    Path
        ``$FREQREX_CACHE_DIR/fftw_wisdom.bin`` if the variable is set, else the same file
        in ``platformdirs.user_cache_dir("freqrex")``.
    """
    root = os.environ.get("FREQREX_CACHE_DIR")
    if not root:
        import platformdirs

        root = platformdirs.user_cache_dir("freqrex")
    return Path(root) / _WISDOM_FILE


def _encode_wisdom(parts: Sequence[bytes]) -> bytes:
    chunks = [_WISDOM_MAGIC, struct.pack("<I", len(parts))]
    for part in parts:
        chunks += [struct.pack("<Q", len(part)), part]
    return b"".join(chunks)


def _decode_wisdom(blob: bytes) -> tuple[bytes, ...]:
    """Inverse of _encode_wisdom; raises ValueError on any inconsistency."""
    head = len(_WISDOM_MAGIC)
    if blob[:head] != _WISDOM_MAGIC or len(blob) < head + 4:
        raise ValueError("not a freqrex wisdom file")
    (count,) = struct.unpack_from("<I", blob, head)
    if count != 3:  # double, single, long double
        raise ValueError("unexpected wisdom part count")
    pos, parts = head + 4, []
    for _ in range(count):
        if pos + 8 > len(blob):
            raise ValueError("truncated wisdom file")
        (size,) = struct.unpack_from("<Q", blob, pos)
        pos += 8
        if pos + size > len(blob):
            raise ValueError("truncated wisdom file")
        parts.append(bytes(blob[pos : pos + size]))
        pos += size
    if pos != len(blob):
        raise ValueError("trailing bytes in wisdom file")
    return tuple(parts)


def load_wisdom() -> bool:
    """Import persisted FFTW wisdom, if any.

    A missing, unreadable or corrupt file is ignored (FFTW then simply plans).

    Returns
    -------
    bool
        True if wisdom was imported.
    """
    try:
        path = wisdom_path()
        if path.stat().st_size > _WISDOM_MAX_BYTES:
            return False
        parts = _decode_wisdom(path.read_bytes())
        return any(pyfftw.import_wisdom(parts))
    except Exception:  # noqa: BLE001 - any failure just means "plan from scratch"
        return False


def save_wisdom() -> bool:
    """Persist the current FFTW wisdom atomically (temp file + ``os.replace``).

    An unwritable cache directory is ignored.

    Returns
    -------
    bool
        True if the file was written.
    """
    tmp = None
    try:
        path = wisdom_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        blob = _encode_wisdom(pyfftw.export_wisdom())
        fd, tmp = tempfile.mkstemp(prefix=".wisdom-", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
        os.replace(tmp, path)
        return True
    except Exception:  # noqa: BLE001 - the cache is an optimisation, never an error
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        return False


# --------------------------------------------------------------------------- plans


class _RowPlan:
    """One inverse real transform of length n with its own aligned buffers.

    One per worker thread.  The ``load_*`` methods build a masked spectrum straight into
    the transform's input (FFTW destroys it on every run anyway), :meth:`run` transforms
    it into one output row.

    Even n use the half-length complex trick: the masked spectrum is folded into
    N = n/2 complex values (``_half_*`` kernels) whose backward c2c FFT of length N *is*
    ``x[2m] + 1j * x[2m+1]``, i.e. the float32 output row viewed as complex64.
    FFTW_ESTIMATE plans that c2c transform far better than the c2r one (a 480 000-sample
    row: 0.68 vs 1.0 ms, fold included; 0.58 vs 0.62 ms under FFTW_MEASURE).
    Odd n use a plain c2r plan.
    """

    __slots__ = ("fftw", "half", "scratch", "spec", "twiddles", "wave")

    def __init__(self, n: int, flags: tuple[str, ...], twiddles: tuple | None) -> None:
        self.half = twiddles is not None
        self.twiddles = twiddles
        self.wave = pyfftw.empty_aligned(n, dtype=np.float32)
        if self.half:
            self.spec = pyfftw.empty_aligned(n // 2, dtype=np.complex64)
            self.scratch = np.empty(n // 2 + 1, dtype=np.complex64)
            target = self.wave.view(np.complex64)
        else:
            self.spec = pyfftw.empty_aligned(n // 2 + 1, dtype=np.complex64)
            self.scratch = None
            target = self.wave
        # threads=1: parallelism is across rows (see module docstring)
        self.fftw = pyfftw.FFTW(
            self.spec,
            target,
            direction="FFTW_BACKWARD",
            flags=(*flags, "FFTW_DESTROY_INPUT"),
            threads=1,
        )

    def _scale(self) -> np.float32:
        return np.float32(1.0 / self.wave.shape[0])

    def load_interval(self, X: np.ndarray, lo: int, hi: int) -> None:  # noqa: N803
        if self.half:
            _half_interval(self.spec, X, lo, hi, *self.twiddles)
        else:
            _fill_interval(self.spec, X, lo, hi, self._scale())

    def load_bins(self, X: np.ndarray, idx: np.ndarray) -> None:  # noqa: N803
        if self.half:
            _fill_bins(self.scratch, X, idx, np.float32(1.0))
            _half_full(self.spec, self.scratch, *self.twiddles)
        else:
            _fill_bins(self.spec, X, idx, self._scale())

    def load_ranked(self, X: np.ndarray, rank: np.ndarray, k: int) -> None:  # noqa: N803
        if self.half:
            _fill_ranked(self.scratch, X, rank, k, np.float32(1.0))
            _half_full(self.spec, self.scratch, *self.twiddles)
        else:
            _fill_ranked(self.spec, X, rank, k, self._scale())

    def load_row(self, row: np.ndarray) -> None:
        if self.half:
            _half_full(self.spec, row, *self.twiddles)
        else:
            _fill_scaled(self.spec, row, self._scale())

    def run(self, out_row: np.ndarray) -> None:
        """Transform the loaded spectrum into out_row (float32 [n], contiguous)."""
        target = out_row.view(np.complex64) if self.half else out_row
        if target.ctypes.data % self.fftw.output_alignment == 0:
            self.fftw.update_arrays(self.spec, target)
            self.fftw.execute()
        else:  # caller's row lacks the plan's SIMD alignment: go through our buffer
            self.fftw.update_arrays(self.spec, self.wave.view(target.dtype))
            self.fftw.execute()
            out_row[:] = self.wave


def _half_twiddles(n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Fold weights for even n: Z[k] = A[k] X[k] + B[k] conj(X[N-k]), 1/n scale included."""
    if n % 2:
        return None
    half = n // 2
    rot = 1j * np.exp(2j * np.pi * np.arange(half) / n)
    return (
        ((0.5 / half) * (1 + rot)).astype(np.complex64),
        ((0.5 / half) * (1 - rot)).astype(np.complex64),
    )


class _PlanSet:
    """Per-worker row plans for one signal length; the lock serialises callers."""

    def __init__(self, n: int, workers: int, effort: str | None = None) -> None:
        self.lock = threading.Lock()
        twiddles = _half_twiddles(n)
        self.plans = [_make_row_plan(n, effort, twiddles) for _ in range(workers)]


_cache_lock = threading.Lock()
_plan_cache: OrderedDict[int, _PlanSet] = OrderedDict()
_wisdom_state = {"loaded": False, "dirty": False}
_pool: ThreadPoolExecutor | None = None


def _make_row_plan(n: int, effort: str | None, twiddles: tuple | None) -> _RowPlan:
    if effort is not None:
        return _RowPlan(n, (effort,), twiddles)
    try:  # MEASURE quality for free when wisdom already knows this size
        return _RowPlan(n, ("FFTW_MEASURE", "FFTW_WISDOM_ONLY"), twiddles)
    except RuntimeError:
        return _RowPlan(n, ("FFTW_ESTIMATE",), twiddles)


def _get_plans(n: int) -> _PlanSet:
    with _cache_lock:
        pset = _plan_cache.get(n)
        if pset is not None:
            _plan_cache.move_to_end(n)
            return pset
        if not _wisdom_state["loaded"]:
            _wisdom_state["loaded"] = True
            load_wisdom()
        # implicit plans are ESTIMATE or wisdom hits: nothing new worth saving
        pset = _PlanSet(n, _WORKERS)
        _plan_cache[n] = pset
        while len(_plan_cache) > _PLAN_CACHE_SIZE:
            _plan_cache.popitem(last=False)
        return pset


def prepare_plans(lengths: Sequence[int], effort: str = "FFTW_MEASURE") -> None:
    """Plan the given signal lengths at ``effort`` now and persist the wisdom.

    FFTW_MEASURE costs 0.2 / 1.3 / 5.5 s at n = 16 000 / 160 000 / 480 000 on the 2-core
    dev box, for rows ~1.2x faster than FFTW_ESTIMATE; the wisdom file then gives every
    later process the same plans in a few ms.

    Parameters
    ----------
    lengths : Sequence[int]
        Signal lengths ``n`` to plan.
    effort : str
        FFTW planner flag, e.g. ``"FFTW_MEASURE"`` or ``"FFTW_PATIENT"``.
    """
    with _cache_lock:
        if not _wisdom_state["loaded"]:
            _wisdom_state["loaded"] = True
            load_wisdom()
        for n in lengths:
            _plan_cache[int(n)] = _PlanSet(int(n), _WORKERS, effort)
            _plan_cache.move_to_end(int(n))
            _wisdom_state["dirty"] = True
        while len(_plan_cache) > _PLAN_CACHE_SIZE:
            _plan_cache.popitem(last=False)
    if save_wisdom():
        _wisdom_state["dirty"] = False


@atexit.register
def _save_wisdom_at_exit() -> None:
    # retry a save that failed earlier (e.g. cache dir created later in the run)
    if _wisdom_state["dirty"]:
        save_wisdom()


def _get_pool() -> ThreadPoolExecutor:
    global _pool
    with _cache_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max(1, _WORKERS - 1), thread_name_prefix="freqrex-fft")
        return _pool


def _after_fork_in_child() -> None:
    # Threads do not survive fork(): drop the pool and every lock a parent thread may
    # have held; plans are rebuilt on demand (the in-memory wisdom survives).
    global _pool, _cache_lock
    _pool = None
    _cache_lock = threading.Lock()
    _plan_cache.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# --------------------------------------------------------------------------- driver

RowJob = Callable[[_RowPlan, int], None]


class _Dispenser:
    """Hands out row indices to whichever worker asks first (dynamic scheduling).

    Static striping would make every call wait for the slowest worker; with rows
    pulled on demand, a worker that never gets a core (another process, onnxruntime
    spinning) simply leaves its share to the others.
    """

    def __init__(self, order: Sequence[int]) -> None:
        self._it = iter(order)
        self._lock = threading.Lock()

    def __iter__(self) -> _Dispenser:
        return self

    def __next__(self) -> int:
        with self._lock:
            return next(self._it)

    def close(self) -> None:
        with self._lock:
            self._it = iter(())


def _run_rows(n: int, order: Sequence[int], job: RowJob) -> None:
    """Run job(plan, p) for every row p in ``order`` (most expensive first, ideally)."""
    if len(order) == 0:
        return
    pset = _get_plans(n)
    workers = min(len(pset.plans), len(order))
    if len(order) * n < _POOL_MIN_SAMPLES:
        workers = 1
    rows = _Dispenser(order)

    def drain(w: int) -> None:
        plan = pset.plans[w]
        try:
            for p in rows:
                job(plan, p)
        except BaseException:
            rows.close()  # let the other workers stop early too
            raise

    with pset.lock:
        if workers == 1:
            drain(0)
            return
        pool = _get_pool()
        helpers = [pool.submit(drain, w) for w in range(1, workers)]
        try:
            drain(0)
        finally:
            for fut in helpers:
                # a helper that has not started yet has nothing left to do
                if not fut.cancel():
                    fut.result()


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
    out = _out_array(spectra.shape[0], n, out)

    def job(plan: _RowPlan, p: int) -> None:
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
    out = _out_array(bounds.shape[0], n, out)

    def job(plan: _RowPlan, p: int) -> None:
        a, b = int(lo[p]), int(hi[p])
        if a == b:
            out[p] = 0.0
        elif _synth_is_cheaper(b - a, n):
            _synth_band(X, a, b, n, out[p])
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
    out = _out_array(len(idx), n, out)

    def job(plan: _RowPlan, p: int) -> None:
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
    rank = _ranks(ranking, K)
    out = _out_array(ks.size, n, out)

    def job(plan: _RowPlan, i: int) -> None:
        plan.load_ranked(X, rank, ks[i])
        plan.run(out[i])

    _run_rows(n, range(ks.size), job)
    return out
