"""Feature spaces: which coefficients a mutant keeps, and how it becomes a waveform again.

- fft: the ``n//2 + 1`` bins of ``rfft(x)``; bin ``k`` is ``k * sample_rate / n`` Hz.
- stft: the ``F x T`` cells of a Hann-window STFT (``F = n_fft//2 + 1`` frequency rows,
  ``T`` frames ``hop`` samples apart), inverted by overlap-add with window normalisation.

Both inverse transforms are linear, so a mutant keeping a union of disjoint parts is the
sum of the parts' own signals: the search asks for a few per-part signals per split and
sums them, instead of one inverse transform per mutant.
"""

from __future__ import annotations

import numpy as np

from freqrex import _kernels as kernels
from freqrex._kernels import stft as stft_kernels
from freqrex.boxes import Box, Interval, Rect, flat_features
from freqrex.errors import FreqrexError


class Domain:
    """What the search needs of a feature space: boxes in, waveforms out.

    Attributes
    ----------
    x : np.ndarray
        The clip (float32).
    shape : tuple of int
        Shape of the per-feature arrays (responsibility, magnitude).
    root : Box
        The box the search starts from (all features, or those in ``freq_range``).
    fixed : np.ndarray
        Signal of the features outside the root: part of every mutant.
    """

    name: str
    shape: tuple[int, ...]
    root: Box

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

    def _fixed_signal(self) -> np.ndarray:
        inside = np.zeros(self.n_features, dtype=bool)
        inside[self.candidates()] = True
        outside = np.flatnonzero(~inside)
        if outside.size == 0:
            return np.zeros(self.n, dtype=np.float32)
        return self._signals([outside])[0]

    # what the search calls -----------------------------------------------------------
    def part_signals(self, parts: list[list[Box]]) -> np.ndarray:
        """Signal of each part (a union of boxes), float32 ``[P, n]``, without the fixed part."""
        return self._signals([flat_features(p, self.shape) for p in parts])

    def keep(self, feature_sets: list[np.ndarray]) -> np.ndarray:
        """Mutants keeping each set of (flat) features plus the fixed ones, ``[M, n]``."""
        out = self._signals([np.asarray(s, dtype=np.int64) for s in feature_sets])
        out += self.fixed
        return out

    def keep_top(self, ranking: np.ndarray, ks: np.ndarray) -> np.ndarray:
        """Mutants keeping the first ``k`` ranked features for each ``k`` in ``ks``."""
        out = self._prefix(np.ascontiguousarray(ranking, np.int64), np.asarray(ks, np.int64))
        out += self.fixed
        return out

    def remove(self, kept: np.ndarray) -> np.ndarray:
        """The clip without what the mutants ``kept`` hold (beyond the fixed part)."""
        return (self.x + self.fixed) - kept

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

    _row_hz: float


class FFTDomain(Domain):
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
        self.fixed = self._fixed_signal()

    def frequencies(self) -> np.ndarray:
        """Centre frequency of every bin, in Hz."""
        return np.arange(self.shape[0]) * self._row_hz

    def magnitude(self) -> np.ndarray:
        return np.abs(self.spectrum)

    def power_weights(self) -> np.ndarray:
        """Energy per bin (Parseval)."""
        return _onesided(self.n) * np.abs(self.spectrum) ** 2

    def part_signals(self, parts: list[list[Box]]) -> np.ndarray:
        if all(len(p) == 1 for p in parts):  # single intervals: the fast path
            bounds = np.array([[p[0].lo, p[0].hi] for p in parts], dtype=np.int64)
            return kernels.interval_parts(self._spectrum64, bounds, self.n)
        return super().part_signals(parts)

    def _signals(self, feature_sets: list[np.ndarray]) -> np.ndarray:
        return kernels.bin_set_parts(self._spectrum64, feature_sets, self.n)

    def _prefix(self, ranking: np.ndarray, ks: np.ndarray) -> np.ndarray:
        return kernels.prefix_parts(self._spectrum64, ranking, ks, self.n)

    def _rows(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(features)


class STFTDomain(Domain):
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
            raise FreqrexError(f"the clip ({self.n} samples) is shorter than one STFT window "
                               f"(n_fft={n_fft}); use a smaller --n-fft or the fft domain")
        self.n_fft, self.hop = int(n_fft), int(hop)
        self.coefficients = stft_kernels.stft(self.x, self.n_fft, self.hop)
        self._coefficients64 = self.coefficients.astype(np.complex64)
        self.shape = self.coefficients.shape
        self._row_hz = self.sample_rate / self.n_fft
        lo, hi = _row_range(self.shape[0], self._row_hz, freq_range)
        self.root = Rect(lo, hi, 0, self.shape[1])
        self.fixed = self._fixed_signal()

    def magnitude(self) -> np.ndarray:
        return np.abs(self.coefficients)

    def power_weights(self) -> np.ndarray:
        """STFT energy per cell."""
        return _onesided(self.n_fft)[:, None] * np.abs(self.coefficients) ** 2

    def part_signals(self, parts: list[list[Box]]) -> np.ndarray:
        if all(len(p) == 1 for p in parts):  # single rectangles: the fast path
            bounds = np.array([[p[0].f0, p[0].f1, p[0].t0, p[0].t1] for p in parts],
                              dtype=np.int64)
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
        raise FreqrexError(
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
