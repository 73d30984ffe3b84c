"""The ``freqrex`` command: a thin skin over the Python API.

Progress and messages go to stderr; ``--json`` puts the result document alone on stdout.
User errors (FreqrexError) print one line and exit with status 2, without a traceback.
"""

from __future__ import annotations

import functools
import json
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from freqrex.config import Config
from freqrex.errors import FreqrexError, FreqrexWarning
from freqrex.output.folders import check_output_folder, writing_folder

app = typer.Typer(add_completion=False, no_args_is_help=False, pretty_exceptions_enable=False,
                  help="Causal frequency-space explanations of audio classifiers.")
# Piped output gets a fixed, wide layout instead of rich's 80-column fallback.
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 120)
out = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
DEFAULTS = Config()


def _user_errors(command):
    """Turn FreqrexError into one line on stderr and exit status 2; show our warnings."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        def show(message, category, *_rest, **_kw):
            if issubclass(category, FreqrexWarning):
                err.print(f"[yellow]warning:[/] {message}")

        with warnings.catch_warnings():
            warnings.simplefilter("always", FreqrexWarning)
            warnings.showwarning = show
            try:
                return command(*args, **kwargs)
            except FreqrexError as e:
                err.print(f"[red]error:[/] {e}", soft_wrap=True)
                raise typer.Exit(2) from None
            except KeyboardInterrupt:
                err.print("[red]interrupted[/]; nothing was written")
                raise typer.Exit(130) from None

    return wrapper


def _freq_range(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        lo, hi = (float(v) for v in text.replace(":", ",").split(","))
    except ValueError:
        raise FreqrexError(
            f"--freq-range takes LOW:HIGH in Hz (e.g. 100:4000), got {text!r}") from None
    return lo, hi


def _target(text: str | None) -> int | str | None:
    if text is None:
        return None
    return int(text) if text.lstrip("-").isdigit() else text


def _load_model(onnx: Path | None, sample_rate: int | None, labels: Path | None,
                activation: str, batch_size: int, provider: str):
    from freqrex import examples
    from freqrex.model import OnnxModel, load_labels

    path = onnx if onnx is not None else examples.reference_model()
    providers = {"auto": "auto", "cpu": ["CPUExecutionProvider"],
                 "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"]}.get(provider)
    if providers is None:
        raise FreqrexError(f"--provider must be auto, cpu or cuda; got {provider!r}")
    return OnnxModel(path, sample_rate=sample_rate,
                     labels=load_labels(labels) if labels is not None else None,
                     activation=activation, batch_size=batch_size, providers=providers)


@app.command()
@_user_errors
def run(
    clip: Annotated[Path | None, typer.Argument(
        help="Audio file to explain (default: a bundled example clip).")] = None,
    onnx: Annotated[Path | None, typer.Option(
        help="ONNX classifier (default: the bundled reference model).")] = None,
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="Folder for explanation.json, responsibility.npy, WAVs and figure.")] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the result JSON on stdout.")] = False,
    target: Annotated[str | None, typer.Option(help="Class to explain: label or index.")] = None,
    seed: int = DEFAULTS.seed,
    iterations: int = DEFAULTS.iterations,
    max_depth: int = DEFAULTS.max_depth,
    min_box_size: int = DEFAULTS.min_box_size,
    search_limit: Annotated[int, typer.Option(
        help="Mutants the responsibility search may evaluate.")] = DEFAULTS.search_limit,
    confidence_filter: float = DEFAULTS.confidence_filter,
    batch_size: int = DEFAULTS.batch_size,
    domain: Annotated[str, typer.Option(help="fft or stft.")] = DEFAULTS.domain,
    n_fft: Annotated[int, typer.Option(help="STFT window (stft domain).")] = DEFAULTS.n_fft,
    hop: Annotated[int, typer.Option(help="STFT hop (stft domain).")] = DEFAULTS.hop,
    freq_range: Annotated[str | None, typer.Option(help="Search only LOW:HIGH Hz.")] = None,
    activation: Annotated[str, typer.Option(
        help="auto, softmax, sigmoid or none.")] = DEFAULTS.output_activation,
    search: Annotated[str, typer.Option(help="bracket or linear.")] = DEFAULTS.search,
    chunk: int = DEFAULTS.chunk,
    complete_tolerance: float = DEFAULTS.complete_tolerance,
    sample_rate: Annotated[int | None, typer.Option(
        help="Model sample rate, when its metadata has none.")] = None,
    labels: Annotated[Path | None, typer.Option(
        help="Class names: one per line or a JSON list.")] = None,
    provider: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    figure: Annotated[bool, typer.Option(help="Write explanation.png.")] = True,
    quiet: Annotated[bool, typer.Option(help="No progress display.")] = False,
) -> None:
    """Explain a classifier's decision on CLIP: sufficient, necessary and complete bins."""
    from freqrex import examples
    from freqrex.pipeline import explain

    config = Config(iterations=iterations, max_depth=max_depth, min_box_size=min_box_size,
                    search_limit=search_limit, confidence_filter=confidence_filter,
                    batch_size=batch_size, seed=seed, domain=domain, n_fft=n_fft, hop=hop,
                    freq_range=_freq_range(freq_range),
                    target=_target(target), output_activation=activation, search=search,
                    chunk=chunk, complete_tolerance=complete_tolerance)
    if out_dir is not None:
        check_output_folder(out_dir)
    model = _load_model(onnx, sample_rate, labels, activation, batch_size, provider)
    clip = clip if clip is not None else examples.example_clip()
    with _progress(quiet) as progress:
        result = explain(model, clip, sample_rate=sample_rate, config=config, progress=progress)
    if out_dir is not None:
        result.save(out_dir, figure=figure)
    if as_json:
        print(result.to_json())
    _print_summary(result, err if as_json else out, out_dir)


