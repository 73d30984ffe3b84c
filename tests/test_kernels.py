"""Property tests: every fast kernel against the plain numpy reference.

The reference for a bin set S is ``np.fft.irfft(X * 1_S, n)`` computed in float64 from
the same complex64 spectrum, so the only differences left are the kernels' own float32
rounding.  A float32 FFT of length n commits a relative error of about
``eps32 * log2(n)`` of the signal scale; we allow 16x that, relative to the reference's
own peak (a masked part is computed from its own bins only, so its error scales with
it, not with the whole clip).
"""

from __future__ import annotations

import math
import os

import numpy as np
import pyfftw
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import freqrex._kernels as kern
from freqrex._kernels import fft as kfft
from freqrex._kernels import pool as kpool
from freqrex._kernels import rows as krows
from freqrex._kernels import synth as ksynth

EPS32 = float(np.finfo(np.float32).eps)
PROPS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


# --------------------------------------------------------------------------- helpers


def spectrum(seed: int, n: int, scale: float = 1.0) -> np.ndarray:
    """complex64 rfft of a random float32 clip of length n, peak amplitude ~scale."""
    rng = np.random.default_rng(seed)
    x = (scale * rng.standard_normal(n)).astype(np.float32)
    return kern.rfft(x).astype(np.complex64)


def reference(X: np.ndarray, bins: np.ndarray, n: int) -> np.ndarray:  # noqa: N803
    mask = np.zeros(X.shape[0])
    mask[bins] = 1.0
    return np.fft.irfft(X.astype(np.complex128) * mask, n)


def fft_tol(ref: np.ndarray, n: int) -> float:
    """Absolute tolerance for a float32 inverse FFT result (see module docstring)."""
    peak = float(np.abs(ref).max()) if ref.size else 0.0
    return 16.0 * EPS32 * max(1.0, math.log2(max(n, 2))) * peak


def assert_rows_match(got: np.ndarray, X: np.ndarray, sets: list, n: int) -> None:  # noqa: N803
    assert got.dtype == np.float32
    assert got.shape == (len(sets), n)
    for row, bins in zip(got, sets, strict=True):
        ref = reference(X, bins, n)
        np.testing.assert_allclose(row, ref, rtol=0, atol=fft_tol(ref, n))


@st.composite
def clip_and_intervals(draw, max_n: int = 4096, max_rows: int = 6):
    """(seed, n, scale, bounds) with edge intervals mixed in with random ones."""
    n = draw(st.integers(1, max_n))
    k = n // 2 + 1
    rows = []
    for _ in range(draw(st.integers(1, max_rows))):
        kind = draw(st.sampled_from(["random", "narrow", "width1", "full", "first", "last"]))
        if kind == "full":
            rows.append((0, k))
        elif kind == "first":
            rows.append((0, draw(st.integers(0, k))))
        elif kind == "last":
            rows.append((draw(st.integers(0, k)), k))
        else:
            width = {"width1": 1, "narrow": draw(st.integers(0, 16))}.get(kind)
            if width is None:
                lo, hi = sorted(draw(st.lists(st.integers(0, k), min_size=2, max_size=2)))
            else:
                width = min(width, k)
                lo = draw(st.integers(0, k - width))
                hi = lo + width
            rows.append((lo, hi))
    seed = draw(st.integers(0, 2**32 - 1))
    scale = draw(st.sampled_from([1e-6, 1.0, 1e4]))
    return seed, n, scale, np.array(rows, dtype=np.int64)


@pytest.fixture(params=["auto", "fft", "synth"])
def band_path(request, monkeypatch):
    """Force interval_parts' narrow-band choice so both paths see every input."""
    if request.param != "auto":
        forced = request.param == "synth"
        monkeypatch.setattr(kfft, "_synth_is_cheaper", lambda w, n: forced and w <= 16)
    return request.param


@pytest.fixture(params=["serial", "pool", "numpy"])
def row_pool(request, monkeypatch):
    """Run rows through FFTW plans on the caller only, or always through the worker pool,
    or (short clips' path) in one batched numpy transform."""
    if request.param != "numpy":
        monkeypatch.setattr(kfft, "_NUMPY_MAX_N", 0)
    monkeypatch.setattr(kfft, "_POOL_MIN_SAMPLES", 1 << 62 if request.param == "serial" else 0)
    return request.param


