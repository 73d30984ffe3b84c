"""Figures. Only report-side code imports this module (and so matplotlib)."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")  # files only: freqrex never opens a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from freqrex.explanation import Result  # noqa: E402

COLOURS = {"complete": "#9ecae1", "necessary": "#3182bd", "sufficient": "#d62728"}


def plot_result(result: Result, path: str | os.PathLike) -> None:
    """Save a figure in the spirit of the paper's Figure 1.

    Panels: the waveform; responsibility over frequency; the magnitude spectrum with the
    sufficient / necessary / complete bins marked; the reconstructed signals.
    """
    x, sr = result.audio, result.sample_rate
    t = np.arange(x.shape[0]) / sr
    hz = np.arange(result.n_bins) * sr / x.shape[0]
    magnitude_db = 20 * np.log10(np.abs(np.fft.rfft(x)) + 1e-12)

    fig = plt.figure(figsize=(11, 12), constrained_layout=True)
    grid = fig.add_gridspec(6, 1, height_ratios=[1.2, 1.2, 1.4, 0.7, 0.7, 0.7])
    axes = [fig.add_subplot(grid[i]) for i in range(6)]
    axes[0].plot(t, x, lw=0.5, color="0.3")
    axes[0].set(title=f"clip: {result.target_label} ({result.confidence:.2f})",
                xlabel="time (s)", ylabel="amplitude")

    axes[1].plot(hz, result.responsibility, lw=0.6, color="#6a51a3")
    axes[1].set(title="responsibility per frequency bin", xlabel="frequency (Hz)",
                ylabel="responsibility")
    positive = result.responsibility[result.responsibility > 0]
    if positive.size:
        axes[1].set_yscale("symlog", linthresh=positive.min())

    axes[2].plot(hz, magnitude_db, lw=0.4, color="0.6", label="spectrum")
    for kind in ("complete", "necessary", "sufficient"):
        e = result.explanations[kind]
        if e.found:
            axes[2].scatter(hz[e.bins], magnitude_db[e.bins], s=8, color=COLOURS[kind],
                            label=f"{kind} ({e.size} bins)", zorder=3)
    axes[2].set(title="magnitude spectrum and explanations", xlabel="frequency (Hz)",
                ylabel="dB")
    axes[2].legend(loc="upper right", fontsize=8)

    limit = float(np.abs(x).max())
    for ax, kind in zip(axes[3:], ("sufficient", "necessary", "complete")):
        e = result.explanations[kind]
        if e.found:
            ax.plot(t, e.audio, lw=0.5, color=COLOURS[kind])
            title = (f"{kind} reconstruction ({e.size} bins): model says "
                     f"{e.prediction.label} {e.prediction.confidence:.2f}")
        else:
            title = f"{kind}: not found"
        ax.set(title=title, ylabel="amplitude", ylim=(-limit, limit))
        ax.title.set_fontsize(9)
    axes[-1].set_xlabel("time (s)")
    fig.savefig(path, dpi=110)
    plt.close(fig)
