"""What the command line shows: result tables and progress displays (rich, on a console)."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from freqrex.explanation import Result
    from freqrex.manipulation import AttackResult

# Piped output gets a fixed, wide layout instead of rich's 80-column fallback.
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 120)
out = Console(highlight=False, width=None if sys.stdout.isatty() else 120)


def clip_name(source: str | None) -> str:
    """How a clip is named to the user: its path, or which bundled example it is."""
    from freqrex import examples

    if source is None:
        return "a waveform array"
    path = Path(source)
    bundled = {p.resolve() for p in examples.example_clips()}
    return f"bundled example: {path.stem}" if path.resolve() in bundled else str(source)


def model_name(info: dict[str, Any]) -> str:
    """How a model is named to the user: its file, the bundled one, or a Python model."""
    from freqrex import examples

    source = info.get("source")
    if source is None:
        return f"a Python model ({info.get('provider', 'python')})"
    name = ("bundled reference model"
            if Path(source).resolve() == examples.reference_model().resolve() else str(source))
    if info.get("cuda_fallback"):
        name += " (on the CPU: CUDA did not start)"
    return name


def hz_decimals(bin_hz: float) -> int:
    """Decimals that keep neighbouring bins apart (0.25 Hz bins: 1 decimal, 31 Hz: none)."""
    return max(0, math.ceil(-math.log10(bin_hz))) if bin_hz > 0 else 0


def hz_ranges(ranges: list[tuple[float, float]], most: int = 4, decimals: int = 0) -> str:
    """``"218-686, 722.5, 836-838 (+4 more)"``: non-overlapping ranges in Hz, rounded to
    ``decimals`` (choose it with :func:`hz_decimals` so that adjacent ranges stay apart).
    """
    def one(lo: float, hi: float) -> str:
        a, b = f"{lo:.{decimals}f}", f"{hi:.{decimals}f}"
        return a if a == b else f"{a}-{b}"

    text = ", ".join(one(lo, hi) for lo, hi in ranges[:most])
    return text + (f" (+{len(ranges) - most} more)" if len(ranges) > most else "")


def bin_hz(result: Result) -> float:
    """Width of one frequency bin (rfft) or STFT row, in Hz."""
    n = result.config.n_fft if result.config.domain == "stft" else result.audio.shape[0]
    return result.sample_rate / n


def removal_verdict(result: Result) -> str | None:
    """Why removing the necessary set counts: ``"guitar 0.61, class changed"``."""
    e = result.necessary
    if not e.found or e.removed is None:
        return None
    r = e.removed
    threshold = result.config.confidence_filter * result.confidence
    if r.class_index != result.target:
        why = "class changed"
    elif r.target_confidence < threshold:
        return f"{r.label} {r.confidence:.3f} < {threshold:.3f}"
    else:
        why = f"{result.target_label} still passes"
    return f"{r.label} {r.confidence:.3f}, {why}"


def header_lines(result: Result) -> list[str]:
    """What was explained, by which model, for which class, and the pass rule."""
    p, c = result.prediction, result.config
    top = ("the model's top class" if p.class_index == result.target
           else f"given; the model's top class is {p.label} {p.confidence:.3f}")
    seconds = result.audio.shape[0] / result.sample_rate
    threshold = c.confidence_filter * result.confidence
    lines = [
        f"[bold]clip[/]    {clip_name(result.source)} ({seconds:.2f} s at "
        f"{result.sample_rate} Hz, {result.n_features} {c.domain} {result.unit})",
        f"[bold]model[/]   {model_name(result.model_info)}",
        f"[bold]target[/]  {result.target_label} (class {result.target}, {top}), "
        f"confidence {result.confidence:.3f}",
        f"[bold]passes[/]  when the top class is {result.target_label} with confidence >= "
        f"{threshold:.3f} ({c.confidence_filter:g} x {result.confidence:.3f})",
    ]
    if p.class_index != result.target and not getattr(result, "warnings", None):
        lines.append(f"[yellow]note:[/] {result.target_label} is not the model's top class on "
                     f"this clip ({p.label} is); a set passes only if it makes "
                     f"{result.target_label} the top class")
    return lines


def same_as(result: Result, kind: str) -> str | None:
    """The earlier set this one is identical to, if any (e.g. complete = necessary)."""
    e = result.explanations[kind]
    for other, o in result.explanations.items():
        if other == kind:
            return None
        if e.found and o.found and o.size == e.size and np.array_equal(o.bins, e.bins):
            return other
    return None


def result_table(result: Result) -> Table:
    """The three explanations, narrow enough for 80 columns (Hz ranges are printed below)."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column, justify in (("set", "left"), (result.unit, "right"), ("% " + result.unit,
                            "right"), ("% energy", "right"), ("model says", "left"),
                            ("verified", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for kind, e in result.explanations.items():
        if not e.found or e.prediction is None:
            table.add_row(kind, "-", "", "", "not found", "")
            continue
        same = same_as(result, kind)
        says = f"{e.prediction.label} {e.prediction.confidence:.3f}"
        if kind == "necessary" and (verdict := removal_verdict(result)):
            says += f"\n[dim]without:[/] {verdict}"
        table.add_row(kind, str(e.size), _percent(e.share_bins), f"{100 * e.share_energy:.1f}",
                      says, ("yes" if e.verified else "[red]no[/]")
                      + (f"\n(= {same})" if same else ""))
    return table


def multiple_table(result: Result, most: int = 2) -> Table:
    """The disjoint sufficient sets (``multiple > 1``): one row each, then the redundancy."""
    red = result.redundancy or {}
    decimals = hz_decimals(bin_hz(result))
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False,
                  title=f"{red.get('sets', 0)} disjoint sufficient set(s)",
                  caption=(f"union: {_percent(red.get('union_share_features', 0.0))}% of "
                           f"{result.unit}, {100 * red.get('union_share_energy', 0.0):.1f}% "
                           f"of energy; stopped: {red.get('reason', '')}"))
    for column, justify in (("#", "right"), (result.unit, "right"), ("% energy", "right"),
                            ("Hz", "left"), ("model says", "left"), ("ok", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for i, e in enumerate(result.explanations_multi, 1):
        says = f"{e.prediction.label} {e.prediction.confidence:.3f}" if e.prediction else "-"
        ok = ("yes" if e.verified else "[red]no[/]") + ("" if e.minimal else " (not minimal)")
        where = hz_ranges(e.hz_ranges, most, decimals)
        if result.config.domain == "stft" and e.time_ranges:
            where += "\n" + ", ".join(f"{a:.2f}-{b:.2f} s" for a, b in e.time_ranges[:most])
        table.add_row(str(i), str(e.size), f"{100 * e.share_energy:.1f}", where, says, ok)
    return table


def hz_lines(result: Result, most: int = 4) -> list[str]:
    """One line per found set: its Hz ranges, at the precision of one bin."""
    width = bin_hz(result)
    decimals = hz_decimals(width)
    lines = [f"[bold]Hz ranges[/] ({width:g} Hz per {result.unit[:-1]})"]
    for kind, e in result.explanations.items():
        if e.found:
            same = same_as(result, kind)
            text = f"same as {same}" if same else hz_ranges(e.hz_ranges, most, decimals)
            lines.append(f"  {kind:<11} {text}")
    return lines


def _percent(share: float) -> str:
    """Three significant digits, so 34 of 32 001 bins reads 0.106, not 0.0000 or 0.1062."""
    value = 100 * share
    return f"{value:.3g}" if value < 100 else "100"


def print_result(result: Result, console: Console, out_dir: Path | None) -> None:
    """What was explained, the three explanations as a table, and what the run cost."""
    c = console
    for line in header_lines(result):
        c.print(line, width=min(c.width, 80))
    c.print(result_table(result), width=min(c.width, 80))
    for line in hz_lines(result):
        c.print(line, width=min(c.width, 80))
    if result.redundancy is not None:
        c.print(multiple_table(result), width=min(c.width, 80))
    s = result.stats
    c.print(f"{s.model_calls} model calls ({s.mutants} waveforms), {s.seconds_total:.2f} s "
            f"total, {s.seconds_model:.2f} s in model inference")
    if out_dir is not None:
        c.print(f"written to {out_dir}/ (explanation.json, WAVs, figure; open report.html to "
                "listen)", width=min(c.width, 80))


def attack_verdict(r: AttackResult) -> str:
    """One line: the first flipping k, the new class, gain and SNR; or how far it held."""
    first, mode = r.first_flip, f" ({r.mode})" if r.mode != "remove" else ""
    if first is None:
        last = r.steps[-1]
        return (f"{r.domain}{mode}: no {'success' if r.targeted else 'flip'} up to k = "
                f"{last.k}; {r.target_label} {'reaches' if r.targeted else 'keeps'} "
                f"{last.prediction.target_confidence:.3f} there")
    gain = f", gain {_db(first.gain_db)} dB" if r.mode in ("gain", "amplify") else ""
    text = (f"{r.domain}{mode}: " + (f"puts {r.target_label} on top at k = {first.k}"
            if r.targeted else f"flips at k = {first.k} to {first.prediction.label}")
            + f" {first.prediction.confidence:.3f}{gain}, SNR {first.snr_db:.1f} dB")
    if first.inaudible is not None:
        text += ", inaudible (proxy)" if first.inaudible else ""
    later = [s for s in r.steps if s.k > first.k]
    back = [s.k for s in later if not s.flipped]
    if back:
        text += (f"; [yellow]does not persist[/]: "
                 f"{'another class' if r.targeted else r.target_label} is on top again at "
                 f"k = {', '.join(map(str, back))}")
    return text


def _db(value: float | None) -> str:
    return "-" if value is None else ("remove" if value == -math.inf else f"{value:+.2f}")


def print_attacks(results: dict[str, AttackResult], console: Console) -> None:
    """One table per attack (domain and mode: each k, what the model says, the change's
    gain, SNR and perceptual proxy), then a one-line verdict per attack.
    """
    for r in results.values():
        aim = f"to {r.target_label}" if r.targeted else f"on {r.target_label}"
        table = Table(title=f"{r.domain} attack ({r.mode}) {aim}", box=box.SIMPLE_HEAD,
                      pad_edge=False)
        short = any(s.touched < s.k for s in r.steps)
        sets = any(s.touches_sets for s in r.steps)
        gained = r.mode not in ("remove", "set")
        columns = ["k", *(["touched"] if short else []), "flipped", "model says",
                   "target", *(["gain"] if gained else []), "SNR", "segSNR", "NMR",
                   *(["sets"] if sets else [])]
        for column in columns:
            table.add_column(column, justify="left" if column == "model says" else "right")
        for s in r.steps:
            nmr = "-" if s.mask_ratio_db is None else (
                f"{max(s.mask_ratio_db, -99.0):.1f}" + ("" if s.inaudible else "!"))
            table.add_row(str(s.k), *([str(s.touched)] if short else []),
                          "[red]yes[/]" if s.flipped else "no",
                          f"{s.prediction.label} {s.prediction.confidence:.3f}",
                          f"{s.prediction.target_confidence:.3f}",
                          *([_db(s.gain_db)] if gained else []), f"{s.snr_db:.1f}",
                          "-" if s.seg_snr_db is None else f"{s.seg_snr_db:.1f}", nmr,
                          *([",".join(str(i + 1) for i in s.touches_sets)] if sets else []))
        console.print(table, width=min(console.width, 80))
    if any(s.mask_ratio_db is not None for r in results.values() for s in r.steps):
        console.print("dB throughout. NMR: worst perturbation-to-mask ratio over Bark bands "
                      "and frames; ! above 0, likely audible (a proxy, not a listening test)",
                      width=min(console.width, 80), style="dim")
    for r in results.values():
        console.print(attack_verdict(r), width=min(console.width, 80))


def print_description(description: dict[str, Any], console: Console) -> None:
    """A model's description (``freqrex info``) as a two-column table."""
    table = Table(show_header=False, box=None)
    for key, value in description.items():
        table.add_row(f"[bold]{key}[/]", _plain(value))
    console.print(table)


def _plain(value: Any) -> str:
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return "; ".join(", ".join(f"{k}={v}" for k, v in item.items()) for item in value)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


class StageProgress:
    """A rich bar per stage on stderr, fed by ``progress(stage, done, total)``."""

    def __init__(self, quiet: bool) -> None:
        # A live bar only makes sense on a terminal; piped stderr gets clean lines.
        self.quiet = quiet or not err.is_terminal
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(),
                            TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                            console=err, transient=True)
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> Any:
        if self.quiet:
            return None
        self.bar.start()
        return self.update

    def __exit__(self, *exc: Any) -> None:
        if not self.quiet:
            self.bar.stop()

    def update(self, stage: str, done: int, total: int) -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.bar.add_task(stage, total=total)
        self.bar.update(self.tasks[stage], completed=done, total=total)


class _Live(ProgressColumn):
    """A column recomputed at every refresh from the clip counts, so rate and ETA move while
    a clip runs instead of freezing between finished clips.
    """

    def __init__(self, progress: ClipProgress) -> None:
        super().__init__()
        self.progress = progress

    def render(self, task: Any) -> Text:
        return Text(self.progress.rate_text())


class ClipProgress:
    """Clips finished / total with a live rate and ETA: a rich bar on a terminal, else one
    line per finished clip.
    """

    def __init__(self, quiet: bool) -> None:
        self.quiet, self.live = quiet, not quiet and err.is_terminal
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), _Live(self), console=err, transient=True)
        self.task: Any = None
        self.stored = 0
        self.started = 0.0
        self.done, self.total = 0, 0

    def __enter__(self) -> ClipProgress:
        self.started = time.perf_counter()
        if self.live:
            self.bar.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live:
            self.bar.stop()

    def rate(self) -> tuple[float, float]:
        """Clips per minute finished in this run, and the seconds left at that rate (NaN
        before the first clip finishes).
        """
        elapsed = time.perf_counter() - self.started
        if self.stored == 0 or elapsed <= 0:
            return 0.0, float("nan")
        per_second = self.stored / elapsed
        return 60 * per_second, (self.total - self.done) / per_second

    def rate_text(self) -> str:
        per_minute, eta = self.rate()
        if not math.isfinite(eta):
            return "first clips running..."
        return f"{per_minute:.1f} clips/min, ETA {_duration(eta)}"

    def update(self, stage: str, done: int, total: int) -> None:
        """``progress(stage, done, total)``: the first call counts clips done by earlier runs."""
        if self.task is None and self.live:
            self.task = self.bar.add_task("clips", total=total, completed=done)
        self.done, self.total = done, total
        if self.live:
            self.bar.update(self.task, completed=done, total=total)

    def clip(self, record: Any) -> None:
        """One stored clip: say it failed, move the bar, or print a line when piped."""
        self.stored += 1
        if record.status == "error" and not self.quiet:
            err.print(f"[yellow]clip failed:[/] {record.clip}: {record.error}", soft_wrap=True)
        if self.live:
            self.bar.update(self.task, completed=self.done)
        elif not self.quiet:
            err.print(f"[{self.done}/{self.total}] {record.clip}: {record.status}, "
                      f"{record.seconds or 0:.1f} s; {self.rate_text()}", soft_wrap=True)


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds} s"


