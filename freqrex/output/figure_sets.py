"""The panel of several sufficient sets (``multiple > 1``, :mod:`freqrex.multiple`).

Each set is drawn in its own colour over the magnitude spectrum (fft: a line per bin for
small sets, a shaded span for large ones) or the spectrogram (stft: coloured cells, each
ringed when there are few), with a legend ``set i (n bins, x% energy)``; the panel's title
says how many sets were found, what their union holds and why the search stopped. Set 1 is
the sufficient set and keeps its colour from the main figure.

Drawn on the given axes or a new :class:`matplotlib.figure.Figure`; no pyplot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from freqrex.output.spectrum_axes import extent, hz, log_frequency, spectrogram_db

if TYPE_CHECKING:
    from freqrex.explanation import Explanation, Result

__all__ = ["SET_COLOURS", "plot_sets", "redundancy_text", "set_colour", "set_label"]

# Set 1 is the sufficient set's red; then colours far from it, from each other and from
# the necessary (blue) and complete (green) sets of the main panel.
SET_COLOURS = ("#d62728", "#ff7f0e", "#9467bd", "#17becf", "#8c564b", "#e377c2", "#bcbd22",
               "#7f7f7f")


def set_colour(i: int) -> str:
    """The colour of set ``i + 1`` (cycling after eight sets)."""
    return SET_COLOURS[i % len(SET_COLOURS)]


def set_label(i: int, e: Explanation, unit: str) -> str:
    """``"set 2 (14 bins, 31.5% energy)"`` for the set of index ``i``."""
    return f"set {i + 1} ({e.size} {unit}, {100 * e.share_energy:.1f}% energy)"


def redundancy_text(result: Result) -> str:
    """The panel's title: the sets found (a lower bound), their union, why the search
    stopped."""
    red = result.redundancy or {}
    n = red.get("sets", len(result.explanations_multi))
    kind = ("disjoint " if red.get("disjoint", True) else
            f"(overlap <= {100 * result.config.max_overlap:.0f}%) ")
    return (f"redundancy: {n} {kind}sufficient set(s) found of {result.config.multiple} asked "
            f"for (a lower bound)  ·  union: "
            f"{100 * red.get('union_share_features', 0.0):.3g}% of {result.unit}, "
            f"{100 * red.get('union_share_energy', 0.0):.1f}% of energy\n"
            f"stopped: {red.get('reason', '')}")


def plot_sets(result: Result, ax: Any = None) -> Figure:
    """Every sufficient set of ``result.explanations_multi``, each in its own colour.

    Parameters
    ----------
    result : Result
        An explanation run with ``multiple > 1``.
    ax : matplotlib.axes.Axes, optional
        Draw into this axes (the figure holding it is returned).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> plot_sets(freqrex.explain(model, clip, multiple=3)).savefig("sets.png")
    """
    if ax is None:
        fig = Figure(figsize=(11, 3.6), layout="constrained")
        ax = fig.add_subplot()
    if result.config.domain == "stft":
        _stft_sets(result, ax)
    else:
        _fft_sets(result, ax)
    ax.set_title(redundancy_text(result), fontsize=8)
    ax.legend(loc="upper right", fontsize=7)
    return ax.figure


def _fft_sets(result: Result, ax: Any) -> None:
    freqs = hz(result)
    magnitude = result.domain.magnitude()
    db = 20 * np.log10(magnitude / max(float(magnitude.max()), 1e-30) + 1e-12)
    floor = max(float(np.percentile(db[1:], 1)), -120.0)
    ax.plot(freqs, db, lw=0.4, color="0.55", zorder=2)
    for i, e in enumerate(result.explanations_multi):
        colour = set_colour(i)
        if e.size <= 200:  # a few bins: thin lines the eye can find, not a fill
            ax.vlines(freqs[e.bins], floor, db[e.bins], color=colour, lw=0.9, zorder=4,
                      gid=f"set {i + 1}")
        else:
            mask = np.zeros(freqs.size, dtype=bool)
            mask[e.bins] = True
            ax.fill_between(freqs, floor, db, where=mask, step="mid", color=colour, alpha=0.5,
                            lw=0, zorder=3, gid=f"set {i + 1}")
        ax.plot([], [], "s", color=colour, label=set_label(i, e, result.unit))
    ax.set(ylabel="dB re strongest bin", ylim=(floor, 5))
    log_frequency(ax, result, freqs)


def _stft_sets(result: Result, ax: Any) -> None:
    shape = result.responsibility.shape
    span = extent(result)
    image = spectrogram_db(ax, result)
    # The same colour bar as the spectrogram above, so the time axes line up.
    ax.figure.colorbar(image, ax=ax, fraction=0.03, label="dB re strongest cell")
    c = result.config
    for i, e in enumerate(result.explanations_multi):
        colour = set_colour(i)
        mask = np.zeros(int(np.prod(shape)))
        mask[e.bins] = 1.0
        overlay = np.ma.masked_equal(mask.reshape(shape), 0.0)
        ax.imshow(overlay, origin="lower", aspect="auto", extent=span, alpha=0.8,
                  cmap=ListedColormap([colour]), interpolation="nearest", gid=f"set {i + 1}")
        if e.size <= 500:  # a handful of cells is invisible as pixels: ring each one
            rows, frames = np.unravel_index(e.bins, shape)
            ax.scatter(frames * c.hop / result.sample_rate,
                       rows * result.sample_rate / c.n_fft, s=40, facecolors="none",
                       edgecolors=colour, linewidths=1.0)
        ax.plot([], [], "s", color=colour, label=set_label(i, e, result.unit))
    ax.set(xlabel="time (s)", ylabel="frequency (Hz)")
