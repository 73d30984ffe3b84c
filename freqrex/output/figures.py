"""Figures, drawn on :class:`matplotlib.figure.Figure` objects and returned.

Nothing here selects a matplotlib backend or touches pyplot's global state, so the
figures work in notebooks and scripts alike; saving is the caller's choice.

What the figures are meant to show at a glance: which frequencies each explanation holds
(on a log-frequency axis, since the evidence crowds the low end), sets that coincide
(named together in the legend rather than drawn invisibly under each other), and each
reconstruction on its own scale (a sufficient set holding 0.2% of the energy is a flat
line on the clip's scale).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.colors import ListedColormap, SymLogNorm
from matplotlib.figure import Figure

from freqrex.criterion import KINDS
from freqrex.output.spectrum_axes import extent as _extent
from freqrex.output.spectrum_axes import hz as _hz
from freqrex.output.spectrum_axes import log_frequency as _log_frequency
from freqrex.output.spectrum_axes import spectrogram_db

if TYPE_CHECKING:
    from freqrex.explanation import Result
    from freqrex.manipulation import AttackResult

COLOURS = {"complete": "#2ca02c", "necessary": "#3182bd", "sufficient": "#d62728"}


def title(result: Result) -> str:
    """``"flute.wav · bundled reference model · target flute (class 5) 0.956"``."""
    from freqrex.output.terminal import clip_name, model_name

    top = "" if result.prediction.class_index == result.target else (
        f" (top class: {result.prediction.label} {result.prediction.confidence:.3f})")
    return (f"{clip_name(result.source)}  ·  {model_name(result.model_info)}  ·  target "
            f"{result.target_label} (class {result.target}), confidence "
            f"{result.confidence:.3f}{top}  ·  {result.config.domain}")


def groups(result: Result) -> list[tuple[list[str], Any]]:
    """The found sets, identical ones merged: ``[(["necessary", "complete"], e), ...]``."""
    out: list[tuple[list[str], Any]] = []
    for kind in KINDS:
        e = result.explanations[kind]
        if not e.found:
            continue
        twin = next((g for g in out if np.array_equal(g[1].bins, e.bins)), None)
        if twin is not None:
            twin[0].append(kind)
        else:
            out.append(([kind], e))
    return out


def _label(kinds: list[str], e: Any, unit: str) -> str:
    return f"{' = '.join(kinds)} ({e.size} {unit}, {100 * e.share_energy:.1f}% energy)"


def plot_result(result: Result, fig: Figure | None = None, ax: Any = None) -> Figure:
    """A figure in the spirit of the paper's Figure 1.

    Panels: the waveform; responsibility over a log-frequency axis (fft) or over time and
    frequency (stft); the magnitude spectrum (dB re its strongest bin) or spectrogram with
    the sufficient / necessary / complete sets shaded; with more than one sufficient set
    (``multiple > 1``), each of them in its own colour and the redundancy
    (:func:`freqrex.output.figure_sets.plot_sets`); the reconstructions, each on its own
    scale. Identical sets are named together in the legend.

    Parameters
    ----------
    result : Result
        An explanation from :func:`freqrex.explain`.
    fig : matplotlib.figure.Figure, optional
        Draw into this (empty) figure instead of a new one.
    ax : matplotlib.axes.Axes, optional
        Draw only the spectrum panel into this axes (the figure holding it is returned).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = plot_result(result)
    >>> fig.savefig("explanation.png")
    """
    if ax is not None:
        (_stft_spectrum if result.config.domain == "stft" else _fft_spectrum)(result, ax)
        return ax.figure
    x, sr = result.audio, result.sample_rate
    t = np.arange(x.shape[0]) / sr
    # Several sufficient sets get a panel of their own under the spectrum.
    sets = len(result.explanations_multi) > 1
    ratios = [1.0, 1.2, 1.6, *([1.6] if sets else []), 0.7, 0.7, 0.7, 0.7]
    if fig is None:
        fig = Figure(figsize=(11, 15 if sets else 13), layout="constrained")
    fig.suptitle(title(result), fontsize=9)
    grid = fig.add_gridspec(len(ratios), 1, height_ratios=ratios)
    axes = [fig.add_subplot(grid[i]) for i in range(len(ratios))]
    axes[0].plot(t, x, lw=0.5, color="0.3")
    axes[0].set(title="the clip as the model hears it", xlabel="time (s)",
                ylabel="amplitude", xlim=(0, t[-1]))
    if result.config.domain == "stft":
        _stft_responsibility(result, axes[1])
        _stft_spectrum(result, axes[2])
    else:
        _fft_responsibility(result, axes[1])
        _fft_spectrum(result, axes[2])
    if sets:
        from freqrex.output.figure_sets import plot_sets

        plot_sets(result, axes[3])
    _reconstructions(result, t, axes[4:] if sets else axes[3:])
    return fig


def _fft_responsibility(result: Result, ax: Any) -> None:
    hz = _hz(result)
    ax.plot(hz, result.responsibility, lw=0.6, color="#6a51a3")
    ax.set(title="responsibility per frequency bin", ylabel="responsibility")
    positive = result.responsibility[result.responsibility > 0]
    if positive.size:
        ax.set_yscale("symlog", linthresh=positive.min())
    _log_frequency(ax, result, hz)


def _fft_spectrum(result: Result, ax: Any) -> None:
    hz = _hz(result)
    magnitude = result.domain.magnitude()
    db = 20 * np.log10(magnitude / max(float(magnitude.max()), 1e-30) + 1e-12)
    floor = max(float(np.percentile(db[1:], 1)), -120.0)
    ax.plot(hz, db, lw=0.4, color="0.55", label="spectrum", zorder=2)
    unit = result.unit
    found = groups(result)
    # Widest set first as shading under the spectrum, then narrower ones on top.
    for kinds, e in sorted(found, key=lambda g: -g[1].size):
        mask = np.zeros(hz.size, dtype=bool)
        mask[e.bins] = True
        colour = COLOURS[kinds[0]]
        if e.size <= 200:  # a few bins: thin lines the eye can find, not a fill
            ax.vlines(hz[e.bins], floor, db[e.bins], color=colour, lw=0.8, alpha=0.9,
                      zorder=4, label=_label(kinds, e, unit))
        else:
            ax.fill_between(hz, floor, db, where=mask, step="mid", color=colour, alpha=0.45,
                            lw=0, zorder=1 if e.size > 1000 else 3,
                            label=_label(kinds, e, unit))
    ax.set(title="magnitude spectrum, explanations shaded", ylabel="dB re strongest bin",
           ylim=(floor, 5))
    _log_frequency(ax, result, hz)
    _legend_in_order(ax)


def _legend_in_order(ax: Any) -> None:
    """The legend in the order spectrum, sufficient, necessary, complete (drawn otherwise)."""
    handles, labels = ax.get_legend_handles_labels()
    order = ["spectrum", *KINDS]
    rank = {i: next((j for j, word in enumerate(order) if label.startswith(word)), 9)
            for i, label in enumerate(labels)}
    keys = sorted(range(len(labels)), key=rank.__getitem__)
    ax.legend([handles[i] for i in keys], [labels[i] for i in keys], loc="upper right",
              fontsize=7)


def _stft_responsibility(result: Result, ax: Any) -> None:
    resp = result.responsibility
    positive = resp[resp > 0]
    # Responsibility spans decades (coarse boxes share theirs over many cells): log colours.
    norm = SymLogNorm(linthresh=positive.min()) if positive.size else None
    image = ax.imshow(resp, origin="lower", aspect="auto", extent=_extent(result),
                      cmap="magma", norm=norm, interpolation="nearest")
    ax.set(title="responsibility per STFT cell", xlabel="time (s)", ylabel="frequency (Hz)")
    ax.figure.colorbar(image, ax=ax, fraction=0.03, label="responsibility")


def _stft_spectrum(result: Result, ax: Any) -> None:
    resp = result.responsibility
    extent = _extent(result)
    image = spectrogram_db(ax, result)
    ax.figure.colorbar(image, ax=ax, fraction=0.03, label="dB re strongest cell")
    for kinds, e in sorted(groups(result), key=lambda g: -g[1].size):
        mask = np.zeros(resp.size)
        mask[e.bins] = 1.0
        overlay = np.ma.masked_equal(mask.reshape(resp.shape), 0.0)
        # Semi-transparent so the spectrogram shows through; the small sets drawn last, opaque.
        alpha = 0.35 if e.size > 0.02 * resp.size else 0.95
        ax.imshow(overlay, origin="lower", aspect="auto", extent=extent, alpha=alpha,
                  cmap=ListedColormap([COLOURS[kinds[0]]]), interpolation="nearest")
        if e.size <= 500:  # a handful of cells is invisible as pixels: ring each one
            rows, frames = np.unravel_index(e.bins, resp.shape)
            ax.scatter(frames * result.config.hop / result.sample_rate,
                       rows * result.sample_rate / result.config.n_fft, s=60,
                       facecolors="none", edgecolors=COLOURS[kinds[0]], linewidths=1.2)
        ax.plot([], [], "s", color=COLOURS[kinds[0]], alpha=max(alpha, 0.6),
                label=_label(kinds, e, result.unit))
    ax.set(title="spectrogram, explanations overlaid", xlabel="time (s)",
           ylabel="frequency (Hz)")
    _legend_in_order(ax)


def _reconstructions(result: Result, t: np.ndarray, axes: list[Any]) -> None:
    unit = result.unit
    peak = float(np.abs(result.audio).max()) or 1.0
    rows: list[tuple[str, np.ndarray | None, str]] = []
    for kind in KINDS:
        e = result.explanations[kind]
        if e.found and e.prediction is not None and e.audio is not None:
            rows.append((kind, e.audio, f"{kind} reconstruction ({e.size} {unit}): model says "
                         f"{e.prediction.label} {e.prediction.confidence:.2f}"))
        else:
            rows.append((kind, None, f"{kind}: not found"))
    e = result.necessary
    if e.found and e.audio is not None and e.removed is not None:
        rows.append(("rest", result.domain.remove(e.audio),
                     f"the clip without the necessary set: model says {e.removed.label} "
                     f"{e.removed.confidence:.2f}"))
    else:
        rows.append(("rest", None, "the clip without the necessary set: not available"))
    for ax, (kind, wave, text) in zip(axes, rows):
        if wave is not None:
            own = float(np.abs(wave).max()) or 1.0
            ax.plot(t, wave, lw=0.5, color=COLOURS.get(kind, "0.4"))
            # Each on its own scale: say how loud it is against the clip.
            share = 100 * own / peak
            text += f"  [own scale: peak {share:.2g}% of the clip's]" if share < 10 else (
                f"  [own scale: peak {share:.0f}% of the clip's]")
            ax.set_ylim(-1.05 * own, 1.05 * own)
        ax.set(title=text, ylabel="amplitude", xlim=(0, t[-1]))
        ax.title.set_fontsize(8)
    axes[-1].set_xlabel("time (s)")


def plot_attack(attack: AttackResult, result: Result | None = None,
                fig: Figure | None = None) -> Figure:
    """Target probability against ``k``; with the explanation ``result``, the spectrum with
    the bins of the largest attack marked (each flipping ``k`` labelled).

    Parameters
    ----------
    attack : AttackResult
        From :func:`freqrex.attack`.
    result : Result, optional
        The explanation the attack used (same domain); adds the spectrum panel.
    fig : matplotlib.figure.Figure, optional
        Draw into this (empty) figure.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> plot_attack(freqrex.attack(model, clip, ks=(1, 5))).savefig("attack.png")
    """
    panels = 2 if result is not None else 1
    if fig is None:
        fig = Figure(figsize=(10, 3.6 * panels), layout="constrained")
    axes = list(fig.subplots(panels, 1, squeeze=False)[:, 0])
    ks = [s.k for s in attack.steps]
    p = [s.prediction.target_confidence for s in attack.steps]
    ax = axes[0]
    ax.plot(ks, p, marker="o", color="#3182bd", label=f"p({attack.target_label})")
    for s in attack.steps:
        if s.flipped:
            ax.plot(s.k, s.prediction.target_confidence, "x", color="#d62728", ms=10, mew=2)
            ax.annotate(f"{s.prediction.label}\n{s.snr_db:.0f} dB", (s.k, p[ks.index(s.k)]),
                        textcoords="offset points", xytext=(4, 6), fontsize=7)
    ax.plot([], [], "x", color="#d62728", label="class flipped (new class, SNR)")
    if result is not None:
        ax.axhline(result.confidence, color="0.5", ls=":", lw=1,
                   label=f"the whole clip ({result.confidence:.3f})")
    unit = "cells" if attack.domain == "stft" else "bins"
    verb = {"remove": "removed", "attenuate": "attenuated"}.get(attack.mode, "changed")
    ax.set(xscale="log", ylim=(-0.02, 1.02),
           xlabel=f"k ({unit} {verb}, most responsible first)",
           ylabel=f"p({attack.target_label})",
           title=f"{attack.domain} attack ({attack.mode}) on {attack.target_label}"
           + (f"  ·  {title(result)}" if result is not None else ""))
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xticks([], minor=True)
    ax.title.set_fontsize(8)
    ax.legend(fontsize=7)
    if result is not None:
        _attack_spectrum(attack, result, axes[1])
    return fig


def _attack_spectrum(attack: AttackResult, result: Result, ax: Any) -> None:
    k = min(max(s.k for s in attack.steps), len(result.ranking))
    removed = getattr(result, "attack_ranking", result.ranking)[:k]
    if result.config.domain == "stft":
        spectrogram_db(ax, result)
        rows, frames = np.unravel_index(removed, result.responsibility.shape)
        c = result.config
        ax.scatter(frames * c.hop / result.sample_rate, rows * result.sample_rate / c.n_fft,
                   s=6, marker="s", color="#d62728", label=f"the {k} cells removed at k = {k}")
        ax.set(xlabel="time (s)", ylabel="frequency (Hz)", title="spectrogram, attacked cells")
    else:
        hz = _hz(result)
        magnitude = result.domain.magnitude()
        db = 20 * np.log10(magnitude / max(float(magnitude.max()), 1e-30) + 1e-12)
        floor = max(float(np.percentile(db[1:], 1)), -120.0)
        ax.plot(hz, db, lw=0.4, color="0.55", label="spectrum")
        ax.vlines(hz[removed], floor, db[removed], color="#d62728", lw=0.7,
                  label=f"the {k} bins removed at k = {k}")
        ax.set(ylabel="dB re strongest bin", ylim=(floor, 5), title="spectrum, attacked bins")
        _log_frequency(ax, result, hz)
    ax.legend(loc="upper right", fontsize=7)


# -- compare ---------------------------------------------------------------------------------

if TYPE_CHECKING:
    from freqrex.comparison import Comparison


def plot_comparison(comparison: Comparison, fig: Figure | None = None) -> Figure:
    """Deletion (left) and insertion (right) curves of every ranking, on one figure.

    The x axis is the number of top-ranked features removed or kept, on a symmetric-log
    scale so that both the first few features and the whole ranking show; the legend gives
    each curve's area over the share of features.
    """
    from freqrex.output.terminal import clip_name

    fig = fig if fig is not None else Figure(figsize=(12, 4.5), layout="constrained")
    left, right = fig.subplots(1, 2, sharey=True)
    for r in comparison.rankings:
        width = 2.2 if r.name == "responsibility" else 1.2
        left.plot(r.ks, r.deletion, lw=width, label=f"{r.name} (area {r.deletion_area:.3f})")
        right.plot(r.ks, r.insertion, lw=width, label=f"{r.name} (area {r.insertion_area:.3f})")
    threshold = comparison.criterion.get("threshold")
    for ax, what in ((left, "deletion: top k removed"), (right, "insertion: top k kept")):
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlim(0, comparison.n_features)
        ax.set_xlabel(f"k (of {comparison.n_features} features)")
        ax.set_title(what)
        if threshold is not None:
            ax.axhline(threshold, color="grey", lw=0.8, ls="--")
        ax.legend(fontsize=8)
    left.set_ylabel(f"p({comparison.target_label})")
    fig.suptitle(f"{clip_name(comparison.source)}  ·  target {comparison.target_label} "
                 f"{comparison.confidence:.3f}  ·  {comparison.domain}  ·  "
                 f"budget {comparison.budget} mutants per ranking (dashed: sufficiency threshold)")
    return fig
