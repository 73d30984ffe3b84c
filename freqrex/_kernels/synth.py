"""Numba kernels for mutant synthesis.

Two groups live here:

* public helpers on plain arrays: :func:`combine` (and its two implementations),
  :func:`apply_mask`, :func:`mask_from_bins`;
* per-row kernels for :mod:`freqrex._kernels.fft`, which build one masked, pre-scaled
  spectrum straight into an FFTW input buffer (``fill_*`` for the c2r layout,
  ``half_*`` for the half-length complex layout of even n) or synthesise a narrow band
  directly (:func:`synth_band`), and :func:`ranks`, the one rank kernel behind every
  prefix (FFT bins and STFT cells).  They are ``nogil`` and single-threaded on purpose:
  parallelism comes from the worker pool (:mod:`.pool`), so nesting a Numba ``prange``
  inside would only oversubscribe the cores.

Only the parallel path of :func:`combine` / :func:`combine_numba` starts Numba threads,
and it calls :func:`.pool.prepare_numba` right before (thread cap, passive OpenMP waits).

Every kernel is compiled with ``cache=True`` so the CLI does not pay the JIT on each start.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import pool

__all__ = [
    "apply_mask",
    "combine",
    "combine_blas",
    "combine_numba",
    "fill_bins",
    "fill_interval",
    "fill_ranked",
    "fill_scaled",
    "half_full",
    "half_interval",
    "mask_from_bins",
    "ranks",
    "synth_band",
]

# Samples per block in combine_numba: one block of the output row (16 KiB) plus the
# matching slices of the basis stay in L1/L2 while the P terms are accumulated.
_COMBINE_BLOCK = 4096

# Samples per block in synth_band: the [w, block] cos/sin tables (w <= 16 -> 64 KiB
# each at most) are reused for every block, the block phase is re-anchored exactly.
_SYNTH_BLOCK = 512


# --------------------------------------------------------------------------- combine


def _check_combine(coeffs: np.ndarray, basis: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    if coeffs.ndim != 2 or basis.ndim != 2 or coeffs.shape[1] != basis.shape[0]:
        raise ValueError(
            f"combine: coeffs {coeffs.shape} and basis {basis.shape} are not [M, P] x [P, n]"
        )
    shape = (coeffs.shape[0], basis.shape[1])
    if out is None:
        return np.empty(shape, dtype=np.float32)
    if out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"combine: out must be a C-contiguous float32 array of shape {shape}")
    return out


def combine_blas(
    coeffs: np.ndarray, basis: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """Mutant batch as weighted sums of basis signals, through BLAS (``np.matmul``).

    Parameters
    ----------
    coeffs : np.ndarray
        float32 ``[M, P]`` weights (usually 0/1: which parts a mutant keeps).
    basis : np.ndarray
        float32 ``[P, n]`` per-part signals.
    out : np.ndarray, optional
        float32 ``[M, n]`` C-contiguous destination.

    Returns
    -------
    np.ndarray
        float32 ``[M, n]``, ``coeffs @ basis``.
    """
    coeffs = np.ascontiguousarray(coeffs, dtype=np.float32)
    basis = np.ascontiguousarray(basis, dtype=np.float32)
    out = _check_combine(coeffs, basis, out)
    return np.matmul(coeffs, basis, out=out)


@njit(parallel=True, fastmath=False, cache=True)
def _combine_kernel(coeffs, basis, out):  # pragma: no cover - compiled
    n = basis.shape[1]
    n_blocks = (n + _COMBINE_BLOCK - 1) // _COMBINE_BLOCK
    for b in prange(n_blocks):
        t0 = b * _COMBINE_BLOCK
        _combine_range(coeffs, basis, out, t0, min(n, t0 + _COMBINE_BLOCK))
    return out


@njit(nogil=True, cache=True)
def _combine_range(coeffs, basis, out, t0, t1):  # pragma: no cover - compiled
    """out[:, t0:t1] = coeffs @ basis[:, t0:t1], one cache-sized block at a time."""
    m_rows, p_parts = coeffs.shape
    # A zero weight means "part excluded": skipping it halves the work for typical 0/1
    # masks and keeps excluded parts out of the result exactly.
    live = np.empty(p_parts, dtype=np.int64)
    for b0 in range(t0, t1, _COMBINE_BLOCK):
        b1 = min(t1, b0 + _COMBINE_BLOCK)
        for m in range(m_rows):
            n_live = 0
            for p in range(p_parts):
                if coeffs[m, p] != 0.0:
                    live[n_live] = p
                    n_live += 1
            # 1-D, 0-based views: indexing the 2-D arrays at an offset keeps Numba's
            # negative-index wraparound in the loop and LLVM then will not vectorise
            # it (measured 4x slower).
            dst = out[m][b0:b1]
            if n_live == 0:
                dst[:] = 0.0
            # up to 4 terms per pass: one store per sample per pass instead of one per term
            for j in range(0, n_live, 4):
                _axpy4(coeffs[m], basis, live[j : min(n_live, j + 4)], b0, b1, dst, j > 0)


@njit(nogil=True, cache=True, inline="always")
def _axpy4(c, basis, parts, b0, b1, dst, accumulate):  # pragma: no cover - compiled
    """dst (+)= sum over the 1-4 ``parts`` of c[p] * basis[p, b0:b1].

    Missing terms are padded with weight 0 on the first part (already in cache), which
    adds exact zeros; one loop shape keeps the kernel small and vectorised.
    """
    k = parts.shape[0]
    zero = np.float32(0.0)
    p0 = parts[0]
    p1 = parts[1] if k > 1 else p0
    p2 = parts[2] if k > 2 else p0
    p3 = parts[3] if k > 3 else p0
    c0 = c[p0]
    c1 = c[p1] if k > 1 else zero
    c2 = c[p2] if k > 2 else zero
    c3 = c[p3] if k > 3 else zero
    s0, s1, s2, s3 = basis[p0][b0:b1], basis[p1][b0:b1], basis[p2][b0:b1], basis[p3][b0:b1]
    if accumulate:
        for t in range(dst.shape[0]):
            dst[t] += c0 * s0[t] + c1 * s1[t] + c2 * s2[t] + c3 * s3[t]
    else:
        for t in range(dst.shape[0]):
            dst[t] = c0 * s0[t] + c1 * s1[t] + c2 * s2[t] + c3 * s3[t]


def combine_numba(
    coeffs: np.ndarray, basis: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """Mutant batch as weighted sums of basis signals, Numba-parallel over sample blocks.

    Same contract as :func:`combine_blas`, except that zero weights skip their part
    entirely (so a non-finite excluded part does not poison the mutant).
    """
    coeffs = np.ascontiguousarray(coeffs, dtype=np.float32)
    basis = np.ascontiguousarray(basis, dtype=np.float32)
    out = _check_combine(coeffs, basis, out)
    pool.prepare_numba()
    return _combine_kernel(coeffs, basis, out)


# How combine() picks, measured on the 2-core dev box with M = 16, P = 5 (a split's 16
# mutants), timing interval_parts + combine alternately as the search runs them
# (median us, two quiet runs):
#
#       n      combine_numba   combine_blas   same Numba kernel, serial on the caller
#    16 000        140             122            115-122
#   160 000       1080-1120       1400-1550      1050-1260
#   480 000       3130-3530       5250-6260      3860-4260
#
# Back to back in isolation BLAS looks competitive (1.03 vs 1.00 ms at n = 480 000), but
# OpenBLAS threads spin after each call and hold the core the FFT row pool (and
# onnxruntime) needs next; with another process on the box a BLAS call took 16 ms.
# Below ~1M outputs the OpenMP hand-off (~20 us with passive waiting) is not repaid,
# so the same kernel runs serially on the calling thread there.
_PARALLEL_MIN_OUTPUTS = 1 << 20


def combine(coeffs: np.ndarray, basis: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Mutant batch ``coeffs @ basis`` with the implementation that measured fastest.

    Parameters
    ----------
    coeffs : np.ndarray
        float32 ``[M, P]`` weights (usually 0/1).
    basis : np.ndarray
        float32 ``[P, n]`` per-part signals.
    out : np.ndarray, optional
        float32 ``[M, n]`` C-contiguous destination.

    Returns
    -------
    np.ndarray
        float32 ``[M, n]``; zero weights skip their part as in :func:`combine_numba`.
    """
    coeffs = np.ascontiguousarray(coeffs, dtype=np.float32)
    basis = np.ascontiguousarray(basis, dtype=np.float32)
    out = _check_combine(coeffs, basis, out)
    if out.size < _PARALLEL_MIN_OUTPUTS:
        _combine_range(coeffs, basis, out, 0, out.shape[1])
        return out
    pool.prepare_numba()
    return _combine_kernel(coeffs, basis, out)


