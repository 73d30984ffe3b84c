"""Feature spaces: which coefficients a mutant keeps, and how it becomes a waveform again.

The fft domain's features are the ``n//2 + 1`` bins of ``rfft(x)``; bin ``k`` is
``k * sample_rate / n`` Hz. The inverse transform is linear, so a mutant keeping a union of
disjoint parts is the sum of the parts' own signals: the search asks for a few per-part
signals per split and sums them, instead of one inverse FFT per mutant.
"""

from __future__ import annotations

import numpy as np

from freqrex import _kernels as kernels
from freqrex.boxes import Interval, bins_of
from freqrex.errors import FreqrexError


class FFTDomain:
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
        self.x = np.ascontiguousarray(x, dtype=np.float32)
        self.n = self.x.shape[0]
        self.sample_rate = int(sample_rate)
        self.spectrum = kernels.rfft(self.x)
        self._spectrum64 = self.spectrum.astype(np.complex64)
        self.n_features = self.spectrum.shape[0]
        self.root = self._root_box(freq_range)
        outside = np.concatenate([np.arange(0, self.root.lo), np.arange(self.root.hi,
                                                                        self.n_features)])
        # Bins outside freq_range are part of every mutant: their signal is fixed.
        self.fixed = (self._signals([outside])[0] if outside.size
                      else np.zeros(self.n, dtype=np.float32))

    def _root_box(self, freq_range: tuple[float, float] | None) -> Interval:
        if freq_range is None:
            return Interval(0, self.n_features)
        lo_hz, hi_hz = freq_range
        hz = self.frequencies()
        inside = np.flatnonzero((hz >= lo_hz) & (hz <= hi_hz))
        if inside.size == 0:
            raise FreqrexError(
                f"freq_range {lo_hz:g}-{hi_hz:g} Hz holds no bin of this clip "
                f"(bins are {hz[1]:.3g} Hz apart up to {hz[-1]:g} Hz); widen it")
        return Interval(int(inside[0]), int(inside[-1]) + 1)

    # geometry -------------------------------------------------------------------------
    def frequencies(self) -> np.ndarray:
        """Centre frequency of every bin, in Hz."""
        return np.arange(self.n_features) * (self.sample_rate / self.n)

    def magnitude(self) -> np.ndarray:
        return np.abs(self.spectrum)

    def power_weights(self) -> np.ndarray:
        """Energy per bin (Parseval): interior bins stand for two conjugate bins."""
        weights = np.full(self.n_features, 2.0)
        weights[0] = 1.0
        if self.n % 2 == 0:
            weights[-1] = 1.0
        return weights * np.abs(self.spectrum) ** 2

    def energy_share(self, bins: np.ndarray) -> float:
        """Share of the clip's energy held by ``bins``."""
        power = self.power_weights()
        total = power.sum()
        return float(power[bins].sum() / total) if total > 0 else 0.0

    def hz_ranges(self, bins: np.ndarray) -> list[tuple[float, float]]:
        """The bins as merged runs of adjacent bins, each as (first, last) centre in Hz."""
        if len(bins) == 0:
            return []
        b = np.sort(np.asarray(bins))
        breaks = np.flatnonzero(np.diff(b) > 1)
        starts = np.concatenate(([b[0]], b[breaks + 1]))
        ends = np.concatenate((b[breaks], [b[-1]]))
        step = self.sample_rate / self.n
        return [(float(s * step), float(e * step)) for s, e in zip(starts, ends)]

    # synthesis ------------------------------------------------------------------------
    def _signals(self, bin_sets: list[np.ndarray]) -> np.ndarray:
        return kernels.bin_set_parts(self._spectrum64, bin_sets, self.n)

    def part_signals(self, parts: list[list[Interval]]) -> np.ndarray:
        """Signal of each part (a union of boxes), float32 ``[P, n]``, without the fixed bins."""
        if all(len(p) == 1 for p in parts):
            bounds = np.array([[p[0].lo, p[0].hi] for p in parts], dtype=np.int64)
            return kernels.interval_parts(self._spectrum64, bounds, self.n)
        return self._signals([bins_of(p) for p in parts])

    def keep(self, bin_sets: list[np.ndarray]) -> np.ndarray:
        """Mutants that keep each set of bins (plus the fixed bins), float32 ``[M, n]``."""
        out = self._signals([np.asarray(s, dtype=np.int64) for s in bin_sets])
        out += self.fixed
        return out

    def keep_top(self, ranking: np.ndarray, ks: np.ndarray) -> np.ndarray:
        """Mutants keeping the first ``k`` ranked bins for each ``k`` in ``ks``."""
        out = kernels.prefix_parts(self._spectrum64, np.ascontiguousarray(ranking, np.int64),
                                   np.asarray(ks, dtype=np.int64), self.n)
        out += self.fixed
        return out

    def remove(self, kept: np.ndarray) -> np.ndarray:
        """The clip without what the mutants ``kept`` hold (beyond the fixed bins)."""
        return (self.x + self.fixed) - kept
