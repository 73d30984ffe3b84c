"""Mutant synthesis throughput: one 16-mutant batch of a split, five ways.

The split is the search's typical step: a static context plus 4 children (5 parts); the
16 mutants keep the context and one subset of the children each (0/1 coefficients).

    naive    per-mutant ``numpy.fft.irfft(X * mask_i)`` loop (the baseline)
    batched  16 masked complex64 spectra, one ``irfft_batch``
    basis    ``interval_parts`` for the 5 parts + ``combine_blas``
    basis_nb ``interval_parts`` for the 5 parts + ``combine_numba``
    chosen   ``interval_parts`` + ``combine`` (the dispatcher the search uses)
    floor    ``np.copyto`` of one basis row into the [16, n] output (memory bound)

The basis methods pass ``out=`` buffers (what a caller looping over splits should do).
Run ``pytest bench/test_bench_kernels.py --benchmark-only``; ``bench/conftest.py`` prints
mutants/s per method and the ratio against the naive loop of the same run.  The row
plans are FFTW_ESTIMATE, as in every explanation (``freqrex/_kernels/planner.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pytest

from freqrex._kernels import (
    combine,
    combine_blas,
    combine_numba,
    interval_parts,
    irfft_batch,
)

LENGTHS = (16_000, 160_000, 480_000)
MUTANTS = 16
CHILDREN = 4


class Split:
    """A clip, its spectrum and one split's 5 parts / 16 mutants, precomputed."""

    def __init__(self, n: int) -> None:
        rng = np.random.default_rng(n)
        t = np.arange(n) / 16_000.0
        # audio-like: a few tones over noise, so no bin is exactly zero
        x = 0.05 * rng.standard_normal(n)
        for f0 in (220.0, 440.0, 1234.5, 3000.0):
            x += np.sin(2 * np.pi * f0 * t)
        self.n = n
        self.x = x.astype(np.float32)
        self.X = np.fft.rfft(self.x.astype(np.float64))  # complex128, as the caller has it
        self.X64 = self.X.astype(np.complex64)
        k = n // 2 + 1
        # context = [0, k/8) kept fixed; the parent [k/8, k/2) is cut into 4 children
        edges = np.linspace(k // 8, k // 2, CHILDREN + 1).astype(np.int64)
        self.bounds = np.array(
            [[0, k // 8]] + [[edges[i], edges[i + 1]] for i in range(CHILDREN)], dtype=np.int64
        )
        subsets = (np.arange(MUTANTS)[:, None] >> np.arange(CHILDREN)) & 1
        self.coeffs = np.hstack([np.ones((MUTANTS, 1)), subsets]).astype(np.float32)
        self.masks = np.zeros((MUTANTS, k), dtype=np.float32)
        for i in range(MUTANTS):
            for p, (lo, hi) in enumerate(self.bounds):
                if self.coeffs[i, p]:
                    self.masks[i, lo:hi] = 1.0
        self.out = np.empty((MUTANTS, n), dtype=np.float32)
        self.basis = np.empty((len(self.bounds), n), dtype=np.float32)
        self.spectra = np.empty((MUTANTS, k), dtype=np.complex64)


def naive(s: Split) -> list[np.ndarray]:
    return [np.fft.irfft(s.X * s.masks[i], s.n) for i in range(MUTANTS)]


def batched(s: Split) -> np.ndarray:
    np.multiply(s.X64, s.masks, out=s.spectra)
    return irfft_batch(s.spectra, s.n, out=s.out)


def basis_with(comb: Callable[..., np.ndarray]) -> Callable[[Split], np.ndarray]:
    def run(s: Split) -> np.ndarray:
        return comb(s.coeffs, interval_parts(s.X64, s.bounds, s.n, out=s.basis), s.out)

    return run


def floor(s: Split) -> np.ndarray:
    np.copyto(s.out, s.x)
    return s.out


METHODS: dict[str, Callable[[Split], object]] = {
    "naive": naive,
    "batched": batched,
    "basis": basis_with(combine_blas),
    "basis_nb": basis_with(combine_numba),
    "chosen": basis_with(combine),
    "floor": floor,
}


def _check(method: str, s: Split, result: object) -> None:
    """The fast paths must produce the naive mutants (float32 tolerance)."""
    if method in ("naive", "floor"):
        return
    ref = np.stack(naive(s))
    np.testing.assert_allclose(result, ref, rtol=0, atol=1e-5 * np.abs(ref).max())


@pytest.mark.parametrize(
    "n",
    [pytest.param(n, marks=pytest.mark.benchmark(group=f"synth-n{n}")) for n in LENGTHS],
    ids=lambda n: f"n{n}",
)
@pytest.mark.parametrize("method", list(METHODS))
def test_synth_throughput(benchmark, record_synth, method: str, n: int) -> None:
    s = Split(n)
    fn = METHODS[method]
    _check(method, s, fn(s))  # also warms plans and JIT outside the timing
    benchmark(fn, s)
    record_synth(benchmark, n, method, MUTANTS)


# ----------------------------------------------------------------- short clips' path


def _median_seconds(fn: Callable[[], object], repeats: int = 30) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


@pytest.mark.parametrize("n", [512, 1024, 2048, 4096, 8192, 16_000, 64_000], ids=lambda n: f"n{n}")
def test_short_clips_numpy_against_fftw_rows(benchmark, monkeypatch, n: int) -> None:
    """32 bin-set rows (the minimisation's batches) in one numpy call against FFTW plans
    run row by row, in the same run: the reason for ``_NUMPY_MAX_N`` (4 096)."""
    from freqrex._kernels import bin_set_parts
    from freqrex._kernels import fft as kfft

    threshold = kfft._NUMPY_MAX_N   # before the paths are forced below
    rng = np.random.default_rng(n)
    k = n // 2 + 1
    spectrum = (rng.standard_normal(k) + 1j * rng.standard_normal(k)).astype(np.complex64)
    sets = [rng.choice(k, int(rng.integers(1, k)), replace=False) for _ in range(32)]
    monkeypatch.setattr(kfft, "_NUMPY_MAX_N", 1 << 30)
    via_numpy = bin_set_parts(spectrum, sets, n)
    numpy_s = _median_seconds(lambda: bin_set_parts(spectrum, sets, n))
    monkeypatch.setattr(kfft, "_NUMPY_MAX_N", 0)
    via_fftw = bin_set_parts(spectrum, sets, n)
    fftw_s = _median_seconds(lambda: bin_set_parts(spectrum, sets, n))
    np.testing.assert_allclose(via_numpy, via_fftw, rtol=0, atol=1e-5 * np.abs(via_fftw).max())
    benchmark.extra_info.update(numpy_ms=numpy_s * 1e3, fftw_ms=fftw_s * 1e3,
                                fftw_over_numpy=fftw_s / numpy_s)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)  # the numbers are in extra_info
    chosen = "numpy" if n <= threshold else "fftw"
    print(f"\nn = {n}: 32 bin-set rows numpy {numpy_s * 1e3:.2f} ms, FFTW rows "
          f"{fftw_s * 1e3:.2f} ms ({fftw_s / numpy_s:.1f}x); freqrex uses {chosen}")
