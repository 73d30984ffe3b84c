"""The paper-style table of a data-set evaluation, computed from the results database.

Per domain (fft, stft): mean and median sizes of the sufficient / necessary / complete sets
(in features and as a share of them), flip rates of the k-coefficient attack, the median
SNR of successful attacks, model calls and seconds per clip. Rates are over the clips
explained without error; sizes over the clips where the set was found.

The tables are data and text: a rich table (terminal) and Markdown here; the files (Markdown,
CSV, figures) are written by :mod:`freqrex.output.evaluation`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from freqrex.criterion import KINDS
from freqrex.evaluation.baselines_report import (
    RankingRow,
    ranking_rows,
    rankings_markdown,
    rankings_rich_table,
)
from freqrex.evaluation.redundancy import (
    RedundancyRow,
    redundancy_markdown,
    redundancy_rich_table,
    redundancy_rows,
    run_mode,
    table_ks,
)
from freqrex.evaluation.store import Store

# Kelly & Chockler (arXiv 2601.16675), 30 s clips at 16 kHz (~240,000 rfft bins).
PAPER = {("fft", "flip_rate_k1"): 0.58, ("fft", "flip_rate_k5"): 0.78,
         ("stft", "flip_rate_any"): 0.62}
_PAPER_WHAT = {"fft": "fft", "stft": "stft attack"}
PAPER_NOTE = ("paper: Kelly & Chockler, arXiv 2601.16675, 30 s clips of benchmark data sets "
              "(~240,000 bins); its stft figure is the share of clips its stft attack flipped")
UNITS = {"fft": "bins", "stft": "cells"}

__all__ = ["Metric", "PAPER", "PAPER_NOTE", "Summary", "UNITS", "rich_table", "summarize",
           "to_markdown"]


@dataclass(frozen=True)
class Metric:
    """One number of the table and how many clips it is computed over."""

    value: float | None
    n: int


@dataclass
class Summary:
    """The evaluation table of one results database.

    Attributes
    ----------
    run : dict
        The database's run record: model, data folder, settings.
    clips, ok : int
        Clips recorded, and of which explained without error.
    errors : list of (str, str)
        Clips recorded with an error, and the message.
    domains : list of str
        Domains evaluated.
    ks : list of int
        Attack sizes tried.
    metrics : dict
        ``metrics[domain][name]`` -> :class:`Metric` (``domain`` ``"all"`` for per-clip
        totals).
    sizes : dict
        ``sizes[domain][kind]``: the sizes of the sets found (for the histogram).
    shares : dict
        ``shares[domain][kind]``: the same sets as shares of their clip's features, which
        the histogram shows when the clips differ in length.
    mixed_lengths : dict
        ``mixed_lengths[domain]``: whether the clips have different numbers of features.
    modes : list of str
        Attack modes run. Flip metrics are per mode (``<mode>_flip_rate_k1``...); the
        unprefixed ones (``flip_rate_k1``) are the first mode's.
    redundancy : list of RedundancyRow
        Clips grouped by disjoint sufficient sets found, with their flip rates at
        ``redundancy_ks`` (:mod:`freqrex.evaluation.redundancy`); empty when ``multiple``
        was 1.
    redundancy_ks : list of int
        The attack sizes of that table (1 and 5 where tried).
    rankings : list of RankingRow
        Responsibility against the baselines per domain and ranking
        (:mod:`freqrex.evaluation.baselines_report`); empty unless the run had ``compare``.
    """

    db: str
    run: dict[str, Any]
    clips: int
    ok: int
    errors: list[tuple[str, str]]
    domains: list[str]
    ks: list[int]
    metrics: dict[str, dict[str, Metric]] = field(default_factory=dict)
    sizes: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)
    shares: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)
    mixed_lengths: dict[str, bool] = field(default_factory=dict)
    modes: list[str] = field(default_factory=list)
    redundancy: list[RedundancyRow] = field(default_factory=list)
    redundancy_ks: list[int] = field(default_factory=list)
    rankings: list[RankingRow] = field(default_factory=list)

    def value(self, domain: str, name: str) -> float | None:
        """A metric's value, None when it was not computed or has no clip."""
        m = self.metrics.get(domain, {}).get(name)
        return None if m is None else m.value

    def flip_curve(self, domain: str) -> list[tuple[int, float]]:
        """(k, flip rate) for every ``k`` tried, in the domain."""
        return [(k, v) for k in self.ks
                if (v := self.value(domain, f"flip_rate_k{k}")) is not None]

    def rows(self) -> list[tuple[str, list[str], str]]:
        """The table: (row label, one cell per domain, paper's number) per row."""
        out = []
        for kind in KINDS:
            out.append((f"{kind} set: size, mean / median",
                        [self._size(d, kind) for d in self.domains], ""))
            out.append((f"{kind} set: % of {_unit_names(self.domains)}, mean / median",
                        [self._share(d, kind) for d in self.domains], ""))
        for mode in self.modes or [""]:
            out += self._flip_rows(mode)
        out.append(("model calls per clip, mean",
                    [_num(self.value(d, "model_calls_mean"), ".0f") for d in self.domains], ""))
        out.append(("seconds per clip, mean (in the model)",
                    [self._seconds(d) for d in self.domains], ""))
        return out

    def _flip_rows(self, mode: str) -> list[tuple[str, list[str], str]]:
        """The rows of one attack mode (named in the labels when the run had several; the
        paper's numbers beside the first mode's)."""
        p, ds = f"{mode}_" if mode else "", self.domains
        named = f" ({mode})" if len(self.modes) > 1 else ""
        paper = _paper if not self.modes or mode == self.modes[0] else (lambda _: "")
        out = [(f"flip rate at k = {k}{named}", [self._rate(d, f"{p}flip_rate_k{k}") for d in ds],
                paper(f"flip_rate_k{k}")) for k in (1, 5)]
        out.append((f"flip rate at some k <= {max(self.ks)}{named}",
                    [self._rate(d, f"{p}flip_rate_any") for d in ds], paper("flip_rate_any")))
        out.append((f"target confidence kept at k = 1 / {max(self.ks)}, median{named}",
                    [self._kept(d, p) for d in ds], ""))
        out.append((f"median SNR of successful attacks (dB){named}",
                    [self._snr(d, f"{p}snr_median_db") for d in ds], ""))
        if mode == "gain":
            out.append((f"median gain change of successful attacks (dB){named}",
                        [self._snr(d, f"{p}gain_median_db") for d in ds], ""))
        out.append((f"successful attacks judged inaudible (proxy){named}",
                    [self._rate(d, f"{p}inaudible_share") for d in ds], ""))
        return out

    def __str__(self) -> str:
        """The table as ``freqrex evaluate`` prints it, in plain text (``print(run.summary)``)."""
        import io

        from rich.console import Console

        console = Console(file=io.StringIO(), width=100, color_system=None, highlight=False)
        console.print(rich_table(self))
        console.print(self.totals())
        if (table := redundancy_rich_table(self.redundancy, self.redundancy_ks)) is not None:
            console.print(table)
        if (table := rankings_rich_table(self.rankings)) is not None:
            console.print(table)
        return console.file.getvalue()  # type: ignore[attr-defined]

    def totals(self) -> str:
        """One line: clips, errors and the per-clip cost over all domains."""
        calls, secs = self.value("all", "model_calls_mean"), self.value("all", "seconds_mean")
        text = (f"{self.clips} clips: {self.ok} explained, {len(self.errors)} with errors. "
                "Rates are over the clips explained without error; sizes over the clips where "
                "the set was found.")
        if calls is not None and secs is not None:
            text += (f" Per clip, all domains: {calls:.0f} model calls, {secs:.1f} s "
                     f"({self.value('all', 'seconds_model_mean'):.1f} s in the model).")
        return text

    def _size(self, domain: str, kind: str) -> str:
        mean, median = (self.value(domain, f"{kind}_size_{s}") for s in ("mean", "median"))
        n = self.metrics[domain][f"{kind}_size_mean"].n
        if mean is None:
            return f"not found (0/{self.ok})"
        found = f" (found {n}/{self.ok})" if n < self.ok else ""
        return f"{mean:.1f} / {median:g} {UNITS[domain]}{found}"

    def _share(self, domain: str, kind: str) -> str:
        mean, median = (self.value(domain, f"{kind}_share_{s}") for s in ("mean", "median"))
        if mean is None:
            return "-"
        return f"{_pct(mean)} / {_pct(median)}"

    def _rate(self, domain: str, name: str) -> str:
        m = self.metrics[domain].get(name)
        if m is None:
            return "not run"
        if m.value is None:
            return "-"
        return f"{100 * m.value:.0f}% ({round(m.value * m.n)}/{m.n})"

    def _kept(self, domain: str, prefix: str = "") -> str:
        low, high = (self.value(domain, f"{prefix}confidence_kept_k{k}")
                     for k in (1, max(self.ks)))
        def show(v: float | None) -> str:
            return "-" if v is None else f"{100 * v:.1f}%"

        return f"{show(low)} / {show(high)}"

    def _snr(self, domain: str, name: str = "snr_median_db") -> str:
        m = self.metrics[domain].get(name)
        return "-" if m is None or m.value is None else f"{m.value:.1f} ({m.n} clips)"

    def _seconds(self, domain: str) -> str:
        total, model = (self.value(domain, n) for n in ("seconds_mean", "seconds_model_mean"))
        return "-" if total is None else f"{total:.2f} ({model:.2f})"