# --------------------------------------------------------------------------- masks


def mask_from_bins(bins: np.ndarray, K: int) -> np.ndarray:  # noqa: N803 - K is the bin count
    """Boolean mask of length ``K`` that is True exactly at ``bins``.

    Parameters
    ----------
    bins : np.ndarray
        int64 ``[k]`` bin indices in ``[0, K)`` (duplicates allowed).
    K : int
        Number of rfft bins.

    Returns
    -------
    np.ndarray
        bool ``[K]``.
    """
    bins = np.asarray(bins, dtype=np.int64)
    if bins.size and (bins.min() < 0 or bins.max() >= K):
        raise ValueError(f"mask_from_bins: bins must lie in [0, {K})")
    mask = np.zeros(K, dtype=np.bool_)
    mask[bins] = True
    return mask


def apply_mask(X: np.ndarray, mask: np.ndarray) -> np.ndarray:  # noqa: N803 - X is a spectrum
    """Spectrum with the bins outside ``mask`` set to zero.

    Parameters
    ----------
    X : np.ndarray
        complex64 ``[K]`` spectrum.
    mask : np.ndarray
        bool ``[K]``.

    Returns
    -------
    np.ndarray
        complex64 ``[K]`` (a new array).
    """
    X = np.asarray(X, dtype=np.complex64)
    mask = np.asarray(mask, dtype=np.bool_)
    if X.shape != mask.shape:
        raise ValueError(f"apply_mask: X {X.shape} and mask {mask.shape} differ")
    return np.where(mask, X, np.complex64(0))


