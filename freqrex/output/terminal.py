"""What the command line shows: result tables and progress displays (rich, on a console)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

if TYPE_CHECKING:
    from freqrex.explanation import Result
    from freqrex.manipulation import AttackResult

# Piped output gets a fixed, wide layout instead of rich's 80-column fallback.
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 120)
out = Console(highlight=False, width=None if sys.stdout.isatty() else 120)


def print_result(result: Result, console: Console, out_dir: Path | None) -> None:
    """The target, the three explanations as a table, and what the run cost."""
    c = console
    c.print(f"[bold]target[/]: {result.target_label} (class {result.target}), "
            f"confidence {result.confidence:.3f}; clip {result.audio.shape[0]} samples at "
            f"{result.sample_rate} Hz, {result.n_features} {result.config.domain} "
            f"{result.unit}")
    table = Table()
    for column in ("explanation", result.unit, f"% {result.unit}", "% energy", "Hz ranges",
                   "model says", "verified"):
        table.add_column(column)
    for kind, e in result.explanations.items():
        if not e.found or e.prediction is None:
            table.add_row(kind, "not found", "", "", "", "", "")
            continue
        says = f"{e.prediction.label} {e.prediction.confidence:.3f}"
        if e.removed is not None:
            says += f" (without: {e.removed.label} {e.removed.confidence:.3f})"
        table.add_row(kind, str(e.size), f"{100 * e.share_bins:.4f}",
                      f"{100 * e.share_energy:.2f}", hz_ranges(e.hz_ranges), says,
                      "yes" if e.verified else "[red]no[/]")
    c.print(table)
    s = result.stats
    c.print(f"{s.model_calls} model calls ({s.mutants} waveforms), {s.seconds_total:.2f} s "
            f"total, {s.seconds_model:.2f} s in model inference")
    if out_dir is not None:
        c.print(f"written to {out_dir}/")


def hz_ranges(ranges: list[tuple[float, float]], most: int = 4) -> str:
    text = ", ".join(f"{lo:.0f}" if hi - lo < 1 else f"{lo:.0f}-{hi:.0f}"
                     for lo, hi in ranges[:most])
    return text + (f" (+{len(ranges) - most} more)" if len(ranges) > most else "")


def print_attacks(results: dict[str, AttackResult], console: Console) -> None:
    """One table per attacked domain: each k, what the model says, the SNR."""
    for name, r in results.items():
        table = Table(title=f"{name} attack ({r.mode}) on {r.target_label}")
        for column in ("k", "touched", "flipped", "model says", "target conf.", "SNR dB"):
            table.add_column(column)
        for s in r.steps:
            table.add_row(str(s.k), str(s.touched), "[red]yes[/]" if s.flipped else "no",
                          f"{s.prediction.label} {s.prediction.confidence:.3f}",
                          f"{s.prediction.target_confidence:.3f}", f"{s.snr_db:.1f}")
        console.print(table)


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


class ClipProgress:
    """Clips done / total, rate and ETA: a rich bar on a terminal, else one line per clip."""

    def __init__(self, quiet: bool) -> None:
        self.quiet, self.live = quiet, not quiet and err.is_terminal
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                            TextColumn("ETA"), TimeRemainingColumn(), console=err,
                            transient=True, speed_estimate_period=3600)
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

    def update(self, stage: str, done: int, total: int) -> None:
        """``progress(stage, done, total)``: the first call counts clips done by earlier runs."""
        if self.task is None and self.live:
            self.task = self.bar.add_task("evaluating", total=total, completed=done, rate="")
        self.done, self.total = done, total

    def clip(self, record: Any) -> None:
        """One stored clip: say it failed, move the bar, or print a line when piped."""
        self.stored += 1
        elapsed = time.perf_counter() - self.started
        rate = self.stored / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else float("nan")
        if record.status == "error" and not self.quiet:
            err.print(f"[yellow]clip failed:[/] {record.clip}: {record.error}", soft_wrap=True)
        if self.live:
            self.bar.update(self.task, completed=self.done, rate=f"{60 * rate:.1f} clips/min")
        elif not self.quiet:
            err.print(f"[{self.done}/{self.total}] {record.clip}: {record.status}, "
                      f"{record.seconds or 0:.1f} s; {60 * rate:.1f} clips/min, "
                      f"ETA {eta:.0f} s", soft_wrap=True)
