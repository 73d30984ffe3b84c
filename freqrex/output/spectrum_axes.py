"""Axes shared by the figures: the frequency of each rfft bin, a log-frequency axis that
starts above DC, the extent of a spectrogram image (seconds by Hz) and the grey dB
spectrogram the STFT panels draw their marks over."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from freqrex.explanation import Result

__all__ = ["extent", "hz", "log_frequency", "spectrogram_db"]

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


def spectrogram_db(ax: Any, result: Result) -> Any:
    """The clip's STFT magnitude in dB re its strongest cell (-90 .. 0), in grey; the image."""
    magnitude = result.domain.magnitude()
    db = 20 * np.log10(magnitude / max(float(magnitude.max()), 1e-30) + 1e-9)
    return ax.imshow(db, origin="lower", aspect="auto", extent=extent(result), cmap="Greys",
                     vmin=-90, vmax=0, interpolation="nearest")