# ------------------------------------------------------------- per-row kernels


@njit(nogil=True, cache=True)
def fill_interval(buf, X, lo, hi, scale):  # noqa: N803  # pragma: no cover - compiled
    """buf = scale * X restricted to [lo, hi) (buf is a destroyed c2r input)."""
    buf[:lo] = 0
    dst = buf[lo:hi]
    src = X[lo:hi]
    for k in range(dst.shape[0]):  # 0-based view: see _combine_block
        dst[k] = src[k] * scale
    buf[hi:] = 0


@njit(nogil=True, cache=True)
def fill_bins(buf, X, idx, scale):  # noqa: N803  # pragma: no cover - compiled
    """buf = scale * X restricted to the bins idx (any order, duplicates harmless)."""
    buf[:] = 0
    for j in range(idx.shape[0]):
        k = idx[j]
        buf[k] = X[k] * scale


@njit(nogil=True, cache=True)
def fill_ranked(buf, X, rank, k, scale):  # noqa: N803  # pragma: no cover - compiled
    """buf = scale * X restricted to bins whose rank is < k.

    A streaming compare instead of scattering ranking[:k] keeps the access sequential
    (and vectorisable) however large k is.
    """
    zero = np.complex64(0)
    for j in range(buf.shape[0]):
        buf[j] = X[j] * scale if rank[j] < k else zero


@njit(nogil=True, cache=True)
def fill_scaled(buf, row, scale):  # pragma: no cover - compiled
    """buf = scale * row (full spectrum copy into the plan's own input)."""
    for k in range(buf.shape[0]):
        buf[k] = row[k] * scale


@njit(nogil=True, cache=True)
def half_interval(Z, X, lo, hi, A, B):  # noqa: N803  # pragma: no cover - compiled
    """Fold X restricted to [lo, hi) into the N = n/2 point c2c input Z (even n).

    Z[k] = A[k] X[k] + B[k] conj(X[N-k]); only the interval and its mirror are
    non-zero, so the cost is one zeroing pass plus 2 * width multiply-adds.
    """
    N = Z.shape[0]  # noqa: N806
    Z[:] = 0
    a0 = max(lo, 1)
    a1 = min(hi, N)
    if a1 > a0:
        zs = Z[a0:a1]
        ws = A[a0:a1]
        xs = X[a0:a1]
        for i in range(zs.shape[0]):
            zs[i] = ws[i] * xs[i]
        # mirror terms: bin j in [a0, a1) lands on k = N - j, i.e. k in [N-a1+1, N-a0]
        zb = Z[N - a1 + 1 : N - a0 + 1]
        wb = B[N - a1 + 1 : N - a0 + 1]
        last = zb.shape[0] - 1
        for i in range(zb.shape[0]):
            zb[i] += wb[i] * np.conj(xs[last - i])
    # DC and Nyquist: real parts only, like numpy's irfft
    x0 = X[0].real if lo == 0 and hi > 0 else 0.0
    xn = X[N].real if lo <= N < hi else 0.0
    Z[0] = A[0] * x0 + B[0] * xn


@njit(nogil=True, cache=True)
def half_full(Z, R, A, B):  # noqa: N803  # pragma: no cover - compiled
    """Fold a whole (already masked) spectrum R [N+1] into Z [N]; see half_interval."""
    N = Z.shape[0]  # noqa: N806
    for k in range(1, N):
        Z[k] = A[k] * R[k] + B[k] * np.conj(R[N - k])
    Z[0] = A[0] * R[0].real + B[0] * R[N].real