# --------------------------------------------------------------------------- interval_parts


@PROPS
@given(case=clip_and_intervals())
@example(case=(1, 7, 1.0, np.array([[0, 1], [3, 4], [0, 4], [2, 2]])))
@example(case=(2, 8, 1.0, np.array([[0, 1], [4, 5], [0, 5]])))
def test_interval_parts_matches_numpy(case, band_path, row_pool):
    seed, n, scale, bounds = case
    X = spectrum(seed, n, scale)
    got = kern.interval_parts(X, bounds, n)
    assert_rows_match(got, X, [np.arange(lo, hi) for lo, hi in bounds], n)


@PROPS
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 4096), cuts=st.data())
def test_interval_partition_sums_to_clip(seed, n, cuts, row_pool):
    k = n // 2 + 1
    inner = cuts.draw(st.lists(st.integers(1, max(1, k - 1)), max_size=12, unique=True))
    edges = np.array(sorted({0, k, *[c for c in inner if 0 < c < k]}), dtype=np.int64)
    bounds = np.stack([edges[:-1], edges[1:]], axis=1)
    x = (np.random.default_rng(seed).standard_normal(n)).astype(np.float32)
    X = kern.rfft(x).astype(np.complex64)
    total = kern.interval_parts(X, bounds, n).sum(axis=0, dtype=np.float64)
    # per-part FFT error adds up over the parts, plus X's own complex64 rounding
    tol = len(bounds) * fft_tol(x, n) + 8 * EPS32 * float(np.abs(x).max())
    np.testing.assert_allclose(total, x, rtol=0, atol=tol)


@pytest.mark.parametrize("n", [480_000, 160_001])
def test_interval_parts_large(n):
    k = n // 2 + 1
    X = spectrum(n, n)
    bounds = np.array([[0, 1], [k - 1, k], [1000, 1003], [1003, 1011], [0, k // 3], [k // 3, k]])
    got = kern.interval_parts(X, bounds, n)
    assert_rows_match(got, X, [np.arange(lo, hi) for lo, hi in bounds], n)


def test_parts_write_into_out(row_pool):
    n, k = 4000, 2001
    X = spectrum(5, n)
    bounds = np.array([[0, 7], [7, 900], [900, k]])
    sets = [np.arange(0, k, 3), np.array([0, k - 1])]
    ranking = np.random.default_rng(5).permutation(k)
    ks = np.array([1, 50, k])
    for make, rows, ref_sets in [
        (
            lambda o: kern.interval_parts(X, bounds, n, out=o),
            3,
            [np.arange(a, b) for a, b in bounds],
        ),
        (lambda o: kern.bin_set_parts(X, sets, n, out=o), 2, sets),
        (lambda o: kern.prefix_parts(X, ranking, ks, n, out=o), 3, [ranking[:j] for j in ks]),
    ]:
        out = np.full((rows, n), np.nan, np.float32)
        assert make(out) is out
        assert_rows_match(out, X, ref_sets, n)
        with pytest.raises(ValueError):
            make(np.empty((rows, n), np.float64))


def test_interval_parts_rejects_bad_bounds():
    X = spectrum(0, 64)
    with pytest.raises(ValueError):
        kern.interval_parts(X, np.array([[5, 4]]), 64)
    with pytest.raises(ValueError):
        kern.interval_parts(X, np.array([[0, 34]]), 64)
    with pytest.raises(ValueError):
        kern.interval_parts(X, np.array([[0, 1]]), 80)  # K does not match n


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_usable_after_fork():
    n = 48_000  # large enough for the worker pool
    X = spectrum(11, n)
    bounds = np.array([[0, 5000], [5000, 24_001], [3, 4]])
    kern.interval_parts(X, bounds, n)  # the parent now has a pool and plans
    pid = os.fork()
    if pid == 0:  # child: must neither hang nor fail
        ok = False
        try:
            got = kern.interval_parts(X, bounds, n)
            ok = all(
                np.abs(row - reference(X, np.arange(a, b), n)).max() <= 1e-4
                for row, (a, b) in zip(got, bounds, strict=True)
            )
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


# --------------------------------------------------------------------------- bin sets


@PROPS
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 4096),
    densities=st.lists(st.sampled_from([0.0, 0.001, 0.05, 0.5, 1.0]), min_size=1, max_size=5),
)
def test_bin_set_parts_matches_numpy(seed, n, densities, row_pool):
    rng = np.random.default_rng(seed)
    k = n // 2 + 1
    X = spectrum(seed, n)
    sets = []
    for d in densities:
        bins = np.flatnonzero(rng.random(k) < d)
        rng.shuffle(bins)
        if bins.size:  # duplicates must be harmless
            bins = np.concatenate([bins, bins[:3]])
        sets.append(bins.astype(np.int64))
    assert_rows_match(kern.bin_set_parts(X, sets, n), X, sets, n)


@PROPS
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 4096), data=st.data())
def test_prefix_parts_matches_numpy(seed, n, data, row_pool):
    rng = np.random.default_rng(seed)
    k = n // 2 + 1
    X = spectrum(seed, n)
    full = data.draw(st.booleans())
    ranking = rng.permutation(k) if full else rng.permutation(k)[: rng.integers(0, k + 1)]
    r = ranking.size
    ks = np.array(
        data.draw(st.lists(st.integers(0, r), min_size=1, max_size=6)) + [0, r], dtype=np.int64
    )
    got = kern.prefix_parts(X, ranking, ks, n)
    assert_rows_match(got, X, [ranking[:kk] for kk in ks], n)


