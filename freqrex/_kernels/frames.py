"""The machinery of the inverse STFT (:mod:`freqrex._kernels.stft`): one worker's
buffers and batch plans, and the Numba kernels that gather a work unit's live frames
into a batch FFT input, then window, overlap-add and normalise them.

The kernels are ``nogil`` and single-threaded: parallelism is across work units, on the
worker pool.  :mod:`.stft` imports this module (so pyfftw and numba) on first use.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyfftw
from numba import njit

from .planner import estimate_plan

__all__ = ["Worker", "fill_box", "fill_keyed", "overlap_add"]


@njit(nogil=True, cache=True)
def fill_box(coefficients, f0, f1, ta, tb, spec, live):  # pragma: no cover - compiled
    """spec[k] = column ``ta + k`` of the coefficients restricted to rows [f0, f1).

    Rows of ``spec`` beyond ``tb - ta`` up to the next plan size are zeroed too (they
    are transformed but never used, and must not hold NaN from an earlier unit).
    Returns the number of live frames, listed in ``live``.
    """
    m = tb - ta
    rows = spec.shape[0]
    for k in range(m):
        live[k] = ta + k
    for k in range(rows):
        spec[k, :f0] = 0
        spec[k, f1:] = 0
    for k in range(m, rows):
        spec[k, f0:f1] = 0
    # row-major coefficients: walk each row's run of frames (contiguous reads) and
    # scatter into the L1/L2-resident spec columns
    for f in range(f0, f1):
        src = coefficients[f][ta:tb]
        for k in range(m):
            spec[k, f] = src[k]
    return m


@njit(nogil=True, cache=True)
def fill_keyed(coefficients, key, column_min, kth, ta, tb, spec, live):  # pragma: no cover
    """Gather the cells with ``key < kth`` of the live frames in [ta, tb) into ``spec``.

    ``key`` is ``[F, T]`` (a set's 0/1 exclusion mask, or a ranking's rank per cell) and
    ``column_min[t]`` its minimum over frame ``t``: a frame is live iff that is ``< kth``.
    Rows of ``spec`` beyond the live count are zeroed (see :func:`fill_box`).
    Returns the number of live frames, listed in ``live``.
    """
    m = 0
    for t in range(ta, tb):
        if column_min[t] < kth:
            live[m] = t
            m += 1
    rows = spec.shape[0]
    for k in range(m, rows):
        spec[k, :] = 0
    n_rows = coefficients.shape[0]
    for f in range(n_rows):
        src = coefficients[f]
        keep = key[f]
        for k in range(m):
            t = live[k]
            spec[k, f] = src[t] if keep[t] < kth else 0
    return m


@njit(nogil=True, cache=True)
def overlap_add(  # pragma: no cover - compiled
    frames, live, m, win, inv_wss, out_row, s0, s1, hop, pad, acc
):
    """out_row[s0:s1] = inv_wss * sum over the m live frames of win * frame.

    The sum is accumulated in ``acc`` (the frames' dtype) and written once, so the
    output row is touched exactly once per sample.
    Frame ``live[k]`` starts at sample ``live[k] * hop - pad``.  Every loop runs on
    0-based 1-D views: Numba keeps negative-index wraparound on offset 2-D indexing,
    which stops LLVM from vectorising it.
    """
    length = s1 - s0
    dst = out_row[s0:s1]
    if m == 0:
        dst[:] = 0
        return
    a = acc[:length]
    a[:] = 0.0
    n_fft = frames.shape[1]
    for k in range(m):
        start = live[k] * hop - pad
        lo = max(start, s0)
        hi = min(start + n_fft, s1)
        if hi <= lo:
            continue
        seg = a[lo - s0:hi - s0]
        wv = win[lo - start:hi - start]
        fv = frames[k][lo - start:hi - start]
        for i in range(seg.shape[0]):
            seg[i] += wv[i] * fv[i]
    inv = inv_wss[s0:s1]
    for i in range(length):
        dst[i] = a[i] * inv[i]


class Worker:
    """One thread's buffers and batch c2r plans for one ``n_fft``.

    ``spec`` is destroyed by every transform (FFTW_DESTROY_INPUT), which is fine: each
    unit refills it.  Plans are made lazily (pyFFTW serialises planning globally).
    """

    def __init__(self, n_fft: int, capacity: int, dtype: np.dtype) -> None:
        complex_dtype = np.result_type(dtype, np.complex64)
        self.spec = pyfftw.empty_aligned((capacity, n_fft // 2 + 1), dtype=complex_dtype)
        self.frames = pyfftw.empty_aligned((capacity, n_fft), dtype=dtype)
        self.live = np.empty(capacity, dtype=np.int64)
        self.acc = np.empty(0, dtype=dtype)
        self.plans: dict[int, Any] = {}  # rows -> pyfftw.FFTW

    def plan(self, rows: int) -> Any:
        """The batch plan transforming the first ``rows`` spectra into frames."""
        plan = self.plans.get(rows)
        if plan is None:
            plan = estimate_plan(
                self.spec[:rows],
                self.frames[:rows],
                axes=(1,),
                direction="FFTW_BACKWARD",
                flags=("FFTW_DESTROY_INPUT",),
                threads=1,  # parallelism is across units
            )
            self.plans[rows] = plan
        return plan

    def scratch(self, length: int) -> np.ndarray:
        """An accumulator of at least ``length`` samples in the frames' dtype."""
        if self.acc.shape[0] < length:
            self.acc = np.empty(length, dtype=self.acc.dtype)
        return self.acc