# -- compare ---------------------------------------------------------------------------------

if TYPE_CHECKING:
    from freqrex.comparison import Comparison


def comparison_table(comparison: Comparison) -> Table:
    """One row per ranking: smallest prefix per kind (``*``: proven smallest), curve areas."""
    table = Table(box=box.SIMPLE_HEAD)
    for name in ("ranking", "mutants", "sufficient", "necessary", "complete",
                 "deletion area (low: better)", "insertion area (high: better)"):
        table.add_column(name, justify="left" if name == "ranking" else "right")

    def size(r: Any, kind: str) -> str:
        k = r.sizes[kind]
        return "not found" if k is None else f"{k}{'*' if r.proven[kind] else ''}"

    for r in comparison.rankings:
        table.add_row(r.name, str(r.mutants), *(size(r, kind) for kind in
                                                ("sufficient", "necessary", "complete")),
                      f"{r.deletion_area:.4f}", f"{r.insertion_area:.4f}")
    return table


def print_comparison(comparison: Comparison, console: Console, out_dir: Path | None) -> None:
    """The comparison as the command line shows it."""
    console.print(f"{clip_name(comparison.source)}: target {comparison.target_label} "
                  f"({comparison.confidence:.3f}), {comparison.n_features} features "
                  f"({comparison.domain}), rule {comparison.criterion.get('necessary_rule')}")
    for note in comparison.warnings:
        console.print(f"[yellow]warning:[/] {note}")
    console.print(comparison_table(comparison))
    console.print("sizes are smallest prefixes of each ranking (* proven smallest); "
                  f"each ranking spent at most {comparison.budget} mutants")
    if out_dir is not None:
        console.print(f"wrote {out_dir}/compare.json and compare.png")


def as_text(obj: Any, width: int = 80) -> str:
    """What the command line would print for a Result or an AttackResult, as plain text
    (for ``print(result)`` in a script or notebook).
    """
    import io

    console = Console(file=io.StringIO(), width=width, highlight=False, color_system=None,
                      force_terminal=False)
    # Told apart by shape, not by class: importing manipulation here would close a cycle.
    if hasattr(obj, "steps") and hasattr(obj, "first_flip"):
        print_attacks({obj.domain: obj}, console)
    else:
        print_result(obj, console, None)
    return console.file.getvalue().rstrip() + "\n"  # type: ignore[attr-defined]
