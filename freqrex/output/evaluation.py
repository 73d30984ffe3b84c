"""The files of a data-set evaluation report: Markdown, CSV and two PNG figures.

The numbers and texts come from :mod:`freqrex.evaluation.report`; this module only writes
them. Each file is written to a temporary sibling and renamed, so a reader never sees half
a file. Figures are drawn on :class:`matplotlib.figure.Figure` objects (no pyplot, no
backend switch), take ``ax=`` and return the figure.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from freqrex.criterion import KINDS
from freqrex.errors import OutputError
from freqrex.evaluation.baselines_report import RankingRow
from freqrex.evaluation.report import PAPER, UNITS, Summary, to_markdown

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["flip_rate_figure", "sizes_figure", "write_csv", "write_markdown", "write_plots",
           "write_report"]

_DPI = 110


def write_report(summary: Summary, report: str | os.PathLike | None = None,
                 csv_path: str | os.PathLike | None = None, plots: bool = True) -> list[Path]:
    """Write the Markdown report (with its figures next to it) and the CSV.

    Parameters
    ----------
    summary : Summary
        The table, from :func:`freqrex.evaluation.summarize`.
    report : path, optional
        The Markdown file; ``flip_rate.png`` and ``sizes.png`` go in the same folder.
    csv_path : path, optional
        The CSV file; by default the report's name with ``.csv``.
    plots : bool
        Draw the two figures (and link them from the report).

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    OutputError
        When ``report`` is a folder.

    Examples
    --------
    >>> from freqrex.evaluation import summarize
    >>> write_report(summarize("results.sqlite"), "report/report.md")  # doctest: +SKIP
    """
    written = []
    if report is not None:
        report = Path(report)
        if report.is_dir():
            raise OutputError(f"report {report} is a directory; give a file name such as "
                              f"{report / 'report.md'}")
        if plots:
            written += write_plots(summary, report.parent)
        written.append(write_markdown(summary, report, figures=plots))
        csv_path = csv_path if csv_path is not None else report.with_suffix(".csv")
    if csv_path is not None:
        written.append(write_csv(summary, csv_path))
    return written


def write_markdown(summary: Summary, path: str | os.PathLike, figures: bool = True) -> Path:
    """Write the Markdown report (:func:`freqrex.evaluation.to_markdown`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(to_markdown(summary, figures))
    os.replace(tmp, path)
    return path


def write_csv(summary: Summary, path: str | os.PathLike) -> Path:
    """Write every metric as ``domain,metric,value,n`` (``value`` empty when undefined).

    With ``multiple > 1``, the redundancy table too: metric
    ``sets_<group>_<mode>_flip_rate_k<k>``, ``n`` the clips of the group. With ``compare``,
    the rankings table: ``ranking_<ranking>_<kind>_size_median`` (``_share_median``; ``n``
    the clips where found), ``..._deletion_area_median``, ``..._insertion_area_median``
    and ``..._sufficient_smallest_rate`` (``n`` the clips where some ranking found one).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["domain", "metric", "value", "n"])
        for domain, metrics in summary.metrics.items():
            for name, m in metrics.items():
                writer.writerow([domain, name, "" if m.value is None else repr(m.value), m.n])
        for r in summary.redundancy:
            for k in summary.redundancy_ks:
                rate = r.rate(k)
                writer.writerow([r.domain, f"sets_{r.group}_{r.mode}_flip_rate_k{k}",
                                 "" if rate is None else repr(rate), r.clips])
        for row in summary.rankings:
            writer.writerows([row.domain, f"ranking_{row.ranking}_{name}",
                              "" if value is None else repr(value), n]
                             for name, value, n in _ranking_metrics(row))
    os.replace(tmp, path)
    return path


def _ranking_metrics(row: RankingRow) -> list[tuple[str, float | None, int]]:
    """(name, value, n) of one row of the rankings table."""
    out = []
    for kind in KINDS:
        out += [(f"{kind}_size_median", row.size.get(kind), row.found.get(kind, 0)),
                (f"{kind}_share_median", row.share.get(kind), row.found.get(kind, 0))]
    return out + [("deletion_area_median", row.deletion_area, row.clips),
                  ("insertion_area_median", row.insertion_area, row.clips),
                  ("sufficient_smallest_rate", row.smallest_rate, row.contested)]


def write_plots(summary: Summary, folder: str | os.PathLike) -> list[Path]:
    """Write ``flip_rate.png`` (flip rate against k) and ``sizes.png`` (set sizes)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "flip_rate.png", folder / "sizes.png"]
    flip_rate_figure(summary).savefig(paths[0], dpi=_DPI)
    sizes_figure(summary).savefig(paths[1], dpi=_DPI)
    return paths