# -- computing -----------------------------------------------------------------------------


def summarize(db: str | os.PathLike | Store) -> Summary:
    """Compute the evaluation table from a results database.

    Parameters
    ----------
    db : str, path or Store
        The database written by :func:`freqrex.evaluate`.

    Returns
    -------
    Summary
    """
    if not isinstance(db, Store):
        with Store(db) as store:
            return summarize(store)
    run = db.run()
    settings = run["settings"]
    clips = db.clips()
    ok = [c for c in clips if c["status"] == "ok"]
    summary = Summary(db=str(db.path), run=run, clips=len(clips), ok=len(ok),
                      errors=[(c["clip"], c["error"]) for c in clips if c["status"] == "error"],
                      domains=list(settings["domains"]), ks=list(settings["ks"]),
                      modes=list(settings["modes"]))
    attacks = db.attacks()
    for domain in summary.domains:
        summary.metrics[domain], summary.sizes[domain], summary.shares[domain] = (
            _domain_metrics(domain, ok))
        for i, mode in enumerate(summary.modes):
            flips = _flip_metrics(ok, [a for a in attacks
                                       if a["domain"] == domain and a["mode"] == mode],
                                  summary.ks)
            summary.metrics[domain].update({f"{mode}_{n}": m for n, m in flips.items()})
            if i == 0:
                summary.metrics[domain].update(flips)
        summary.mixed_lengths[domain] = len({c[f"{domain}_n_features"] for c in ok}) > 1
    summary.redundancy_ks = table_ks(summary.ks)
    summary.redundancy = redundancy_rows(ok, attacks, summary.domains, summary.redundancy_ks,
                                         run_mode(settings))
    summary.rankings = ranking_rows(db.baselines(), summary.domains)
    summary.metrics["all"] = {
        "clips": Metric(float(len(clips)), len(clips)),
        "ok": Metric(float(len(ok)), len(clips)),
        "errors": Metric(float(len(clips) - len(ok)), len(clips)),
        **{f"{name}_mean": _mean([c[name] for c in ok])
           for name in ("model_calls", "seconds", "seconds_model")}}
    return summary


