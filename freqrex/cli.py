"""The ``freqrex`` command: a thin skin over the Python API.

Every method parameter is an option generated from the fields of the configs in
``freqrex.config`` (their help text included), so no command can miss one and no
parameter is defined twice. Progress and messages go to stderr; ``--json`` puts the
result document alone on stdout. User errors (FreqrexError) print one line and exit
with status 2, without a traceback.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from dataclasses import Field, fields
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from freqrex.config import AttackConfig, Config, ModelConfig, default_of
from freqrex.errors import FreqrexError, FreqrexWarning
from freqrex.output.folders import check_output_file, check_output_folder
from freqrex.output.terminal import err, out

app = typer.Typer(add_completion=False, no_args_is_help=False, pretty_exceptions_enable=False,
                  help="Causal frequency-space explanations of audio classifiers.")


def _version(value: bool) -> None:
    if value:
        from freqrex import __version__

        print(f"freqrex {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True,
        help="Print freqrex's version and exit.")] = False) -> None:
    """Causal frequency-space explanations of audio classifiers."""

Clip = Annotated[Optional[Path], typer.Argument(  # noqa: UP045 - typer reads the annotation
    help="Audio file (default: a bundled example clip).")]
Onnx = Annotated[Optional[Path], typer.Option(  # noqa: UP045
    help="ONNX classifier (default: the bundled reference model).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the result JSON on stdout.")]
Quiet = Annotated[bool, typer.Option(help="No progress display.")]


# -- options generated from the configs ------------------------------------------------------

_TYPES: dict[str, Any] = {"int": int, "float": float, "str": str,
                          "int | None": Optional[int]}  # noqa: UP045


def _flag(f: Field) -> str:
    return "--" + (f.metadata.get("flag") or f.name).replace("_", "-")


def _shown(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def _option(f: Field) -> inspect.Parameter:
    """A typer option for one config field: its flag, type, default and help."""
    parse = f.metadata.get("parse")
    default = default_of(f)
    kind: Any = Optional[str] if parse else _TYPES[str(f.type)]  # noqa: UP045
    shown = _shown(default) if parse else default
    decls = [_flag(f)] + [f"--{a}" for a in f.metadata.get("aliases", ())]
    option = typer.Option(shown, *decls, help=f.metadata.get("help"),
                          metavar=f.metadata.get("metavar"), show_default=shown is not None)
    return inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY,
                             default=option, annotation=kind)


def _value(f: Field, given: Any) -> Any:
    """An option's value as the config wants it, with parse errors naming the flag."""
    parse = f.metadata.get("parse")
    if parse is None or given is None or not isinstance(given, str):
        return given
    try:
        return parse(given)
    except FreqrexError as e:
        raise FreqrexError(_as_flag(str(e), f)) from None


def _as_flag(message: str, f: Field) -> str:
    """``"ks takes ..."`` -> ``"--ks takes ..."``: the CLI speaks in flags."""
    return _flag(f) + message[len(f.name):] if message.startswith(f.name) else message


def with_configs(*classes: type, exclude: tuple[str, ...] = ()) -> Callable:
    """Add an option per field of each config class to a command; the command receives the
    built configs as ``configs`` (class -> instance), validated once by the config itself.
    """

    def decorate(command: Callable) -> Callable:
        own = [p for p in inspect.signature(command, eval_str=True).parameters.values()
               if p.name != "configs"]
        chosen = {cls: [f for f in fields(cls) if f.name not in exclude] for cls in classes}

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            configs = {}
            for cls, fs in chosen.items():
                values = {f.name: _value(f, kwargs.pop(f.name)) for f in fs}
                try:
                    configs[cls] = cls(**values)
                except FreqrexError as e:
                    bad = next((f for f in fs if str(e).startswith(f.name)), None)
                    raise FreqrexError(_as_flag(str(e), bad) if bad else str(e)) from None
            return command(*args, configs=configs, **kwargs)

        extra = [_option(f) for fs in chosen.values() for f in fs]
        wrapper.__signature__ = inspect.Signature(own + extra)  # type: ignore[attr-defined]
        return wrapper

    return decorate