@pytest.mark.parametrize("n", [512, 2049, 4096])
def test_short_clips_rows_do_not_depend_on_the_rows_beside_them(n):
    # one numpy call transforms all the rows: each must be what it is alone, bit for bit,
    # or the batch size would change a score
    rng = np.random.default_rng(n)
    k = n // 2 + 1
    X = spectrum(n, n)
    sets = [rng.choice(k, rng.integers(1, k), replace=False) for _ in range(9)]
    ranking = rng.permutation(k)
    ks = rng.integers(0, k + 1, size=9)
    bounds = np.sort(rng.integers(0, k + 1, size=(9, 2)), axis=1)
    for make, rows in ((lambda r: kern.bin_set_parts(X, [sets[i] for i in r], n), sets),
                       (lambda r: kern.prefix_parts(X, ranking, ks[r], n), ks),
                       (lambda r: kern.interval_parts(X, bounds[r], n), bounds)):
        together = make(list(range(len(rows))))
        for i in range(len(rows)):
            np.testing.assert_array_equal(make([i]), together[i:i + 1])
        np.testing.assert_array_equal(make([2, 5, 7]), together[[2, 5, 7]])


# --------------------------------------------------------------------------- irfft_batch


def test_irfft_batch_plan_reuse_and_shapes(row_pool):
    rng = np.random.default_rng(7)
    for n, p in [(4096, 5), (4096, 5), (4096, 3), (1001, 5), (4096, 5), (1, 2)]:
        k = n // 2 + 1
        spectra = (rng.standard_normal((p, k)) + 1j * rng.standard_normal((p, k))).astype(
            np.complex64
        )
        before = spectra.copy()
        got = kern.irfft_batch(spectra, n)
        ref = np.fft.irfft(spectra.astype(np.complex128), n)
        np.testing.assert_allclose(got, ref, rtol=0, atol=fft_tol(ref, n))
        np.testing.assert_array_equal(spectra, before)  # c2r must not eat the caller's input