def _domain_metrics(domain: str, ok: list[dict],
                    ) -> tuple[dict[str, Metric], dict[str, np.ndarray], dict[str, np.ndarray]]:
    out: dict[str, Metric] = {}
    sizes, shares = {}, {}
    for kind in KINDS:
        found = [c for c in ok if c[f"{domain}_{kind}_found"]]
        size = np.array([c[f"{domain}_{kind}_size"] for c in found], dtype=np.float64)
        share = np.array([c[f"{domain}_{kind}_share"] for c in found], dtype=np.float64)
        sizes[kind], shares[kind] = size, share
        out[f"{kind}_found"] = _rate(len(found), len(ok))
        out[f"{kind}_verified"] = _rate(sum(bool(c[f"{domain}_{kind}_verified"]) for c in found),
                                        len(ok))
        out[f"{kind}_size_mean"], out[f"{kind}_size_median"] = _mean(size), _median(size)
        out[f"{kind}_share_mean"], out[f"{kind}_share_median"] = _mean(share), _median(share)
    for name in ("model_calls", "seconds", "seconds_model"):
        out[f"{name}_mean"] = _mean([c[f"{domain}_{name}"] for c in ok])
    return out, sizes, shares


def _flip_metrics(ok: list[dict], attacks: list[dict], ks: list[int]) -> dict[str, Metric]:
    """Flip rates, confidence kept, and the SNR, change and inaudible share of the first
    flip per clip, from the attack rows of one domain and mode."""
    out: dict[str, Metric] = {}
    ok_clips = {c["clip"] for c in ok}
    flipped = {(a["clip"], a["k"]) for a in attacks if a["flipped"] and a["clip"] in ok_clips}
    for k in ks:
        out[f"flip_rate_k{k}"] = _rate(sum((c, k) in flipped for c in ok_clips), len(ok))
    # how much of its confidence the target keeps after each attack (telling when none flips)
    original = {c["clip"]: c["confidence"] for c in ok}
    for k in ks:
        out[f"confidence_kept_k{k}"] = _median(
            [a["target_confidence"] / original[a["clip"]] for a in attacks
             if a["k"] == k and a["clip"] in ok_clips and original[a["clip"]] > 0])
    first = _first_flips(attacks, ok_clips)
    out["flip_rate_any"] = _rate(len(first), len(ok))
    snr = np.array([a["snr_db"] for a in first.values()], dtype=np.float64)
    out["snr_median_db"] = _median(snr[np.isfinite(snr)])
    gains = [abs(a["gain_db"]) for a in first.values() if a["gain_db"] is not None]
    out["gain_median_db"] = _median(gains)
    heard = [a["inaudible"] for a in first.values() if a["inaudible"] is not None]
    out["inaudible_share"] = _rate(sum(bool(v) for v in heard), len(heard))
    return out