@app.command()
@_user_errors
def attack(
    clip: Annotated[Path | None, typer.Argument(
        help="Audio file to attack (default: a bundled example clip).")] = None,
    onnx: Annotated[Path | None, typer.Option(
        help="ONNX classifier (default: the bundled reference model).")] = None,
    ks: Annotated[str, typer.Option(
        help="Numbers of coefficients to change, e.g. 1,2,5,10.")] = "1,2,5,10,20,50,100",
    mode: Annotated[str, typer.Option(help="remove or attenuate.")] = "remove",
    factor: Annotated[float, typer.Option(help="Gain kept when attenuating.")] = 0.1,
    domain: Annotated[str, typer.Option(help="fft, stft or both.")] = "both",
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="Folder for attack.json and the adversarial WAVs.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
    target: Annotated[str | None, typer.Option(help="Class to attack: label or index.")] = None,
    seed: int = DEFAULTS.seed,
    iterations: int = DEFAULTS.iterations,
    search_limit: int = DEFAULTS.search_limit,
    n_fft: int = DEFAULTS.n_fft,
    hop: int = DEFAULTS.hop,
    batch_size: int = DEFAULTS.batch_size,
    sample_rate: int | None = None,
    labels: Path | None = None,
    provider: str = "auto",
    quiet: Annotated[bool, typer.Option(help="No progress display.")] = False,
) -> None:
    """Change the k most responsible frequencies (or STFT cells) of CLIP: does the class flip?"""
    from freqrex import examples
    from freqrex.manipulation import attack as run_attack
    from freqrex.pipeline import explain

    domains = {"both": ("fft", "stft"), "fft": ("fft",), "stft": ("stft",)}.get(domain)
    if domains is None:
        raise FreqrexError(f"--domain must be fft, stft or both; got {domain!r}")
    config = Config(iterations=iterations, search_limit=search_limit, seed=seed,
                    n_fft=n_fft, hop=hop, batch_size=batch_size, target=_target(target))
    if out_dir is not None:
        check_output_folder(out_dir)
    model = _load_model(onnx, sample_rate, labels, "auto", batch_size, provider)
    clip = clip if clip is not None else examples.example_clip()
    results = {}
    for name in domains:
        with _progress(quiet) as progress:
            explained = explain(model, clip, sample_rate=sample_rate,
                                config=config.replace(domain=name), progress=progress)
        results[name] = run_attack(model, result=explained, ks=_ks(ks), mode=mode,
                                   factor=factor)
    if out_dir is not None:
        _save_attacks(results, out_dir)
    if as_json:
        print(json.dumps({name: r.to_dict() for name, r in results.items()}, indent=2))
    _print_attacks(results, err if as_json else out)


def _ks(text: str) -> tuple[int, ...]:
    try:
        ks = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise FreqrexError(f"--ks takes whole numbers separated by commas, got {text!r}") from None
    if not ks or min(ks) < 1:
        raise FreqrexError(f"--ks takes positive whole numbers, got {text!r}")
    return ks


def _save_attacks(results: dict, out_dir: Path) -> None:
    """One folder, written whole: a subfolder per domain with attack.json and the WAVs."""
    with writing_folder(out_dir) as tmp:
        for name, result in results.items():
            result.save(tmp / name)


