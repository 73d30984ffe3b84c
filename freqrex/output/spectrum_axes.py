"""Axes shared by the figures: the frequency of each rfft bin, a log-frequency axis that
starts above DC, and the extent of a spectrogram image (seconds by Hz)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from freqrex.explanation import Result

__all__ = ["extent", "hz", "log_frequency"]

_TICKS_HZ = (20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000)


def hz(result: Result) -> np.ndarray:
    """The frequency of each rfft bin of the clip (fft domain)."""
    return np.arange(result.n_features) * result.sample_rate / result.audio.shape[0]


def log_frequency(ax: Any, result: Result, hz: np.ndarray) -> None:
    """A log-frequency x axis up to Nyquist, with round ticks in Hz / kHz."""
    # Bin 0 (DC) has no place on a log axis; start at the first bin above 20 Hz.
    ax.set_xscale("log")
    ax.set_xlim(max(hz[1], 20.0), result.sample_rate / 2)
    ax.set_xlabel("frequency (Hz, log scale)")
    lo, hi = ax.get_xlim()
    ticks = [f for f in _TICKS_HZ if lo <= f <= hi]
    ax.set_xticks(ticks, [f"{f / 1000:g}k" if f >= 1000 else str(f) for f in ticks])
    ax.set_xticks([], minor=True)


def extent(result: Result) -> tuple[float, float, float, float]:
    """The ``imshow`` extent of an STFT map: frame times by 0 .. Nyquist."""
    c, sr = result.config, result.sample_rate
    return (0, (result.responsibility.shape[1] - 1) * c.hop / sr, 0, sr / 2)
