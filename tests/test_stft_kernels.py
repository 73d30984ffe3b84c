"""Property tests: the STFT kernels against scipy's ShortTimeFFT and a numpy reference.

Oracles.  The forward STFT is checked against ``scipy.signal.ShortTimeFFT`` (an
independent implementation) set to freqrex's framing; so is the inverse, on full masks
(every cell kept), in two ways: the inverse of a consistent STFT is scipy's round trip
of the clip, and the inverse of arbitrary coefficients is scipy's ``istft`` wherever
every window that reaches a sample is one of the ``T`` frames (at the first and last
``n_fft / 2`` or so samples freqrex normalises by the windows it has, scipy by the
periodic sum).  Partial masks and the edges are checked against the ``reference_*``
functions below: the original numpy implementation of the inverse (a full masked
coefficient array, every frame inverse-transformed and overlap-added).

Tolerance.  The inverse is an overlap-add divided by the window-sum-square, so rounding
committed in frame ``t`` reaches sample ``s`` multiplied by ``w_t(s) / sum_t w_t(s)**2``;
summed over the frames the worst case is ``gain(s) * frame_peak`` with
``gain = sum(w) / sum(w**2)`` and ``frame_peak`` the largest |inverse-FFT frame| of the
row.  The kernels promise float32-FFT accuracy at a gain of at most ``MAX_GAIN`` (they
switch to double where the geometry is worse), so the allowed error is
``ULPS * eps32 * log2(n_fft) * min(gain, MAX_GAIN) * frame_peak`` plus the float32
rounding of the result itself.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from scipy.signal import ShortTimeFFT
from scipy.signal.windows import hann

from freqrex._kernels import stft as kstft

EPS32 = float(np.finfo(np.float32).eps)
EPS64 = float(np.finfo(np.float64).eps)
MAX_GAIN = 4.0  # = stft._FLOAT32_MAX_GAIN: the contract, restated
ULPS = 1.0  # observed worst case ~0.12 over 300 random box cases
PROPS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


# --------------------------------------------------------------------------- the oracle


def reference_window(n_fft: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)


def reference_n_frames(n: int, hop: int) -> int:
    return n // hop + 1


def _reference_padded_length(n: int, n_fft: int, hop: int) -> int:
    return (reference_n_frames(n, hop) - 1) * hop + n_fft


def scipy_stft(n_fft: int, hop: int) -> ShortTimeFFT:
    """ShortTimeFFT with freqrex's framing.

    freqrex frame ``t`` is ``x[t * hop - n_fft // 2 : t * hop - n_fft // 2 + n_fft]``
    (zeros outside the clip) times a periodic Hann window, transformed by an unscaled
    one-sided FFT; ShortTimeFFT centres slice ``p`` the same way (its window's middle
    sample ``n_fft // 2`` on sample ``p * hop``), pads with zeros by default, and with
    ``phase_shift=None`` and ``scale_to=None`` applies neither a phase nor a scale.
    freqrex's ``T = n // hop + 1`` frames are its slices ``p = 0 .. T - 1``.
    """
    return ShortTimeFFT(hann(n_fft, sym=False), hop, fs=1, mfft=n_fft, fft_mode="onesided",
                        scale_to=None, phase_shift=None)


def scipy_istft(coefficients: np.ndarray, n_fft: int, hop: int, n: int) -> np.ndarray:
    """ShortTimeFFT.istft of freqrex's frames ``0 .. T-1`` (zeros in its other slices)."""
    sft = scipy_stft(n_fft, hop)
    rows, frames = coefficients.shape
    first = -sft.p_min  # scipy's slices start at p_min <= 0
    slices = np.zeros((rows, sft.p_max(n) - sft.p_min), dtype=np.complex128)
    slices[:, first:first + frames] = coefficients
    return sft.istft(slices, k1=n)


def fully_covered(n: int, n_fft: int, hop: int) -> np.ndarray:
    """Samples all of whose windows (on the infinite frame grid) are frames 0 .. T-1."""
    s, pad = np.arange(n), n_fft // 2
    first = (s + pad - n_fft) // hop + 1
    last = (s + pad) // hop
    return (first >= 0) & (last <= reference_n_frames(n, hop) - 1)


def _reference_wss(n: int, n_fft: int, hop: int) -> np.ndarray:
    w2 = reference_window(n_fft) ** 2
    total = np.zeros(_reference_padded_length(n, n_fft, hop))
    for t in range(reference_n_frames(n, hop)):
        total[t * hop:t * hop + n_fft] += w2
    pad = n_fft // 2
    return total[pad:pad + n]


def _reference_istft_batch(coefficients: np.ndarray, n_fft: int, hop: int,
                           n: int) -> np.ndarray:
    p, _, t = coefficients.shape
    frames = np.fft.irfft(coefficients, n_fft, axis=1) * reference_window(n_fft)[None, :, None]
    out = np.zeros((p, _reference_padded_length(n, n_fft, hop)))
    for i in range(t):
        out[:, i * hop:i * hop + n_fft] += frames[:, :, i]
    pad = n_fft // 2
    with np.errstate(invalid="ignore"):  # 0 / 0 where no window reaches (hop > n_fft / 2)
        return (out[:, pad:pad + n] / _reference_wss(n, n_fft, hop)).astype(np.float32)


def _masked_sets(coefficients: np.ndarray, sets: Sequence[np.ndarray]) -> np.ndarray:
    masked = np.zeros((len(sets),) + coefficients.shape, dtype=np.complex128)
    flat = masked.reshape(len(sets), -1)
    source = coefficients.ravel()
    for row, idx in enumerate(sets):
        flat[row, idx] = source[idx]
    return masked


def _masked_boxes(coefficients: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    masked = np.zeros((len(bounds),) + coefficients.shape, dtype=np.complex128)
    for row, (f0, f1, t0, t1) in enumerate(bounds):
        masked[row, f0:f1, t0:t1] = coefficients[f0:f1, t0:t1]
    return masked


def reference_istft_sets(coefficients, sets, n_fft, hop, n):
    return _reference_istft_batch(_masked_sets(coefficients, sets), n_fft, hop, n)


def reference_istft_boxes(coefficients, bounds, n_fft, hop, n):
    return _reference_istft_batch(_masked_boxes(coefficients, bounds), n_fft, hop, n)


def reference_istft_prefix(coefficients, ranking, ks, n_fft, hop, n):
    return reference_istft_sets(coefficients, [ranking[:k] for k in ks], n_fft, hop, n)


# --------------------------------------------------------------------------- helpers


def gain(n: int, n_fft: int, hop: int) -> np.ndarray:
    """sum(w) / sum(w**2) per output sample (0 where no window reaches)."""
    w = reference_window(n_fft)
    pad = n_fft // 2
    s1 = np.zeros(max(_reference_padded_length(n, n_fft, hop), pad + n))
    s2 = np.zeros_like(s1)
    for t in range(reference_n_frames(n, hop)):
        s1[t * hop:t * hop + n_fft] += w
        s2[t * hop:t * hop + n_fft] += w * w
    s1, s2 = s1[pad:pad + n], s2[pad:pad + n]
    return np.divide(s1, s2, out=np.zeros(n), where=s2 > 0)


def assert_match(got: np.ndarray, masked: np.ndarray, n_fft: int, hop: int, n: int) -> None:
    """got == reference inverse of the masked coefficients, within the documented bound."""
    ref = _reference_istft_batch(masked, n_fft, hop, n)
    length = ref.shape[1]  # < n only for hop > n_fft / 2 + 1 (see the gap test)
    assert got.dtype == np.float32
    assert got.shape == ref.shape
    if masked.shape[0] == 0:
        return
    frame_peak = np.abs(np.fft.irfft(masked, n_fft, axis=1)).max(axis=(1, 2))
    g = np.minimum(gain(n, n_fft, hop)[:length], MAX_GAIN)
    tol = (ULPS * EPS32 * math.log2(n_fft) * frame_peak[:, None] * g[None, :]
           + 2 * EPS32 * np.abs(np.nan_to_num(ref)))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    err = np.abs(np.nan_to_num(got.astype(np.float64)) - np.nan_to_num(ref))
    worst = np.unravel_index(np.argmax(err - tol), err.shape)
    assert (err <= tol).all(), f"error {err[worst]:.3g} > {tol[worst]:.3g} at {worst}"


def clip(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal(n)


def coefficients_of(seed: int, n: int, n_fft: int, hop: int, kind: str) -> np.ndarray:
    """complex64 [F, T]: the STFT of a random clip, or (``random``) arbitrary values, which
    need not be a consistent STFT and have non-zero imaginary DC / Nyquist parts."""
    if kind == "stft":
        return kstft.stft(clip(seed, n), n_fft, hop).astype(np.complex64)
    rng = np.random.default_rng(seed)
    shape = (n_fft // 2 + 1, n // hop + 1)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


@st.composite
def geometries(draw, max_frames: int = 200):
    """(n_fft, hop, n) with n barely >= n_fft, n not a multiple of hop, and longer clips."""
    n_fft = draw(st.sampled_from([64, 128, 256, 512]))
    hop = n_fft // draw(st.sampled_from([2, 4, 8]))
    kind = draw(st.sampled_from(["barely", "multiple", "any"]))
    if kind == "barely":
        n = n_fft + draw(st.integers(0, 2 * hop))
    elif kind == "multiple":
        n = hop * draw(st.integers(n_fft // hop, max_frames)) + draw(st.sampled_from([-1, 0, 1]))
        n = max(n, n_fft)
    else:
        n = draw(st.integers(n_fft, hop * max_frames))
    return n_fft, hop, n


@st.composite
def box_cases(draw):
    n_fft, hop, n = draw(geometries())
    rows, frames = n_fft // 2 + 1, n // hop + 1
    boxes = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(
            ["random", "random", "cell", "dc", "nyquist", "first", "last", "all", "empty"]))
        f0, f1 = sorted(draw(st.lists(st.integers(0, rows), min_size=2, max_size=2)))
        t0, t1 = sorted(draw(st.lists(st.integers(0, frames), min_size=2, max_size=2)))
        if kind == "cell":
            f0, t0 = draw(st.integers(0, rows - 1)), draw(st.integers(0, frames - 1))
            f1, t1 = f0 + 1, t0 + 1
        elif kind == "dc":
            f0, f1 = 0, 1
        elif kind == "nyquist":
            f0, f1 = rows - 1, rows
        elif kind == "first":
            t0, t1 = 0, max(t1, 1)
        elif kind == "last":
            t0, t1 = min(t0, frames - 1), frames
        elif kind == "all":
            f0, f1, t0, t1 = 0, rows, 0, frames
        elif kind == "empty":
            f1, t1 = f0, t0 + draw(st.integers(0, 1))
        boxes.append((f0, f1, t0, t1))
    seed = draw(st.integers(0, 2**32 - 1))
    coef = draw(st.sampled_from(["stft", "random"]))
    return n_fft, hop, n, np.array(boxes, dtype=np.int64), seed, coef


@pytest.fixture(params=["serial", "pool"])
def unit_pool(request, monkeypatch):
    """Run the units on the caller only, or always through the worker pool."""
    monkeypatch.setattr(kstft, "_POOL_MIN_FRAMES", 1 << 62 if request.param == "serial" else 0)
    return request.param


# --------------------------------------------------------------------------- forward


@PROPS
@given(geo=geometries(), seed=st.integers(0, 2**32 - 1))
def test_stft_matches_shorttimefft(geo, seed):
    n_fft, hop, n = geo
    x = clip(seed, n).astype(np.float32)
    got = kstft.stft(x, n_fft, hop)
    frames = kstft.n_frames(n, hop)
    assert got.dtype == np.complex128
    assert got.shape == (n_fft // 2 + 1, frames) and frames == n // hop + 1
    want = scipy_stft(n_fft, hop).stft(x.astype(np.float64), p0=0, p1=frames)
    # two float64 FFTs of the same frames: a few ulps of the largest coefficient
    tol = 16 * EPS64 * math.log2(n_fft) * float(np.abs(want).max())
    np.testing.assert_allclose(got, want, rtol=0, atol=tol)
    np.testing.assert_allclose(kstft.window(n_fft), hann(n_fft, sym=False), rtol=0,
                               atol=4 * EPS64)


def test_stft_of_a_known_tone():
    """A cosine on bin 8 of a 64-point frame: |X[8]| = sum(w) / 2 = 16 inside the clip."""
    n_fft, hop, n = 64, 16, 1024
    x = np.cos(2 * np.pi * 8 * np.arange(n) / n_fft)
    z = kstft.stft(x, n_fft, hop)
    inner = z[:, 4:-4]  # frames that lie wholly inside the clip
    np.testing.assert_allclose(np.abs(inner[8]), 16.0, rtol=0, atol=1e-12)
    others = np.delete(np.abs(inner), [7, 8, 9], axis=0)  # Hann leaks into the neighbours
    assert others.max() < 1e-12


@PROPS
@given(geo=geometries(), seed=st.integers(0, 2**32 - 1))
def test_inverse_of_a_full_stft_matches_shorttimefft(geo, seed):
    """Every cell kept: both inverses give the clip back, freqrex's to float32 rounding."""
    n_fft, hop, n = geo
    x = clip(seed, n)
    sft = scipy_stft(n_fft, hop)
    want = sft.istft(sft.stft(x), k1=n)  # all of scipy's slices, p_min .. p_max - 1
    z = kstft.stft(x, n_fft, hop)
    g = np.minimum(gain(n, n_fft, hop), MAX_GAIN)
    tol = ULPS * EPS32 * math.log2(n_fft) * g * np.abs(x).max() + 2 * EPS32 * np.abs(x)
    got_sets = kstft.istft_sets(z, [np.arange(z.size)], n_fft, hop, n)[0]
    got_box = kstft.istft_boxes(z, np.array([[0, z.shape[0], 0, z.shape[1]]]), n_fft, hop, n)[0]
    for got in (got_sets, got_box):
        assert (np.abs(got - want) <= tol + 1e-12).all()


@PROPS
@given(geo=geometries(), seed=st.integers(0, 2**32 - 1))
def test_inverse_of_any_coefficients_matches_shorttimefft_inside(geo, seed):
    """Arbitrary coefficients (not an STFT), every cell kept, against scipy's istft."""
    n_fft, hop, n = geo
    z = coefficients_of(seed, n, n_fft, hop, "random")
    rows, frames = z.shape
    # scipy reads the DC and Nyquist bins' real parts only, as irfft does
    want = scipy_istft(z.astype(np.complex128), n_fft, hop, n)
    inside = fully_covered(n, n_fft, hop)
    got = kstft.istft_boxes(z, np.array([[0, rows, 0, frames]]), n_fft, hop, n)[0]
    frame_peak = float(np.abs(np.fft.irfft(z.astype(np.complex128), n_fft, axis=0)).max())
    g = np.minimum(gain(n, n_fft, hop), MAX_GAIN)
    tol = ULPS * EPS32 * math.log2(n_fft) * frame_peak * g + 2 * EPS32 * np.abs(want)
    err = np.abs(got.astype(np.float64) - want)
    assert (err[inside] <= tol[inside]).all()
    # the edges (partly covered samples) follow the reference
    assert_match(got[None, :], _masked_boxes(z, np.array([[0, rows, 0, frames]])), n_fft,
                 hop, n)


# --------------------------------------------------------------------------- boxes


@PROPS
@given(case=box_cases())
@example(case=(512, 256, 767, np.array([[0, 257, 0, 3], [256, 257, 2, 3], [0, 1, 0, 1]]), 1,
               "stft"))  # worst tail conditioning: n % hop == hop - 1 at hop = n_fft / 2
@example(case=(64, 8, 64, np.array([[0, 33, 0, 9], [5, 5, 0, 9], [0, 33, 4, 4]]), 2, "random"))
def test_boxes_match_reference(case, unit_pool):
    n_fft, hop, n, bounds, seed, coef = case
    z = coefficients_of(seed, n, n_fft, hop, coef)
    got = kstft.istft_boxes(z, bounds, n_fft, hop, n)
    assert_match(got, _masked_boxes(z, bounds), n_fft, hop, n)


def test_boxes_large_clip_matches_reference():
    """A search-sized split (many units per row, the pool in use) at the default geometry."""
    n_fft, hop, n = 512, 128, 40_000
    z = coefficients_of(7, n, n_fft, hop, "stft")
    rows, frames = z.shape
    bounds = np.array([[0, 90, 0, 150], [0, 90, 150, frames], [90, rows, 0, 150],
                       [90, rows, 150, frames], [100, 120, 200, 230]], dtype=np.int64)
    got = kstft.istft_boxes(z, bounds, n_fft, hop, n)
    assert_match(got, _masked_boxes(z, bounds), n_fft, hop, n)
    # outside a box's frames the row is exactly zero
    lo = 200 * hop - n_fft // 2
    hi = 229 * hop + n_fft // 2
    assert not got[4, :lo].any() and not got[4, hi:].any()
    assert np.abs(got[4, lo:hi]).max() > 0


@PROPS
@given(case=box_cases())
def test_serial_and_pool_are_identical(case, monkeypatch):
    """Units own their output samples: who runs them cannot change a single bit."""
    n_fft, hop, n, bounds, seed, coef = case
    z = coefficients_of(seed, n, n_fft, hop, coef)
    monkeypatch.setattr(kstft, "_POOL_MIN_FRAMES", 1 << 62)
    serial = kstft.istft_boxes(z, bounds, n_fft, hop, n)
    monkeypatch.setattr(kstft, "_POOL_MIN_FRAMES", 0)
    pooled = kstft.istft_boxes(z, bounds, n_fft, hop, n)
    np.testing.assert_array_equal(serial, pooled)


@PROPS
@given(case=box_cases())
def test_boxes_equal_their_cell_sets(case):
    n_fft, hop, n, bounds, seed, coef = case
    z = coefficients_of(seed, n, n_fft, hop, coef)
    frames = z.shape[1]
    sets = [(np.arange(f0, f1)[:, None] * frames + np.arange(t0, t1)[None, :]).ravel()
            for f0, f1, t0, t1 in bounds]
    boxes = kstft.istft_boxes(z, bounds, n_fft, hop, n)
    np.testing.assert_allclose(boxes, kstft.istft_sets(z, sets, n_fft, hop, n),
                               rtol=0, atol=1e-5 * max(1.0, float(np.abs(boxes).max())))


# --------------------------------------------------------------------------- sets, prefixes


@st.composite
def set_cases(draw):
    n_fft, hop, n = draw(geometries())
    size = (n_fft // 2 + 1) * (n // hop + 1)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    sets = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["sparse", "dense", "dupes", "empty", "all", "one"]))
        if kind == "sparse":
            sets.append(rng.choice(size, rng.integers(1, 20), replace=False))
        elif kind == "dense":
            sets.append(rng.permutation(size)[: rng.integers(size // 2, size + 1)])
        elif kind == "dupes":
            sets.append(rng.integers(0, size, rng.integers(1, size)))
        elif kind == "empty":
            sets.append(np.empty(0, dtype=np.int64))
        elif kind == "all":
            sets.append(np.arange(size))
        else:
            sets.append(np.array([draw(st.sampled_from([0, size - 1, rng.integers(size)]))]))
    coef = draw(st.sampled_from(["stft", "random"]))
    return n_fft, hop, n, [s.astype(np.int64) for s in sets], seed, coef


@PROPS
@given(case=set_cases())
def test_sets_match_reference(case, unit_pool):
    n_fft, hop, n, sets, seed, coef = case
    z = coefficients_of(seed, n, n_fft, hop, coef)
    got = kstft.istft_sets(z, sets, n_fft, hop, n)
    assert_match(got, _masked_sets(z, sets), n_fft, hop, n)


@PROPS
@given(geo=geometries(), seed=st.integers(0, 2**32 - 1),
       kind=st.sampled_from(["permutation", "subset", "dupes"]))
def test_prefix_matches_reference(geo, seed, kind, unit_pool):
    n_fft, hop, n = geo
    z = coefficients_of(seed, n, n_fft, hop, "stft")
    size = z.size
    rng = np.random.default_rng(seed)
    if kind == "permutation":
        ranking = rng.permutation(size)
    elif kind == "subset":
        ranking = rng.permutation(size)[: rng.integers(0, size + 1)]
    else:
        ranking = rng.integers(0, size, rng.integers(1, 2 * size))
    r = ranking.size
    ks = np.unique(np.concatenate(([0, r, min(1, r)], rng.integers(0, r + 1, 5))))
    got = kstft.istft_prefix(z, ranking, ks, n_fft, hop, n)
    assert_match(got, _masked_sets(z, [ranking[:k] for k in ks]), n_fft, hop, n)


# --------------------------------------------------------------------------- exactness


@PROPS
@given(geo=geometries(), seed=st.integers(0, 2**32 - 1))
def test_all_cells_reconstruct_the_clip(geo, seed):
    """hop <= n_fft / 2: the inverse of the full (double) STFT is the clip itself."""
    n_fft, hop, n = geo
    x = clip(seed, n)
    z = kstft.stft(x, n_fft, hop)
    got = kstft.istft_sets(z, [np.arange(z.size)], n_fft, hop, n)[0]
    g = np.minimum(gain(n, n_fft, hop), MAX_GAIN)
    tol = ULPS * EPS32 * math.log2(n_fft) * g * np.abs(x).max() + 2 * EPS32 * np.abs(x)
    assert (np.abs(got - x) <= tol).all()


def _guillotine(rng: np.random.Generator, box: tuple[int, int, int, int],
                depth: int) -> list[tuple[int, int, int, int]]:
    """Random partition of a rectangle into rectangles (cuts like the search's splits)."""
    f0, f1, t0, t1 = box
    if depth == 0 or (f1 - f0 < 2 and t1 - t0 < 2) or rng.random() < 0.2:
        return [box]
    if f1 - f0 >= 2 and (t1 - t0 < 2 or rng.random() < 0.5):
        f = int(rng.integers(f0 + 1, f1))
        halves = [(f0, f, t0, t1), (f, f1, t0, t1)]
    else:
        t = int(rng.integers(t0 + 1, t1))
        halves = [(f0, f1, t0, t), (f0, f1, t, t1)]
    return [b for h in halves for b in _guillotine(rng, h, depth - 1)]


@PROPS
@given(geo=geometries(), seed=st.integers(0, 2**32 - 1))
def test_partition_of_boxes_sums_to_the_clip(geo, seed):
    """Linearity: the parts of a partition of every cell add up to the clip."""
    n_fft, hop, n = geo
    x = clip(seed, n)
    z = kstft.stft(x, n_fft, hop)
    rng = np.random.default_rng(seed)
    parts = np.array(_guillotine(rng, (0, z.shape[0], 0, z.shape[1]), 6), dtype=np.int64)
    got = kstft.istft_boxes(z, parts, n_fft, hop, n).astype(np.float64).sum(axis=0)
    g = np.minimum(gain(n, n_fft, hop), MAX_GAIN)
    peak = float(np.abs(x).max())
    # each part carries its own float32 error; their peaks are bounded by the clip's scale
    tol = len(parts) * (ULPS * EPS32 * math.log2(n_fft) * g * peak + 2 * EPS32 * peak)
    assert (np.abs(got - x) <= tol).all()


# --------------------------------------------------------------------------- edges


def test_gaps_between_windows_are_nan_like_the_reference():
    """hop > n_fft: no window reaches some samples; the reference divides 0 by 0 there.

    The reference's rows also end with its last frame (992 of 1000 samples here); the
    kernels keep rows of length n, the samples past the last frame being such gaps too.
    """
    n_fft, hop, n = 64, 96, 1000
    z = coefficients_of(3, n, n_fft, hop, "random")
    bounds = np.array([[0, 33, 0, z.shape[1]], [3, 9, 2, 5]], dtype=np.int64)
    got = kstft.istft_boxes(z, bounds, n_fft, hop, n)
    short = _reference_padded_length(n, n_fft, hop) - n_fft // 2
    assert short < n and np.isnan(got[:, short:]).all()
    assert np.isnan(got[:, :short]).any()
    assert_match(got[:, :short], _masked_boxes(z, bounds), n_fft, hop, n)


def test_empty_inputs():
    n_fft, hop, n = 128, 32, 1000
    z = coefficients_of(4, n, n_fft, hop, "stft")
    assert kstft.istft_boxes(z, np.empty((0, 4), np.int64), n_fft, hop, n).shape == (0, n)
    assert kstft.istft_sets(z, [], n_fft, hop, n).shape == (0, n)
    assert kstft.istft_prefix(z, np.arange(10), np.empty(0, np.int64), n_fft, hop,
                              n).shape == (0, n)
    zeros = kstft.istft_boxes(z, np.array([[5, 5, 0, 10], [0, 10, 7, 7]]), n_fft, hop, n)
    assert zeros.shape == (2, n) and not zeros.any()


def test_bad_arguments_raise():
    n_fft, hop, n = 128, 32, 1000
    z = coefficients_of(5, n, n_fft, hop, "stft")
    with pytest.raises(ValueError, match="do not match"):
        kstft.istft_boxes(z[:, :-1], np.array([[0, 1, 0, 1]]), n_fft, hop, n)
    with pytest.raises(ValueError, match="non-negative"):
        kstft.istft_boxes(z, np.array([[-1, 1, 0, 1]]), n_fft, hop, n)
    with pytest.raises(ValueError, match="flat cell indices"):
        kstft.istft_sets(z, [np.array([z.size])], n_fft, hop, n)
    with pytest.raises(ValueError, match="ks must lie"):
        kstft.istft_prefix(z, np.arange(10), np.array([11]), n_fft, hop, n)


def test_concurrent_callers_get_their_own_results():
    n_fft, hop, n = 256, 64, 30_000
    z = coefficients_of(6, n, n_fft, hop, "stft")
    rows, frames = z.shape
    cases = [np.array([[0, rows, t, t + 40], [10, 50, 0, frames]], dtype=np.int64)
             for t in range(0, 160, 20)]
    expected = [kstft.istft_boxes(z, b, n_fft, hop, n) for b in cases]
    results: dict[int, np.ndarray] = {}

    def call(i: int) -> None:
        for _ in range(3):
            results[i] = kstft.istft_boxes(z, cases[i], n_fft, hop, n)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(cases))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, want in enumerate(expected):
        np.testing.assert_array_equal(results[i], want)