def _user_errors(command: Callable) -> Callable:
    """Turn FreqrexError into one line on stderr and exit status 2; show our warnings."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        def show(message: Any, category: Any, *_rest: Any, **_kw: Any) -> None:
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
            except Exception as e:
                if not interrupted(e):
                    raise
                err.print("[red]interrupted[/]; nothing was written")
                raise typer.Exit(130) from None
            except KeyboardInterrupt:
                err.print("[red]interrupted[/]; nothing was written")
                raise typer.Exit(130) from None

    return wrapper


def interrupted(exc: BaseException) -> bool:
    """Whether ``exc`` is a Ctrl-C in disguise: Numba and C extensions turn the
    KeyboardInterrupt raised inside them into a SystemError whose cause it is."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 20:
        if isinstance(current, KeyboardInterrupt):
            return True
        current, seen = current.__cause__ or current.__context__, seen + 1
    return False


def _model_path(onnx: Path | None) -> Path:
    """The ``--onnx`` file, or the bundled model of that name (e.g. musicnn-mtt)."""
    from freqrex import examples

    if onnx is None:
        return examples.reference_model()
    return onnx if onnx.exists() else examples.bundled_model(str(onnx)) or onnx


def _model(onnx: Path | None, options: ModelConfig, config: Config) -> Any:
    from freqrex.model import load_model

    return load_model(_model_path(onnx), options, activation=config.output_activation,
                      batch_size=config.batch_size)


def _warn_if_large(path: Path, model: Any, config: Config) -> None:
    """Say before starting when clip length x budget is large (from the file's header)."""
    from freqrex.audio import long_run_notice

    notice = long_run_notice(path, model.sample_rate, model.input_length, config.search_limit)
    if notice:
        err.print(f"[yellow]warning:[/] {notice}", soft_wrap=True)


def _clip(clip: Path | None) -> Path:
    from freqrex import examples

    return clip if clip is not None else examples.example_clip()


# -- commands ----------------------------------------------------------------------------------


@app.command()
@_user_errors
@with_configs(Config, ModelConfig)
def run(
    clip: Clip = None,
    onnx: Onnx = None,
    out_dir: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        "--out", help="Folder for explanation.json, responsibility.npy, WAVs, figure and "
        "report.html (default: none written; an earlier freqrex folder there is replaced).")
    ] = None,
    as_json: AsJson = False,
    figure: Annotated[bool, typer.Option(help="Write explanation.png.")] = True,
    quiet: Quiet = False,
    configs: dict | None = None,
) -> None:
    """Explain a classifier's decision on CLIP: sufficient, necessary and complete bins."""
    from freqrex.output.files import check_replaceable
    from freqrex.output.terminal import StageProgress, print_result
    from freqrex.pipeline import explain

    assert configs is not None
    config, options = configs[Config], configs[ModelConfig]
    replacing = False
    if out_dir is not None:
        check_output_folder(out_dir)
        replacing = check_replaceable(out_dir)
    model = _model(onnx, options, config)
    _warn_if_large(_clip(clip), model, config)
    with StageProgress(quiet) as progress:
        result = explain(model, _clip(clip), sample_rate=options.sample_rate, config=config,
                         progress=progress)
    if out_dir is not None:
        result.save(out_dir, figure=figure)
    if as_json:
        print(result.to_json())
    print_result(result, err if as_json else out, out_dir)
    if replacing:
        err.print(f"note: replaced the earlier results in {out_dir}/")