@pytest.mark.parametrize("offset", [0, 1])  # 1: rows not SIMD-aligned -> copy-out path
def test_irfft_batch_into_out(offset, row_pool):
    n, p = 4096, 4
    rng = np.random.default_rng(offset)
    spectra = (rng.standard_normal((p, n // 2 + 1)) * (1 + 1j)).astype(np.complex64)
    out = np.empty(p * n + offset, dtype=np.float32)[offset:].reshape(p, n)
    got = kern.irfft_batch(spectra, n, out=out)
    assert got is out
    ref = np.fft.irfft(spectra.astype(np.complex128), n)
    np.testing.assert_allclose(out, ref, rtol=0, atol=fft_tol(ref, n))
    with pytest.raises(ValueError):
        kern.irfft_batch(spectra, n, out=np.empty((p, n + 1), np.float32))


# --------------------------------------------------------------------------- combine

COMBINERS = {
    "blas": kern.combine_blas,
    "numba": kern.combine_numba,
    "dispatch": kern.combine,
    "dispatch-parallel": kern.combine,  # with the parallel threshold forced to 0
}


@PROPS
@pytest.mark.parametrize("impl", sorted(COMBINERS))
@given(
    seed=st.integers(0, 2**32 - 1),
    m=st.integers(1, 20),
    p=st.integers(1, 8),
    n=st.integers(1, 9000),
    binary=st.booleans(),
    use_out=st.booleans(),
)
def test_combine_matches_matmul(impl, seed, m, p, n, binary, use_out, monkeypatch):
    if impl == "dispatch-parallel":
        monkeypatch.setattr(ksynth, "_PARALLEL_MIN_OUTPUTS", 0)
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((p, n)).astype(np.float32)
    if binary:
        coeffs = rng.integers(0, 2, (m, p)).astype(np.float32)
    else:
        coeffs = rng.standard_normal((m, p)).astype(np.float32)
    out = np.full((m, n), np.nan, np.float32) if use_out else None
    got = COMBINERS[impl](coeffs, basis, out)
    assert got.dtype == np.float32 and got.shape == (m, n)
    if use_out:
        assert got is out
    ref = coeffs.astype(np.float64) @ basis.astype(np.float64)
    # float32 sum of p products: each step rounds relative to the running magnitude
    tol = 2 * p * EPS32 * (np.abs(coeffs) @ np.abs(basis)).astype(np.float64)
    assert np.all(np.abs(got - ref) <= tol + 1e-30)


def test_combine_rejects_mismatch():
    with pytest.raises(ValueError):
        kern.combine(np.ones((2, 3), np.float32), np.ones((4, 5), np.float32))


# --------------------------------------------------------------------------- masks


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(1, 3000))
def test_mask_helpers(seed, k):
    rng = np.random.default_rng(seed)
    bins = rng.integers(0, k, rng.integers(0, 2 * k + 1)).astype(np.int64)
    mask = kern.mask_from_bins(bins, k)
    ref = np.zeros(k, bool)
    ref[bins] = True
    np.testing.assert_array_equal(mask, ref)
    X = (rng.standard_normal(k) + 1j * rng.standard_normal(k)).astype(np.complex64)
    masked = kern.apply_mask(X, mask)
    assert masked.dtype == np.complex64
    np.testing.assert_array_equal(masked, np.where(ref, X, 0))


def test_mask_from_bins_rejects_out_of_range():
    with pytest.raises(ValueError):
        kern.mask_from_bins(np.array([-1]), 4)
    with pytest.raises(ValueError):
        kern.mask_from_bins(np.array([4]), 4)


# --------------------------------------------------------------------------- names


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 3000), data=st.data())
def test_word_sums_match_numpy(seed, n, data):
    """The names' running sums are numpy's gather, difference and cumulative sum, bit for
    bit, wrapping included (random 64-bit words overflow on the second feature)."""
    rng = np.random.default_rng(seed)
    words = rng.integers(0, np.iinfo(np.uint64).max, size=(n, 2), dtype=np.uint64,
                         endpoint=True)
    cumulative = np.vstack([np.zeros((1, 2), np.uint64), np.cumsum(words, axis=0)])
    features = rng.integers(0, n, data.draw(st.integers(0, 2 * n))).astype(np.int64)
    ref = np.vstack([np.zeros((1, 2), np.uint64),
                     np.cumsum(cumulative[features + 1] - cumulative[features], axis=0)])
    got = kern.word_sums(cumulative, features)
    assert got.dtype == np.uint64 and got.shape == (features.size + 1, 2)
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(got[1:] - got[:-1], words[features])