def flip_rate_figure(summary: Summary, ax: Any = None) -> Figure:
    """Share of clips flipped against ``k``, per domain, with the paper's numbers."""
    fig, ax = _axes(ax, (6, 4))
    # Distinct markers and line styles, and stft nudged right, so that coinciding curves (two
    # domains that never flip lie on the same zero line) both stay visible.
    styles = {"fft": ("o", "-", 1.0), "stft": ("s", "--", 1.06)}
    for domain in summary.domains:
        curve = summary.flip_curve(domain)
        if curve:
            ks, rates = zip(*curve)
            marker, line, nudge = styles.get(domain, ("^", ":", 0.94))
            ax.plot([k * nudge for k in ks], [100 * r for r in rates], marker=marker, ls=line,
                    mfc="none", label=f"{domain} (this run)")
    fft = sorted((int(name.removeprefix("flip_rate_k")), value)
                 for (domain, name), value in PAPER.items()
                 if domain == "fft" and name.startswith("flip_rate_k"))
    ax.plot([k for k, _ in fft], [100 * v for _, v in fft], "k*", ms=10, ls="none",
            label="paper, fft")
    ax.axhline(100 * PAPER[("stft", "flip_rate_any")], color="0.5", ls=":",
               label="paper, stft attack")
    ax.set(xscale="log", xlabel="k (coefficients changed)", ylabel="clips flipped (%)",
           ylim=(-2, 100), title=f"flip rate over {summary.ok} clips")
    if summary.ks:
        ax.set_xticks(summary.ks, [str(k) for k in summary.ks])
        ax.set_xticks([], minor=True)
    ax.legend(fontsize=8)
    return fig


def sizes_figure(summary: Summary, axes: Any = None) -> Figure:
    """Histograms of the explanation sizes, one panel per domain (``axes``: one per domain)."""
    if axes is None:
        from matplotlib.figure import Figure

        n = len(summary.domains)
        fig = Figure(figsize=(5 * n, 3.6), layout="constrained")
        axes = list(fig.subplots(1, n, squeeze=False)[0])
    else:
        axes = list(np.ravel(axes))
        fig = axes[0].figure
    for ax, domain in zip(axes, summary.domains):
        _plot_sizes(ax, summary, domain)
    return fig


def _plot_sizes(ax: Any, summary: Summary, domain: str) -> None:
    # Clips of different lengths have incomparable sizes: their shares are comparable.
    mixed = summary.mixed_lengths.get(domain, False)
    table = summary.shares if mixed else summary.sizes
    scale, unit = (100.0, f"% of {UNITS[domain]}") if mixed else (1.0, UNITS[domain])
    sizes = {kind: scale * v for kind, v in table.get(domain, {}).items()}
    positive = [v[v > 0] for v in sizes.values() if v.size]
    top = max((float(v.max()) for v in positive if v.size), default=1.0)
    low = min((float(v.min()) for v in positive if v.size), default=1.0)
    bottom = math.log10(low) - 0.05 if mixed else 0.0
    edges = np.logspace(bottom, max(math.log10(max(top, 2.0)), bottom + 0.3) + 0.05, 25)
    for kind in KINDS:
        values = sizes.get(kind, np.empty(0))
        if values.size:
            ax.hist(values, bins=edges, histtype="step", lw=1.5,
                    label=f"{kind} (median {np.median(values):.3g})")
    what = "shares (clips differ in length)" if mixed else "sizes"
    ax.set(xscale="log", xlabel=f"size ({unit})", ylabel="clips",
           title=f"{domain} explanation {what}")
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts of clips: whole numbers
    ax.legend(fontsize=8)


def _axes(ax: Any, figsize: tuple[float, float]) -> tuple[Figure, Any]:
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()
