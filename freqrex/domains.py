"""Feature spaces: which coefficients a mutant keeps, and how it becomes a waveform again.

- fft: the ``n//2 + 1`` bins of ``rfft(x)``; bin ``k`` is ``k * sample_rate / n`` Hz.
- stft: the ``F x T`` cells of a Hann-window STFT (``F = n_fft//2 + 1`` frequency rows,
  ``T`` frames ``hop`` samples apart), inverted by overlap-add with window normalisation.

Both inverse transforms are linear, so a mutant keeping a union of disjoint parts is the
sum of the parts' own signals: the search asks for a few per-part signals per split and
sums them, instead of one inverse transform per mutant.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from freqrex import _kernels as kernels
from freqrex._kernels import stft as stft_kernels
from freqrex.boxes import Box, Interval, Rect, flat_features
from freqrex.errors import InputError


@runtime_checkable
class Domain(Protocol):
    """What the search, the extraction, the attacks and the figures need of a feature space.

    The domain is the only door to mutant synthesis: code outside it never calls a
    kernel. A mutant is named by the features it keeps; the domain turns it into a
    waveform, always including the ``fixed`` signal of the features outside the root.
    """

    name: str
    x: np.ndarray               # the clip, float32 [n]
    n: int
    sample_rate: int
    shape: tuple[int, ...]      # of the per-feature arrays (responsibility, magnitude)
    root: Box                   # where the search starts: all features, or freq_range
    fixed: np.ndarray           # signal of the features outside the root, float32 [n]

    @property
    def n_features(self) -> int: ...

    def candidates(self) -> np.ndarray: ...

    def magnitude(self) -> np.ndarray: ...

    def power_weights(self) -> np.ndarray: ...

    def mutants(self, context: Sequence[Box], children: Sequence[Box], masks: np.ndarray,
                out: np.ndarray | None = None) -> np.ndarray: ...

    def keep(self, feature_sets: list[np.ndarray]) -> np.ndarray: ...

    def keep_top(self, ranking: np.ndarray, ks: np.ndarray) -> np.ndarray: ...

    def remove(self, kept: np.ndarray, out: np.ndarray | None = None) -> np.ndarray: ...

    def energy_share(self, features: np.ndarray) -> float: ...

    def hz_ranges(self, features: np.ndarray) -> list[tuple[float, float]]: ...

    def time_ranges(self, features: np.ndarray) -> list[tuple[float, float]]: ...


class _Spectral:
    """What the fft and stft domains share; each adds its transform."""

    name: str
    shape: tuple[int, ...]
    root: Box
    fixed: np.ndarray
    _row_hz: float

    def __init__(self, x: np.ndarray, sample_rate: int) -> None:
        self.x = np.ascontiguousarray(x, dtype=np.float32)
        self.n = self.x.shape[0]
        self.sample_rate = int(sample_rate)

    @property
    def n_features(self) -> int:
        return int(np.prod(self.shape))

    def candidates(self) -> np.ndarray:
        """Flat indices of the searched features."""
        return self.root.flat(self.shape)

    def _fix(self, fixed: np.ndarray) -> None:
        """Hold the signal of the features outside the root, and what each batch reuses."""
        self.fixed = fixed
        # a root of every feature fixes nothing: no pass over each batch to add zeros
        self._any_fixed = bool(np.any(fixed))
        self._whole = self.x + fixed   # what a removal subtracts from, made once

    def _fixed_signal(self) -> np.ndarray:
        inside = np.zeros(self.n_features, dtype=bool)
        inside[self.candidates()] = True
        outside = np.flatnonzero(~inside)
        if outside.size == 0:
            return np.zeros(self.n, dtype=np.float32)
        return self._signals([outside])[0]

    # mutants -------------------------------------------------------------------------
    def mutants(self, context: Sequence[Box], children: Sequence[Box], masks: np.ndarray,
                out: np.ndarray | None = None) -> np.ndarray:
        """Mutants keeping ``context`` plus the subsets ``masks`` of ``children``.

        Parameters
        ----------
        context : sequence of Box
            Boxes kept in every mutant (with the fixed features).
        children : sequence of Box
            The parts of the box being refined.
        masks : np.ndarray
            int64 ``[M]``; bit ``i`` of a mask keeps ``children[i]``.
        out : np.ndarray, optional
            float32 ``[M, n]`` C-contiguous destination.

        Returns
        -------
        np.ndarray
            float32 ``[M, n]``. By linearity each mutant is a 0/1 sum of the context's
            signal and the children's: a few inverse transforms per split, not one per
            mutant.
        """
        basis = np.empty((len(children) + 1, self.n), dtype=np.float32)
        basis[1:] = self.part_signals([[c] for c in children])
        basis[0] = self.fixed
        if context:
            basis[0] += self.part_signals([list(context)])[0]
        bits = (masks[:, None] >> np.arange(len(children))[None, :]) & 1
        weights = np.hstack([np.ones((len(masks), 1)), bits]).astype(np.float32)
        return kernels.combine(weights, basis, out=out)

    def part_signals(self, parts: list[list[Box]]) -> np.ndarray:
        """Signal of each part (a union of boxes), float32 ``[P, n]``, without the fixed part."""
        return self._signals([flat_features(p, self.shape) for p in parts])

    def keep(self, feature_sets: list[np.ndarray]) -> np.ndarray:
        """Mutants keeping each set of (flat) features plus the fixed ones, ``[M, n]``."""
        out = self._signals([np.asarray(s, dtype=np.int64) for s in feature_sets])
        return self._with_fixed(out)

    def keep_top(self, ranking: np.ndarray, ks: np.ndarray) -> np.ndarray:
        """Mutants keeping the first ``k`` ranked features for each ``k`` in ``ks``."""
        out = self._prefix(np.ascontiguousarray(ranking, np.int64), np.asarray(ks, np.int64))
        return self._with_fixed(out)

    def _with_fixed(self, out: np.ndarray) -> np.ndarray:
        if self._any_fixed:
            out += self.fixed
        return out

    def remove(self, kept: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The clip without what the mutants ``kept`` hold (beyond the fixed part), in
        ``out`` (float32, shaped like ``kept``) when given."""
        return np.subtract(self._whole, kept, out=out)

    # reporting ----------------------------------------------------------------------
    def energy_share(self, features: np.ndarray) -> float:
        """Share of the clip's energy held by ``features`` (flat indices)."""
        power = self.power_weights().ravel()
        total = power.sum()
        return float(power[features].sum() / total) if total > 0 else 0.0

    def hz_ranges(self, features: np.ndarray) -> list[tuple[float, float]]:
        """Frequencies the features cover, as merged runs (first, last centre) in Hz."""
        return _runs(self._rows(features), self._row_hz)

    def time_ranges(self, features: np.ndarray) -> list[tuple[float, float]]:
        """Times the features cover, as merged runs (first, last centre) in seconds."""
        return [(0.0, self.n / self.sample_rate)] if len(features) else []

    # per domain ---------------------------------------------------------------------
    def _signals(self, feature_sets: list[np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def _prefix(self, ranking: np.ndarray, ks: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def magnitude(self) -> np.ndarray:
        raise NotImplementedError

    def power_weights(self) -> np.ndarray:
        raise NotImplementedError

    def _rows(self, features: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class FFTDomain(_Spectral):
    """The rfft bins of one clip.

    Parameters
    ----------
    x : np.ndarray
        Mono float32 waveform.
    sample_rate : int
        Its sample rate in Hz.
    freq_range : tuple of float, optional
        Search only the bins in ``[low, high]`` Hz; the others stay in every mutant as they are.
    """

    name = "fft"

    def __init__(self, x: np.ndarray, sample_rate: int,
                 freq_range: tuple[float, float] | None = None) -> None:
        super().__init__(x, sample_rate)
        self.spectrum = kernels.rfft(self.x)
        self._spectrum64 = self.spectrum.astype(np.complex64)
        self.shape = (self.spectrum.shape[0],)
        self._row_hz = self.sample_rate / self.n
        lo, hi = _row_range(self.shape[0], self._row_hz, freq_range)
        self.root = Interval(lo, hi)
        self._fix(self._fixed_signal())

    def frequencies(self) -> np.ndarray:
        """Centre frequency of every bin, in Hz."""
        return np.arange(self.shape[0]) * self._row_hz

    def magnitude(self) -> np.ndarray:
        return np.abs(self.spectrum)

    def power_weights(self) -> np.ndarray:
        """Energy per bin (Parseval)."""
        return _onesided(self.n) * np.abs(self.spectrum) ** 2

    def part_signals(self, parts: list[list[Box]]) -> np.ndarray:
        intervals = [p[0] for p in parts if len(p) == 1 and isinstance(p[0], Interval)]
        if len(intervals) == len(parts):  # single intervals: the fast path
            bounds = np.array([[b.lo, b.hi] for b in intervals], dtype=np.int64)
            return kernels.interval_parts(self._spectrum64, bounds, self.n)
        return super().part_signals(parts)

    def _signals(self, feature_sets: list[np.ndarray]) -> np.ndarray:
        return kernels.bin_set_parts(self._spectrum64, feature_sets, self.n)

    def _prefix(self, ranking: np.ndarray, ks: np.ndarray) -> np.ndarray:
        return kernels.prefix_parts(self._spectrum64, ranking, ks, self.n)

    def _rows(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(features)


class STFTDomain(_Spectral):
    """The cells of a Hann-window STFT of one clip.

    Parameters
    ----------
    x : np.ndarray
        Mono float32 waveform.
    sample_rate : int
        Its sample rate in Hz.
    n_fft, hop : int
        Window length and hop, in samples.
    freq_range : tuple of float, optional
        Search only the frequency rows in ``[low, high]`` Hz.
    """

    name = "stft"

    def __init__(self, x: np.ndarray, sample_rate: int, n_fft: int = 512, hop: int = 128,
                 freq_range: tuple[float, float] | None = None) -> None:
        super().__init__(x, sample_rate)
        if self.n < n_fft:
            raise InputError(f"the clip ({self.n} samples) is shorter than one STFT window "
                               f"(n_fft={n_fft}); use a smaller n_fft or the fft domain")
        self.n_fft, self.hop = int(n_fft), int(hop)
        self.coefficients = stft_kernels.stft(self.x, self.n_fft, self.hop)
        self._coefficients64 = self.coefficients.astype(np.complex64)
        self.shape = self.coefficients.shape
        self._row_hz = self.sample_rate / self.n_fft
        lo, hi = _row_range(self.shape[0], self._row_hz, freq_range)
        self.root = Rect(lo, hi, 0, self.shape[1])
        self._fix(self._fixed_signal())

    def magnitude(self) -> np.ndarray:
        return np.abs(self.coefficients)

    def power_weights(self) -> np.ndarray:
        """STFT energy per cell."""
        return _onesided(self.n_fft)[:, None] * np.abs(self.coefficients) ** 2

    def part_signals(self, parts: list[list[Box]]) -> np.ndarray:
        rects = [p[0] for p in parts if len(p) == 1 and isinstance(p[0], Rect)]
        if len(rects) == len(parts):  # single rectangles: the fast path
            bounds = np.array([[r.f0, r.f1, r.t0, r.t1] for r in rects], dtype=np.int64)
            return stft_kernels.istft_boxes(self._coefficients64, bounds, self.n_fft, self.hop,
                                       self.n)
        return super().part_signals(parts)

    def _signals(self, feature_sets: list[np.ndarray]) -> np.ndarray:
        return stft_kernels.istft_sets(self._coefficients64, feature_sets, self.n_fft, self.hop,
                                  self.n)

    def _prefix(self, ranking: np.ndarray, ks: np.ndarray) -> np.ndarray:
        return stft_kernels.istft_prefix(self._coefficients64, ranking, ks, self.n_fft, self.hop,
                                    self.n)

    def _rows(self, features: np.ndarray) -> np.ndarray:
        return np.unique(np.asarray(features) // self.shape[1])

    def time_ranges(self, features: np.ndarray) -> list[tuple[float, float]]:
        frames = np.unique(np.asarray(features) % self.shape[1])
        return _runs(frames, self.hop / self.sample_rate)


def make_domain(x: np.ndarray, sample_rate: int, name: str = "fft", n_fft: int = 512,
                hop: int = 128, freq_range: tuple[float, float] | None = None) -> Domain:
    """The named domain of a clip."""
    if name == "stft":
        return STFTDomain(x, sample_rate, n_fft, hop, freq_range)
    return FFTDomain(x, sample_rate, freq_range)


def _onesided(length: int) -> np.ndarray:
    """Energy weight of each rfft row of a ``length``-point transform: interior rows stand
    for themselves and their conjugate mirror, DC and Nyquist only for themselves."""
    weights = np.full(length // 2 + 1, 2.0)
    weights[0] = 1.0
    if length % 2 == 0:
        weights[-1] = 1.0
    return weights


def _row_range(rows: int, row_hz: float,
               freq_range: tuple[float, float] | None) -> tuple[int, int]:
    """First and one-past-last frequency row inside ``freq_range`` (all rows if None)."""
    if freq_range is None:
        return 0, rows
    lo_hz, hi_hz = freq_range
    hz = np.arange(rows) * row_hz
    inside = np.flatnonzero((hz >= lo_hz) & (hz <= hi_hz))
    if inside.size == 0:
        raise InputError(
            f"freq_range {lo_hz:g}-{hi_hz:g} Hz holds no frequency bin of this clip "
            f"(bins are {row_hz:.3g} Hz apart up to {hz[-1]:g} Hz); widen it")
    return int(inside[0]), int(inside[-1]) + 1


def _runs(indices: np.ndarray, step: float) -> list[tuple[float, float]]:
    """Sorted indices as merged runs of neighbours, each as (first, last) times ``step``."""
    if len(indices) == 0:
        return []
    b = np.sort(np.asarray(indices))
    breaks = np.flatnonzero(np.diff(b) > 1)
    starts = np.concatenate(([b[0]], b[breaks + 1]))
    ends = np.concatenate((b[breaks], [b[-1]]))
    return [(float(s * step), float(e * step)) for s, e in zip(starts, ends)]