def test_word_sums_reject_indices_outside_the_table():
    cumulative = np.zeros((5, 2), np.uint64)   # four features
    for bad in ([-1], [4], [0, 7]):
        with pytest.raises(ValueError):
            kern.word_sums(cumulative, np.array(bad))
    with pytest.raises(ValueError):
        kern.word_sums(np.zeros(5, np.uint64), np.array([0]))
    assert kern.word_sums(cumulative, np.array([], np.int64)).shape == (1, 2)


# --------------------------------------------------------------------------- plans


def _row_problem(n: int, effort: str) -> pyfftw.FFTW:
    """A plain pyFFTW plan of the very problem a row plan of length ``n`` solves (what the
    user's own code could have planned earlier in the process)."""
    if n % 2:
        source = pyfftw.empty_aligned(n // 2 + 1, dtype=np.complex64)
        target = pyfftw.empty_aligned(n, dtype=np.float32)
    else:
        source = pyfftw.empty_aligned(n // 2, dtype=np.complex64)
        target = pyfftw.empty_aligned(n, dtype=np.float32).view(np.complex64)
    return pyfftw.FFTW(source, target, direction="FFTW_BACKWARD",
                       flags=(effort, "FFTW_DESTROY_INPUT"), threads=1)


def _plain_estimate_row(n: int, z: np.ndarray) -> np.ndarray:
    plan = _row_problem(n, "FFTW_ESTIMATE")
    plan.input_array[:] = z
    return plan().copy()


@pytest.mark.parametrize("n", [16_000, 16_001])
def test_rows_do_not_depend_on_what_fftw_planned_before(n):
    X = spectrum(7, n)
    rng = np.random.default_rng(n)
    sets = [rng.choice(X.size, size, replace=False) for size in (5, 300, X.size // 2)]
    bounds = np.array([[0, 9], [100, 2000], [0, X.size]])
    z = spectrum(8, n)[: n // 2 + n % 2]
    kpool.forget_plans()
    pyfftw.forget_wisdom()
    try:
        ours = kern.bin_set_parts(X, sets, n), kern.interval_parts(X, bounds, n)
        plain = _plain_estimate_row(n, z)
        kpool.forget_plans()
        _row_problem(n, "FFTW_MEASURE")   # the process's wisdom now holds a MEASURE plan
        again = kern.bin_set_parts(X, sets, n), kern.interval_parts(X, bounds, n)
        for before, after in zip(ours, again):
            np.testing.assert_array_equal(after, before)
        if np.array_equal(_plain_estimate_row(n, z), plain):
            pytest.skip("this FFTW measured its ESTIMATE algorithm best: nothing to tell apart")
    finally:
        pyfftw.forget_wisdom()
        kpool.forget_plans()


def test_row_plans_are_estimate_plans():
    kpool.forget_plans()
    kern.bin_set_parts(spectrum(1, 9000), [np.arange(10)], 9000)
    flags = krows.get_plans(9000).plans[0].fftw.flags
    assert "FFTW_ESTIMATE" in flags and "FFTW_MEASURE" not in flags


# --------------------------------------------------------------------------- threads


@pytest.fixture
def thread_setting(monkeypatch):
    """A clean thread setting, restored afterwards."""
    monkeypatch.delenv("FREQREX_THREADS", raising=False)
    kern.set_threads(None)
    yield
    monkeypatch.delenv("FREQREX_THREADS", raising=False)
    kern.set_threads(None)


def test_thread_setting(thread_setting, monkeypatch):
    assert kern.threads() == kpool.usable_cores()
    monkeypatch.setenv("FREQREX_THREADS", "3")
    assert kern.threads() == 3
    kern.set_threads(2)  # the call wins over the environment
    assert kern.threads() == 2
    kern.set_threads(None)
    assert kern.threads() == 3
    for bad in (0, -1, True, 1.5, "2"):
        with pytest.raises(ValueError, match="threads must be a positive integer"):
            kern.set_threads(bad)
    monkeypatch.setenv("FREQREX_THREADS", "many")
    with pytest.raises(ValueError, match="FREQREX_THREADS must be a positive integer"):
        kern.threads()


def test_set_threads_caps_numba_on_every_thread(thread_setting):
    import threading

    import numba

    limit = numba.config.NUMBA_NUM_THREADS
    kern.set_threads(1)
    assert numba.get_num_threads() == 1  # numba is imported: capped at once
    seen = []

    def other() -> None:  # Numba's setting is per thread: applied before its next kernel
        kern.combine_numba(np.ones((2, 2), np.float32), np.ones((2, 8), np.float32))
        seen.append(numba.get_num_threads())

    worker = threading.Thread(target=other)
    worker.start()
    worker.join()
    assert seen == [1]
    kern.set_threads(limit + 5)  # within numba's limit
    assert numba.get_num_threads() == limit
    kern.set_threads(None)
    assert numba.get_num_threads() == limit


def test_results_do_not_depend_on_threads(thread_setting, monkeypatch):
    from freqrex._kernels import stft as kstft

    monkeypatch.setattr(kfft, "_POOL_MIN_SAMPLES", 0)
    monkeypatch.setattr(kstft, "_POOL_MIN_FRAMES", 0)
    n = 6000
    X = spectrum(9, n)
    bounds = np.array([[0, 3], [3, 700], [700, 3001], [5, 6]])
    sets = [np.arange(0, 3001, 2), np.array([1, 2, 3000])]
    z = kstft.stft(np.random.default_rng(9).standard_normal(n), 256, 64).astype(np.complex64)
    boxes = np.array([[0, 129, 0, 50], [10, 40, 20, 94]])

    def everything() -> list[np.ndarray]:
        return [kern.interval_parts(X, bounds, n), kern.bin_set_parts(X, sets, n),
                kstft.istft_boxes(z, boxes, 256, 64, n)]

    results = []
    for count in (1, 2, 3):
        kern.set_threads(count)
        results.append(everything())
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            np.testing.assert_array_equal(a, b)


def test_one_plan_cache_keeps_the_last_few_per_kernel():
    kpool.forget_plans()
    made = []

    def make(key):
        def build():
            made.append(key)
            return key

        return build

    for i in range(kpool.PLAN_LIMIT + 2):
        kpool.plan(("test-a", i), make(("test-a", i)))
    kpool.plan(("test-b", 0), make(("test-b", 0)))
    made.clear()
    kpool.plan(("test-b", 0), make(("test-b", 0)))  # kernel a's entries did not evict it
    kpool.plan(("test-a", kpool.PLAN_LIMIT + 1), make("newest"))
    assert made == []
    kpool.plan(("test-a", 0), make("evicted"))  # the oldest of kernel a is gone
    assert made == ["evicted"]
    # an entry its caller finds too small is replaced
    assert kpool.plan(("test-b", 0), make("bigger"), fits=lambda v: False) == "bigger"
    kpool.forget_plans()


def test_import_is_light_and_sets_no_environment():
    """numpy only at import; OMP_WAIT_POLICY defaulted only when Numba threads start."""
    import subprocess
    import sys

    code = "\n".join([
        "import os, sys",
        "import numpy as np",
        "before = os.environ.get('OMP_WAIT_POLICY')",
        "import freqrex._kernels as k",
        "from freqrex._kernels import stft",
        "assert not {'numba', 'pyfftw'} & set(sys.modules), sys.modules.keys()",
        "stft.stft(np.ones(1000), 128, 32)",
        "assert 'numba' not in sys.modules",
        "assert os.environ.get('OMP_WAIT_POLICY') == before",
        "k.combine(np.ones((2, 2), np.float32), np.ones((2, 8), np.float32))",  # serial
        "assert os.environ.get('OMP_WAIT_POLICY') == before",
        "k.combine_numba(np.ones((2, 2), np.float32), np.ones((2, 8), np.float32))",
        "print(os.environ['OMP_WAIT_POLICY'])",
    ])
    env = {key: v for key, v in os.environ.items() if key != "OMP_WAIT_POLICY"}
    for preset, expected in [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")]:
        if preset:  # an explicit setting wins
            env["OMP_WAIT_POLICY"] = preset
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, check=False, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == expected