def _first_flips(attacks: list[dict], clips: set[str]) -> dict[str, dict]:
    """Per clip, its attack step with the smallest ``k`` that flipped the class."""
    first: dict[str, dict] = {}
    for a in attacks:  # one mode's, ordered by clip and k
        if a["flipped"] and a["clip"] in clips and a["clip"] not in first:
            first[a["clip"]] = a
    return first


def _rate(hits: int, n: int) -> Metric:
    return Metric(hits / n if n else None, n)


def _mean(values: Any) -> Metric:
    a = np.asarray([v for v in values if v is not None], dtype=np.float64)
    return Metric(float(a.mean()) if a.size else None, int(a.size))


def _median(values: Any) -> Metric:
    a = np.asarray(values, dtype=np.float64)
    return Metric(float(np.median(a)) if a.size else None, int(a.size))


# -- formatting ----------------------------------------------------------------------------


def _unit_names(domains: list[str]) -> str:
    return " / ".join(UNITS[d] for d in domains)


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.3g}%"


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _paper(name: str) -> str:
    hits = [f"{100 * v:.0f}% ({_PAPER_WHAT[d]})" for (d, n), v in PAPER.items() if n == name]
    return ", ".join(hits)


def to_markdown(summary: Summary, figures: bool = True) -> str:
    """The report as Markdown: header, table, paper comparison, errors, figures."""
    s = summary.run["settings"]
    lines = [
        "# freqrex evaluation", "",
        f"- model: `{summary.run['model']}`",
        f"- data: `{summary.run['data_dir']}`; results: `{summary.db}`",
        f"- settings: iterations {s['iterations']}, search limit {s['search_limit']}, seed "
        f"{s['seed']}, domains {', '.join(summary.domains)}, attack {', '.join(s['modes'])} k = "
        f"{', '.join(map(str, summary.ks))}",
        "", summary.totals(), "",
        "| | " + " | ".join(summary.domains) + " | paper |",
        "|---|" + "---|" * len(summary.domains) + "---|",
    ]
    lines += [f"| {label} | " + " | ".join(cells) + f" | {paper} |"
              for label, cells, paper in summary.rows()]
    lines += ["", f"({PAPER_NOTE}.)"]
    if summary.redundancy:
        lines += ["", *redundancy_markdown(summary.redundancy, summary.redundancy_ks)]
    if summary.rankings:
        lines += ["", *rankings_markdown(summary.rankings)]
    if summary.errors:
        lines += ["", f"## Errors ({len(summary.errors)})", ""]
        lines += [f"- `{clip}`: {message}" for clip, message in summary.errors[:50]]
        if len(summary.errors) > 50:
            lines.append(f"- ... and {len(summary.errors) - 50} more (see the database)")
    if figures:
        lines += ["", "![flip rate against k](flip_rate.png)", "",
                  "![explanation sizes](sizes.png)"]
    return "\n".join(lines) + "\n"


def rich_table(summary: Summary) -> Any:
    """The table for the terminal (a :class:`rich.table.Table`)."""
    from rich.table import Table

    table = Table(title="freqrex evaluation")
    table.add_column("")
    for domain in summary.domains:
        table.add_column(domain)
    table.add_column("paper")
    for label, cells, paper in summary.rows():
        table.add_row(label, *cells, paper)
    return table
