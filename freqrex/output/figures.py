"""Figures, drawn on :class:`matplotlib.figure.Figure` objects and returned.

Nothing here selects a matplotlib backend or touches pyplot's global state, so the
figures work in notebooks and scripts alike; saving is the caller's choice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.colors import ListedColormap, SymLogNorm
from matplotlib.figure import Figure

from freqrex.criterion import KINDS

if TYPE_CHECKING:
    from freqrex.explanation import Result

COLOURS = {"complete": "#9ecae1", "necessary": "#3182bd", "sufficient": "#d62728"}


def plot_result(result: Result, fig: Figure | None = None) -> Figure:
    """A figure in the spirit of the paper's Figure 1.

    Panels: the waveform; responsibility over frequency (fft) or over time and frequency
    (stft); the magnitude spectrum, or the spectrogram, with the sufficient / necessary /
    complete bins or cells marked; the reconstructed signals.

    Parameters
    ----------
    result : Result
        An explanation from :func:`freqrex.explain`.
    fig : matplotlib.figure.Figure, optional
        Draw into this (empty) figure instead of a new one.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = plot_result(result)
    >>> fig.savefig("explanation.png")
    """
    x, sr = result.audio, result.sample_rate
    t = np.arange(x.shape[0]) / sr
    if fig is None:
        fig = Figure(figsize=(11, 12), layout="constrained")
    grid = fig.add_gridspec(6, 1, height_ratios=[1.2, 1.2, 1.4, 0.7, 0.7, 0.7])
    axes = [fig.add_subplot(grid[i]) for i in range(6)]
    axes[0].plot(t, x, lw=0.5, color="0.3")
    axes[0].set(title=f"clip: {result.target_label} ({result.confidence:.2f})",
                xlabel="time (s)", ylabel="amplitude", xlim=(0, t[-1]))
    if result.config.domain == "stft":
        _stft_panels(result, axes[1], axes[2])
    else:
        _fft_panels(result, axes[1], axes[2])
    _reconstructions(result, t, axes[3:])
    return fig


def _fft_panels(result: Result, ax_resp: Any, ax_spec: Any) -> None:
    x, sr = result.audio, result.sample_rate
    hz = np.arange(result.n_features) * sr / x.shape[0]
    ax_resp.plot(hz, result.responsibility, lw=0.6, color="#6a51a3")
    ax_resp.set(title="responsibility per frequency bin", xlabel="frequency (Hz)",
                ylabel="responsibility")
    positive = result.responsibility[result.responsibility > 0]
    if positive.size:
        ax_resp.set_yscale("symlog", linthresh=positive.min())
    magnitude_db = 20 * np.log10(result.domain.magnitude() + 1e-12)
    ax_spec.plot(hz, magnitude_db, lw=0.4, color="0.6", label="spectrum")
    for kind in reversed(KINDS):
        e = result.explanations[kind]
        if e.found:
            ax_spec.scatter(hz[e.bins], magnitude_db[e.bins], s=8, color=COLOURS[kind],
                            label=f"{kind} ({e.size} bins)", zorder=3)
    ax_spec.set(title="magnitude spectrum and explanations", xlabel="frequency (Hz)",
                ylabel="dB")
    ax_spec.legend(loc="upper right", fontsize=8)


def _stft_panels(result: Result, ax_resp: Any, ax_spec: Any) -> None:
    c = result.config
    sr = result.sample_rate
    resp = result.responsibility
    extent = (0, (resp.shape[1] - 1) * c.hop / sr, 0, sr / 2)
    positive = resp[resp > 0]
    # Responsibility spans decades (coarse boxes share theirs over many cells): log colours.
    norm = SymLogNorm(linthresh=positive.min()) if positive.size else None
    image = ax_resp.imshow(resp, origin="lower", aspect="auto", extent=extent, cmap="magma",
                           norm=norm)
    ax_resp.set(title="responsibility per STFT cell", xlabel="time (s)",
                ylabel="frequency (Hz)")
    ax_resp.figure.colorbar(image, ax=ax_resp, fraction=0.03)
    spectrogram_db = 20 * np.log10(result.domain.magnitude() + 1e-9)
    ax_spec.imshow(spectrogram_db, origin="lower", aspect="auto", extent=extent,
                   cmap="Greys", vmin=spectrogram_db.max() - 90)
    for kind in reversed(KINDS):  # widest first, so the smaller sets stay visible
        e = result.explanations[kind]
        if e.found:
            mask = np.zeros(resp.size)
            mask[e.bins] = 1.0
            overlay = np.ma.masked_equal(mask.reshape(resp.shape), 0.0)
            ax_spec.imshow(overlay, origin="lower", aspect="auto", extent=extent, alpha=0.8,
                           cmap=ListedColormap([COLOURS[kind]]), interpolation="nearest")
            ax_spec.plot([], [], "s", color=COLOURS[kind], label=f"{kind} ({e.size} cells)")
    ax_spec.set(title="spectrogram and explanations", xlabel="time (s)",
                ylabel="frequency (Hz)")
    ax_spec.legend(loc="upper right", fontsize=8)


def _reconstructions(result: Result, t: np.ndarray, axes: list[Any]) -> None:
    unit = "cells" if result.config.domain == "stft" else "bins"
    limit = float(np.abs(result.audio).max())
    for ax, kind in zip(axes, KINDS):
        e = result.explanations[kind]
        if e.found and e.prediction is not None:
            ax.plot(t, e.audio, lw=0.5, color=COLOURS[kind])
            title = (f"{kind} reconstruction ({e.size} {unit}): model says "
                     f"{e.prediction.label} {e.prediction.confidence:.2f}")
        else:
            title = f"{kind}: not found"
        ax.set(title=title, ylabel="amplitude", ylim=(-limit, limit), xlim=(0, t[-1]))
        ax.title.set_fontsize(9)
    axes[-1].set_xlabel("time (s)")