def ranks(ranking: np.ndarray, size: int, dtype: type = np.int64) -> np.ndarray:
    """First position of every feature in ``ranking``: one array serves every prefix.

    Feature ``c`` is in ``ranking[:k]`` iff ``ranks(...)[c] < k``; absent features get
    ``len(ranking)``.  Used by both the FFT bins and the STFT cells.

    Parameters
    ----------
    ranking : np.ndarray
        int64 ``[R]`` feature indices in ``[0, size)``, most important first.
    size : int
        Number of features.
    dtype : type
        Integer dtype of the result (int32 halves the bytes a streaming kernel reads).

    Returns
    -------
    np.ndarray
        ``[size]`` ranks.
    """
    rank: np.ndarray = np.full(size, ranking.shape[0], dtype=dtype)
    _fill_ranks(ranking, rank)
    return rank


@njit(nogil=True, cache=True)
def _fill_ranks(ranking, rank):  # pragma: no cover - compiled
    """rank[c] = first position of c in ranking: the first occurrence wins, as in
    ``ranking[:k]`` (``rank`` comes filled with ``len(ranking)``, meaning absent)."""
    for j in range(ranking.shape[0] - 1, -1, -1):
        rank[ranking[j]] = j


@njit(nogil=True, cache=True)
def synth_band(X, lo, hi, n, out):  # noqa: N803  # pragma: no cover - compiled
    """out = irfft(X * 1[lo <= k < hi], n) by direct summation of hi - lo cosines.

    The phase of every block is anchored exactly from an integer ``(k * t0) mod n``,
    and inside a block a precomputed table ``exp(2j*pi*k*j/n)`` is reused, so the inner
    loop is two fused multiply-adds per (bin, sample) and vectorises over samples.
    Everything is accumulated in float64.
    """
    w = hi - lo
    blk = min(_SYNTH_BLOCK, n)
    two_pi_n = 2.0 * np.pi / n
    # base[j] = exp(i*2pi*j/n); table row r = exp(i*2pi*(lo+r)*j/n) built by recurrence
    # from an exact first row (w <= 16 steps: the error stays at a few ulp).
    tc = np.empty((w, blk))
    ts = np.empty((w, blk))
    for j in range(blk):
        ph0 = two_pi_n * ((lo * j) % n)
        ph1 = two_pi_n * j
        tc[0, j] = np.cos(ph0)
        ts[0, j] = np.sin(ph0)
        bc = np.cos(ph1)
        bs = np.sin(ph1)
        for r in range(1, w):
            tc[r, j] = tc[r - 1, j] * bc - ts[r - 1, j] * bs
            ts[r, j] = tc[r - 1, j] * bs + ts[r - 1, j] * bc
    # amplitudes: DC and (even n) Nyquist count once and drop their imaginary part,
    # exactly like numpy's irfft; every other bin stands for itself and its mirror.
    ar = np.empty(w)
    ai = np.empty(w)
    for r in range(w):
        k = lo + r
        v = X[k]
        if k == 0 or 2 * k == n:
            ar[r] = v.real / n
            ai[r] = 0.0
        else:
            ar[r] = 2.0 * v.real / n
            ai[r] = 2.0 * v.imag / n
    acc = np.empty(blk)
    for t0 in range(0, n, blk):
        m = min(blk, n - t0)
        # two bins per pass halve the load/store traffic on acc
        for r in range(0, w - 1, 2):
            br0, bi0 = _anchor(ar[r], ai[r], lo + r, t0, n, two_pi_n)
            br1, bi1 = _anchor(ar[r + 1], ai[r + 1], lo + r + 1, t0, n, two_pi_n)
            if r == 0:
                for j in range(m):
                    acc[j] = (br0 * tc[0, j] - bi0 * ts[0, j]) + (br1 * tc[1, j] - bi1 * ts[1, j])
            else:
                for j in range(m):
                    acc[j] += (br0 * tc[r, j] - bi0 * ts[r, j]) + (
                        br1 * tc[r + 1, j] - bi1 * ts[r + 1, j]
                    )
        if w % 2 == 1:
            r = w - 1
            br0, bi0 = _anchor(ar[r], ai[r], lo + r, t0, n, two_pi_n)
            if r == 0:
                for j in range(m):
                    acc[j] = br0 * tc[r, j] - bi0 * ts[r, j]
            else:
                for j in range(m):
                    acc[j] += br0 * tc[r, j] - bi0 * ts[r, j]
        dst = out[t0 : t0 + m]
        for j in range(m):
            dst[j] = acc[j]


@njit(nogil=True, cache=True, inline="always")
def _anchor(ar, ai, k, t0, n, two_pi_n):  # pragma: no cover - compiled
    """Complex amplitude (ar + i ai) rotated by the exact phase 2*pi*((k*t0) mod n)/n."""
    ph = two_pi_n * ((k * t0) % n)
    c = np.cos(ph)
    s = np.sin(ph)
    return ar * c - ai * s, ar * s + ai * c
