"""STFT part synthesis throughput: one split's per-part signals, fast kernels vs naive.

The split is the responsibility search's typical STFT step at the default geometry
(``n_fft = 512``, ``hop = 128``): the root rectangle cut into 4 quadrants at an
off-centre point, plus a small deep box (12 rows x 24 frames), 5 parts in all.  A
second case is a node's context, a union of 3 rectangles, which the search inverts
through ``istft_sets``.

    naive   the original numpy implementation: a full masked ``[P, F, T]`` coefficient
            array, every frame inverse-transformed and overlap-added (the baseline)
    fast    ``istft_boxes`` / ``istft_sets``

Run ``.venv/bin/python -m pytest bench/test_bench_stft.py --benchmark-only``.  Each
benchmark stores ``parts_per_s`` (median round) in ``extra_info``, the fast one also
``speedup_vs_naive``; a table of both is written when the module's benchmarks finish.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from freqrex._kernels import stft as kstft

LENGTHS = (160_000, 480_000)
N_FFT, HOP = 512, 128


# ------------------------------------------------------------ the naive baseline (reference)


def _naive_batch(coefficients: np.ndarray, n: int) -> np.ndarray:
    """Inverse STFT of ``[P, F, T]``, exactly as the original numpy implementation."""
    p, _, t = coefficients.shape
    w = kstft.window(N_FFT)
    frames = np.fft.irfft(coefficients, N_FFT, axis=1) * w[None, :, None]
    padded = (kstft.n_frames(n, HOP) - 1) * HOP + N_FFT
    out = np.zeros((p, padded))
    wss = np.zeros(padded)
    for i in range(t):
        out[:, i * HOP:i * HOP + N_FFT] += frames[:, :, i]
        wss[i * HOP:i * HOP + N_FFT] += w**2
    pad = N_FFT // 2
    return (out[:, pad:pad + n] / wss[pad:pad + n]).astype(np.float32)


def naive_boxes(z: np.ndarray, bounds: np.ndarray, n: int) -> np.ndarray:
    masked = np.zeros((len(bounds),) + z.shape, dtype=np.complex128)
    for row, (f0, f1, t0, t1) in enumerate(bounds):
        masked[row, f0:f1, t0:t1] = z[f0:f1, t0:t1]
    return _naive_batch(masked, n)


def naive_sets(z: np.ndarray, sets: list[np.ndarray], n: int) -> np.ndarray:
    masked = np.zeros((len(sets),) + z.shape, dtype=np.complex128)
    flat = masked.reshape(len(sets), -1)
    for row, idx in enumerate(sets):
        flat[row, idx] = z.ravel()[idx]
    return _naive_batch(masked, n)


# ------------------------------------------------------------------------------ cases


class Case:
    """A clip's complex64 STFT, one split's 5 boxes and one 3-box context set."""

    def __init__(self, n: int) -> None:
        rng = np.random.default_rng(n)
        t = np.arange(n) / 16_000.0
        x = 0.05 * rng.standard_normal(n)  # audio-like: tones over noise
        for f0 in (220.0, 440.0, 1234.5, 3000.0):
            x += np.sin(2 * np.pi * f0 * t)
        self.n = n
        self.z = kstft.stft(x.astype(np.float32), N_FFT, HOP).astype(np.complex64)
        rows, frames = self.z.shape
        f, c = int(rows * 0.37), int(frames * 0.55)
        self.bounds = np.array(
            [[0, f, 0, c], [0, f, c, frames], [f, rows, 0, c], [f, rows, c, frames],
             [f + 20, f + 32, c + 100, c + 124]], dtype=np.int64)
        context = self.bounds[[0, 1, 3]]  # what stays when quadrant 2 is refined
        self.sets = [np.concatenate([
            (np.arange(f0, f1)[:, None] * frames + np.arange(t0, t1)[None, :]).ravel()
            for f0, f1, t0, t1 in context])]


METHODS: dict[tuple[str, str], Callable[[Case], np.ndarray]] = {
    ("split", "naive"): lambda c: naive_boxes(c.z, c.bounds, c.n),
    ("split", "fast"): lambda c: kstft.istft_boxes(c.z, c.bounds, N_FFT, HOP, c.n),
    ("context", "naive"): lambda c: naive_sets(c.z, c.sets, c.n),
    ("context", "fast"): lambda c: kstft.istft_sets(c.z, c.sets, N_FFT, HOP, c.n),
}


@pytest.fixture(scope="module")
def cases() -> dict[int, Case]:
    return {}


@pytest.fixture(scope="module")
def rates(request: pytest.FixtureRequest) -> Iterator[dict[tuple[int, str, str], float]]:
    """parts/s per (n, case, method); the table is written once the module is done."""
    table: dict[tuple[int, str, str], float] = {}
    yield table
    plugins = request.config.pluginmanager
    reporter = plugins.get_plugin("terminalreporter")
    if not table or reporter is None:
        return
    capture = plugins.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        _write_table(reporter, table)


def _write_table(reporter, table: dict[tuple[int, str, str], float]) -> None:
    reporter.write_line("")
    reporter.write_line("STFT part synthesis (median round, n_fft=512, hop=128)")
    reporter.write_line(f"{'n':>8}  {'case':<8} {'naive parts/s':>14} {'fast parts/s':>13} "
                        f"{'x naive':>8}")
    for n, case in sorted({(n, c) for n, c, _ in table}):
        slow, fast = table.get((n, case, "naive")), table.get((n, case, "fast"))
        ratio = f"{fast / slow:8.1f}" if slow and fast else f"{'-':>8}"
        reporter.write_line(f"{n:>8}  {case:<8} {slow or 0:>14,.1f} {fast or 0:>13,.1f} {ratio}")


@pytest.mark.parametrize("n", LENGTHS, ids=lambda n: f"n{n}")
@pytest.mark.parametrize("case", ["split", "context"])
@pytest.mark.parametrize("method", ["naive", "fast"])  # naive first: fast reports the ratio
def test_stft_parts(benchmark, cases, rates, method: str, case: str, n: int) -> None:
    benchmark.group = f"stft-{case}-n{n}"
    c = cases.setdefault(n, Case(n))
    fn = METHODS[(case, method)]
    got = fn(c)  # warms the JIT cache load and the FFTW plans outside the timing
    if method == "fast":  # make sure the fast path computes what the baseline does
        ref = METHODS[(case, "naive")](c)
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5 * float(np.abs(ref).max()))
    benchmark(fn, c)
    stats = getattr(benchmark, "stats", None)
    if stats is None:  # --benchmark-disable: ran once, nothing timed
        return
    parts = len(c.bounds) if case == "split" else len(c.sets)
    rate = parts / stats.stats.median
    benchmark.extra_info["parts_per_s"] = rate
    rates[(n, case, method)] = rate
    slow = rates.get((n, case, "naive"))
    if method == "fast" and slow:
        benchmark.extra_info["speedup_vs_naive"] = rate / slow