@app.command()
@_user_errors
@with_configs(Config, AttackConfig, ModelConfig, exclude=("domain",))
def attack(
    clip: Clip = None,
    onnx: Onnx = None,
    out_dir: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        "--out", help="Folder for attack.json, the adversarial WAVs, figures and report.html "
        "(default: none written; an earlier freqrex folder there is replaced).")] = None,
    as_json: AsJson = False,
    quiet: Quiet = False,
    configs: dict | None = None,
) -> None:
    """Change the k most responsible frequencies (or STFT cells) of CLIP: does the class flip?

    One table per domain and mode (--mode remove,gain); --to CLASS makes it targeted.
    """
    import time

    from freqrex.manipulation import attacks, explain_for_attack
    from freqrex.output.files import attack_document, check_replaceable, save_attacks, to_json
    from freqrex.output.terminal import StageProgress, print_attacks

    assert configs is not None
    config, settings, options = configs[Config], configs[AttackConfig], configs[ModelConfig]
    replacing = False
    if out_dir is not None:
        check_output_folder(out_dir)
        replacing = check_replaceable(out_dir)
    started = time.perf_counter()
    model = _model(onnx, options, config)
    if settings.to is not None:
        model.class_index(settings.to)  # an unknown class is said before any work
    path = _clip(clip)
    _warn_if_large(path, model, config)
    results, explained = {}, {}
    for name in settings.domains:
        with StageProgress(quiet) as progress:
            result = explain_for_attack(model, path, config.replace(domain=name), settings,
                                        options.sample_rate, progress)
        for mode, r in attacks(model, result=result, attack_config=settings).items():
            key = name if len(settings.modes) == 1 else f"{name}-{mode}"
            results[key], explained[key] = r, result
    if out_dir is not None:
        save_attacks(results, out_dir, explained=explained, settings=settings)
    if as_json:
        print(to_json({name: attack_document(r, explained[name], settings)
                       for name, r in results.items()}))
    console = err if as_json else out
    print_attacks(results, console)
    console.print(f"{model.stats.calls} model calls ({model.stats.samples} waveforms), "
                  f"{time.perf_counter() - started:.2f} s in all")
    if out_dir is not None:
        console.print(f"written to {out_dir}/ (attack.json and WAVs per domain, figures; "
                      "open report.html to listen)", width=min(console.width, 80))
    if replacing:
        err.print(f"note: replaced the earlier results in {out_dir}/")


@app.command()
@_user_errors
@with_configs(ModelConfig)
def info(onnx: Onnx = None, as_json: AsJson = False, configs: dict | None = None) -> None:
    """Describe an ONNX classifier: inputs, outputs, sample rate, labels, provider."""
    from freqrex.output.files import to_json
    from freqrex.output.terminal import print_description

    assert configs is not None
    model = _model(onnx, configs[ModelConfig], Config())
    description = model.describe()
    if as_json:
        print(to_json(_jsonable(description)))
    else:
        print_description(description, out)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)