def _print_attacks(results: dict, console: Console) -> None:
    for name, r in results.items():
        table = Table(title=f"{name} attack ({r.mode}) on {r.target_label}")
        for column in ("k", "touched", "flipped", "model says", "target conf.", "SNR dB"):
            table.add_column(column)
        for s in r.steps:
            table.add_row(str(s.k), str(s.touched), "[red]yes[/]" if s.flipped else "no",
                          f"{s.prediction.label} {s.prediction.confidence:.3f}",
                          f"{s.prediction.target_confidence:.3f}", f"{s.snr_db:.1f}")
        console.print(table)


@app.command()
@_user_errors
def info(
    onnx: Annotated[Path | None, typer.Option(
        help="ONNX classifier (default: the bundled reference model).")] = None,
    sample_rate: int | None = None,
    labels: Path | None = None,
    provider: str = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Describe an ONNX classifier: inputs, outputs, sample rate, labels, provider."""
    model = _load_model(onnx, sample_rate, labels, "auto", DEFAULTS.batch_size, provider)
    description = model.describe()
    if as_json:
        print(json.dumps(description, indent=2, default=str))
        return
    table = Table(show_header=False, box=None)
    for key, value in description.items():
        table.add_row(f"[bold]{key}[/]", _plain(value))
    out.print(table)


def _plain(value: Any) -> str:
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return "; ".join(", ".join(f"{k}={v}" for k, v in item.items()) for item in value)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


class _progress:
    """A rich progress bar on stderr, fed by explain's progress callback."""

    def __init__(self, quiet: bool) -> None:
        # A live bar only makes sense on a terminal; piped stderr gets clean lines.
        self.quiet = quiet or not err.is_terminal
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(),
                            TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                            console=err, transient=True)
        self.tasks: dict[str, Any] = {}

    def __enter__(self):
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


def _print_summary(result, console: Console, out_dir: Path | None) -> None:
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
        if not e.found:
            table.add_row(kind, "not found", "", "", "", "", "")
            continue
        says = f"{e.prediction.label} {e.prediction.confidence:.3f}"
        if e.removed is not None:
            says += f" (without: {e.removed.label} {e.removed.confidence:.3f})"
        table.add_row(kind, str(e.size), f"{100 * e.share_bins:.4f}",
                      f"{100 * e.share_energy:.2f}", _ranges(e.hz_ranges), says,
                      "yes" if e.verified else "[red]no[/]")
    c.print(table)
    s = result.stats
    c.print(f"{s.model_calls} model calls ({s.mutants} waveforms), {s.seconds_total:.2f} s "
            f"total, {s.seconds_model:.2f} s in model inference")
    if out_dir is not None:
        c.print(f"written to {out_dir}/")


def _ranges(ranges: list[tuple[float, float]], most: int = 4) -> str:
    text = ", ".join(f"{lo:.0f}" if hi - lo < 1 else f"{lo:.0f}-{hi:.0f}"
                     for lo, hi in ranges[:most])
    return text + (f" (+{len(ranges) - most} more)" if len(ranges) > most else "")


