"""One inverse real FFT row: its pyFFTW plan, aligned buffers and input kernels.

Each worker thread owns one :class:`RowPlan` per signal length (a :class:`PlanSet`, kept
in the plan cache of :mod:`.pool`); :mod:`.fft` hands rows out to them.  Plans are
FFTW_ESTIMATE, made as in a fresh process (:mod:`.planner`), so a row's bits never
depend on what FFTW planned before.
"""

from __future__ import annotations

import threading

import numpy as np
import pyfftw

from . import pool
from .planner import estimate_plan
from .synth import fill_bins, fill_interval, fill_ranked, fill_scaled, half_full, half_interval

__all__ = ["PlanSet", "RowPlan", "get_plans", "half_twiddles"]


class RowPlan:
    """One inverse real transform of length n with its own aligned buffers.

    One per worker thread.  The ``load_*`` methods build a masked spectrum straight into
    the transform's input (FFTW destroys it on every run anyway), :meth:`run` transforms
    it into one output row.

    Even n use the half-length complex trick: the masked spectrum is folded into
    N = n/2 complex values (``_half_*`` kernels) whose backward c2c FFT of length N *is*
    ``x[2m] + 1j * x[2m+1]``, i.e. the float32 output row viewed as complex64.
    FFTW_ESTIMATE plans that c2c transform far better than the c2r one (a 480 000-sample
    row: 0.68 vs 1.0 ms, fold included).
    Odd n use a plain c2r plan.
    """

    __slots__ = ("fftw", "half", "scratch", "spec", "twiddles", "wave")

    def __init__(self, n: int, twiddles: tuple | None) -> None:
        self.half = twiddles is not None
        self.twiddles: tuple[np.ndarray, ...] = twiddles or ()
        self.wave = pyfftw.empty_aligned(n, dtype=np.float32)
        self.scratch: np.ndarray = np.empty(0, dtype=np.complex64)  # c2r: unused
        if self.half:
            self.spec = pyfftw.empty_aligned(n // 2, dtype=np.complex64)
            self.scratch = np.empty(n // 2 + 1, dtype=np.complex64)
            target = self.wave.view(np.complex64)
        else:
            self.spec = pyfftw.empty_aligned(n // 2 + 1, dtype=np.complex64)
            target = self.wave
        # threads=1: parallelism is across rows (see module docstring)
        self.fftw = estimate_plan(self.spec, target, direction="FFTW_BACKWARD",
                                  flags=("FFTW_DESTROY_INPUT",), threads=1)

    def _scale(self) -> np.float32:
        return np.float32(1.0 / self.wave.shape[0])

    def load_interval(self, X: np.ndarray, lo: int, hi: int) -> None:  # noqa: N803
        if self.half:
            half_interval(self.spec, X, lo, hi, *self.twiddles)
        else:
            fill_interval(self.spec, X, lo, hi, self._scale())

    def load_bins(self, X: np.ndarray, idx: np.ndarray) -> None:  # noqa: N803
        if self.half:
            fill_bins(self.scratch, X, idx, np.float32(1.0))
            half_full(self.spec, self.scratch, *self.twiddles)
        else:
            fill_bins(self.spec, X, idx, self._scale())

    def load_ranked(self, X: np.ndarray, rank: np.ndarray, k: int) -> None:  # noqa: N803
        if self.half:
            fill_ranked(self.scratch, X, rank, k, np.float32(1.0))
            half_full(self.spec, self.scratch, *self.twiddles)
        else:
            fill_ranked(self.spec, X, rank, k, self._scale())

    def load_row(self, row: np.ndarray) -> None:
        if self.half:
            half_full(self.spec, row, *self.twiddles)
        else:
            fill_scaled(self.spec, row, self._scale())

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


def half_twiddles(n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Fold weights for even n: Z[k] = A[k] X[k] + B[k] conj(X[N-k]), 1/n scale included."""
    if n % 2:
        return None
    half = n // 2
    rot = 1j * np.exp(2j * np.pi * np.arange(half) / n)
    return (
        ((0.5 / half) * (1 + rot)).astype(np.complex64),
        ((0.5 / half) * (1 - rot)).astype(np.complex64),
    )


class PlanSet:
    """Per-worker row plans for one signal length; the lock serialises callers."""

    def __init__(self, n: int, workers: int) -> None:
        self.lock = threading.Lock()
        twiddles = half_twiddles(n)
        self.plans = [RowPlan(n, twiddles) for _ in range(workers)]


def get_plans(n: int) -> PlanSet:
    return pool.plan(("fft", n), lambda: PlanSet(n, pool.threads()))