@app.command()
@_user_errors
@with_configs(Config, AttackConfig, ModelConfig, exclude=("domain",))
def evaluate(
    data_dir: Annotated[Path, typer.Argument(
        help="Folder of audio files, searched recursively.", show_default=False)],
    db: Annotated[Path, typer.Option(
        help="SQLite results database: created, or resumed when it exists.",
        show_default=False)],
    onnx: Onnx = None,
    report: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        help="Write the Markdown report here, with report.html, flip_rate.png and sizes.png "
        "beside it (default: no report).")] = None,
    csv: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        help="Write the table as CSV (default: the report's name with .csv).")] = None,
    workers: Annotated[int, typer.Option(
        help="Local Dask worker processes; 0 runs serially in this process.")] = 2,
    scheduler: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="Existing Dask scheduler, tcp://host:port (default: none; replaces --workers).")
    ] = None,
    retry_errors: Annotated[bool, typer.Option(
        help="Evaluate again the clips recorded with an error.")] = False,
    timeout: Annotated[float, typer.Option(
        help="Seconds to wait for the scheduler and a worker.")] = 5.0,
    compare: Annotated[bool, typer.Option(
        help="Also score the baselines' rankings as `freqrex compare` does, per clip and "
        "domain (about the search budget again per ranking that calls the model).")] = False,
    quiet: Quiet = False,
    configs: dict | None = None,
) -> None:
    """Explain and attack every clip under DATA_DIR; store the results; print the table.

    Interrupted or killed runs resume: run the same command again.
    """
    from freqrex.evaluation import evaluate as run_evaluation
    from freqrex.evaluation.baselines_report import rankings_rich_table
    from freqrex.evaluation.redundancy import redundancy_rich_table
    from freqrex.evaluation.report import rich_table
    from freqrex.output.evaluation import write_report
    from freqrex.output.terminal import ClipProgress

    assert configs is not None
    # before any clip is evaluated: a report refused after the run would waste it
    if report is not None:
        check_output_file(report, "--report")
    if csv is not None:
        check_output_file(csv, "--csv")
    display = ClipProgress(quiet)
    try:
        with display:
            result = run_evaluation(
                _model_path(onnx), data_dir, db,
                config=configs[Config], attack=configs[AttackConfig],
                options=configs[ModelConfig], workers=workers, scheduler=scheduler,
                retry_errors=retry_errors, timeout=timeout, compare=compare,
                progress=display.update,
                on_clip=display.clip)
    except (KeyboardInterrupt, Exception) as e:
        if not interrupted(e):
            raise
        err.print(f"[red]interrupted[/]; {display.stored} clips of this run are saved in {db}; "
                  "run the same command again to resume")
        raise typer.Exit(130) from None
    out.print(rich_table(result.summary))
    out.print(result.summary.totals())
    redundancy = redundancy_rich_table(result.summary.redundancy, result.summary.redundancy_ks)
    if redundancy is not None:   # --multiple: how flips relate to the number of sets
        out.print(redundancy)
    if (rankings := rankings_rich_table(result.summary.rankings)) is not None:
        out.print(rankings)   # --compare: responsibility against the baselines
    where = "serially" if result.workers == 0 else f"on {result.workers} Dask workers"
    if result.processed:
        err.print(f"{result.processed} clips evaluated {where} in {result.seconds:.1f} s, "
                  f"{result.errors} with errors; {result.skipped} were already in {db}")
    else:
        err.print(f"nothing to evaluate: all {result.total} clips are already in {db}")
    for path in write_report(result.summary, report, csv):
        err.print(f"written: {path}")
    if report is not None:
        from freqrex.evaluation.report import PAPER_NOTE
        from freqrex.output.files import write_evaluation_page

        err.print(f"written: {write_evaluation_page(result.summary, report, PAPER_NOTE)}")



@app.command()
@_user_errors
@with_configs(Config, ModelConfig)
def compare(
    clip: Clip = None,
    onnx: Onnx = None,
    out_dir: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        "--out", help="Folder for compare.json and compare.png.")] = None,
    as_json: AsJson = False,
    figure: Annotated[bool, typer.Option(help="Write compare.png.")] = True,
    quiet: Quiet = False,
    configs: dict | None = None,
) -> None:
    """Rank CLIP's features by responsibility and by baselines; compare sets and curves."""
    from freqrex.comparison import compare as run_compare
    from freqrex.output.files import to_json
    from freqrex.output.terminal import StageProgress, print_comparison

    assert configs is not None
    config, options = configs[Config], configs[ModelConfig]
    if out_dir is not None:
        check_output_folder(out_dir)
    model = _model(onnx, options, config)
    with StageProgress(quiet) as progress:
        result = run_compare(model, _clip(clip), sample_rate=options.sample_rate,
                             config=config, progress=progress)
    if out_dir is not None:
        result.save(out_dir, figure=figure)
    if as_json:
        print(to_json(result.to_dict()))
    print_comparison(result, err if as_json else out, out_dir)


if __name__ == "__main__":  # pragma: no cover
    app()