@app.command()
@_user_errors
def evaluate(
    data_dir: Annotated[Path, typer.Argument(
        help="Folder of audio files, searched recursively.", show_default=False)],
    db: Annotated[Path, typer.Option(
        help="SQLite results database: created, or resumed when it exists.",
        show_default=False)],
    onnx: Annotated[Path | None, typer.Option(
        help="ONNX classifier (default: the bundled reference model).")] = None,
    report: Annotated[Path | None, typer.Option(
        help="Write the Markdown report here, with flip_rate.png and sizes.png.")] = None,
    csv: Annotated[Path | None, typer.Option(
        help="Write the table as CSV (default: the report's name with .csv).")] = None,
    workers: Annotated[int, typer.Option(
        help="Local Dask worker processes; 0 runs serially in this process.")] = 2,
    scheduler: Annotated[str | None, typer.Option(
        help="Existing Dask scheduler, tcp://host:port (replaces --workers).")] = None,
    ks: Annotated[str, typer.Option(
        help="Attack sizes: coefficients to change.")] = "1,2,5,10,20,50,100",
    mode: Annotated[str, typer.Option(help="Attack: remove or attenuate.")] = "remove",
    factor: Annotated[float, typer.Option(help="Gain kept when attenuating.")] = 0.1,
    domains: Annotated[str, typer.Option(help="fft, stft or fft,stft.")] = "fft,stft",
    seed: int = DEFAULTS.seed,
    iterations: int = DEFAULTS.iterations,
    search_limit: Annotated[int, typer.Option(
        help="Mutants the responsibility search may evaluate.")] = DEFAULTS.search_limit,
    n_fft: Annotated[int, typer.Option(help="STFT window (stft domain).")] = DEFAULTS.n_fft,
    hop: Annotated[int, typer.Option(help="STFT hop (stft domain).")] = DEFAULTS.hop,
    batch_size: int = DEFAULTS.batch_size,
    sample_rate: Annotated[int | None, typer.Option(
        help="Model sample rate, when its metadata has none.")] = None,
    labels: Annotated[Path | None, typer.Option(
        help="Class names: one per line or a JSON list.")] = None,
    provider: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    threads: Annotated[int | None, typer.Option(
        help="ONNX Runtime threads per model (default: 1 with workers).")] = None,
    retry_errors: Annotated[bool, typer.Option(
        help="Evaluate again the clips recorded with an error.")] = False,
    timeout: Annotated[float, typer.Option(
        help="Seconds to wait for the scheduler and a worker.")] = 5.0,
    quiet: Annotated[bool, typer.Option(help="No progress display.")] = False,
) -> None:
    """Explain and attack every clip under DATA_DIR; store the results; print the table.

    Interrupted or killed runs resume: run the same command again.
    """
    from freqrex import examples
    from freqrex.evaluate import evaluate as run_evaluation
    from freqrex.report import rich_table, write_report

    providers = {"auto": "auto", "cpu": ["CPUExecutionProvider"],
                 "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"]}.get(provider)
    if providers is None:
        raise FreqrexError(f"--provider must be auto, cpu or cuda; got {provider!r}")
    if report is not None and report.is_dir():
        raise FreqrexError(f"--report {report} is a directory; give a file name such as "
                           f"{report / 'report.md'}")
    config = Config(iterations=iterations, search_limit=search_limit, seed=seed, n_fft=n_fft,
                    hop=hop, batch_size=batch_size)
    display = _EvaluationProgress(quiet)
    try:
        with display:
            result = run_evaluation(
                onnx if onnx is not None else examples.reference_model(), data_dir, db,
                config=config, domains=domains, ks=_ks(ks), mode=mode, factor=factor,
                workers=workers, scheduler=scheduler, threads=threads,
                sample_rate=sample_rate, labels=labels, provider=providers,
                retry_errors=retry_errors, timeout=timeout, progress=display.update)
    except KeyboardInterrupt:
        err.print(f"[red]interrupted[/]; {display.stored} clips of this run are saved in {db}; "
                  "run the same command again to resume")
        raise typer.Exit(130) from None
    out.print(rich_table(result.summary))
    out.print(result.summary.totals())
    where = "serially" if result.workers == 0 else f"on {result.workers} Dask workers"
    if result.processed:
        err.print(f"{result.processed} clips evaluated {where} in {result.seconds:.1f} s, "
                  f"{result.errors} with errors; {result.skipped} were already in {db}")
    else:
        err.print(f"nothing to evaluate: all {result.total} clips are already in {db}")
    for path in write_report(result.summary, report, csv):
        err.print(f"written: {path}")


class _EvaluationProgress:
    """Clips done / total, rate and ETA: a rich bar on a terminal, else one line per clip."""

    def __init__(self, quiet: bool) -> None:
        from rich.progress import MofNCompleteColumn, TimeRemainingColumn

        self.quiet, self.live = quiet, not quiet and err.is_terminal
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                            TextColumn("ETA"), TimeRemainingColumn(), console=err,
                            transient=True, speed_estimate_period=3600)
        self.task: Any = None
        self.stored = 0
        self.started = 0.0

    def __enter__(self) -> _EvaluationProgress:
        import time

        self.started = time.perf_counter()
        if self.live:
            self.bar.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live:
            self.bar.stop()

    def update(self, record: dict | None, done: int, total: int) -> None:
        import time

        if record is None:  # the start: clips already done by earlier runs count as done
            if self.live:
                self.task = self.bar.add_task("evaluating", total=total, completed=done,
                                              rate="")
            return
        self.stored += 1
        elapsed = time.perf_counter() - self.started
        rate = self.stored / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else float("nan")
        if record["status"] == "error" and not self.quiet:
            err.print(f"[yellow]clip failed:[/] {record['clip']}: {record['error']}",
                      soft_wrap=True)
        if self.live:
            self.bar.update(self.task, completed=done, rate=f"{60 * rate:.1f} clips/min")
        elif not self.quiet:
            err.print(f"[{done}/{total}] {record['clip']}: {record['status']}, "
                      f"{record['seconds'] or 0:.1f} s; {60 * rate:.1f} clips/min, "
                      f"ETA {eta:.0f} s", soft_wrap=True)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
