"""Data-set evaluation: explain and attack every clip under a folder, resumably, in parallel.

The work is one task per clip (:func:`evaluate_clip`, a top-level function so that Dask can
ship it): explain the clip in each domain, attack it with the ``k`` most responsible
coefficients, and return a plain record. The calling process is the only writer of the
SQLite store (:mod:`freqrex.store`), one transaction per clip, so a run killed at any moment
is resumed by running it again: finished clips are skipped, none is lost or duplicated.

Parallelism comes from Dask distributed: a local cluster of worker processes by default, or
an existing cluster given by its scheduler address. Each worker process loads the model once
and reuses it for every clip it is given.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from freqrex.config import DOMAINS, Config
from freqrex.errors import FreqrexError, FreqrexWarning
from freqrex.manipulation import DEFAULT_KS, MODES
from freqrex.model import Model
from freqrex.store import KINDS, Store

if TYPE_CHECKING:
    from freqrex.report import Summary

# What libsndfile reads (mp3 since libsndfile 1.1), lower case; hidden files are skipped.
AUDIO_EXTENSIONS = frozenset({
    ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc",
    ".au", ".snd", ".caf", ".w64", ".rf64", ".voc", ".htk", ".sd2", ".paf", ".svx", ".nist",
})
DEFAULT_WORKERS = 2
DEFAULT_FACTOR = 0.1

Progress = Callable[[dict | None, int, int], None]

__all__ = ["AUDIO_EXTENSIONS", "Evaluation", "ModelSpec", "Job", "evaluate", "evaluate_clip",
           "find_clips"]


# -- what to run ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSpec:
    """How a worker loads the model: everything :class:`freqrex.OnnxModel` needs, picklable.

    It is also the key of the per-process model cache, so two specs that differ in any
    option are two models.
    """

    path: str
    sample_rate: int | None = None
    labels: tuple[str, ...] | None = None
    activation: str = "auto"
    batch_size: int = 32
    providers: str | tuple[str, ...] = "auto"
    threads: int | None = None


@dataclass(frozen=True)
class Job:
    """Everything one clip's task needs besides the clip itself."""

    model: ModelSpec | None       # None: the model object is passed along (serial runs only)
    config: Config
    domains: tuple[str, ...] = DOMAINS
    ks: tuple[int, ...] = DEFAULT_KS
    mode: str = "remove"
    factor: float = DEFAULT_FACTOR
    sample_rate: int | None = None


@dataclass
class Evaluation:
    """What :func:`evaluate` did.

    Attributes
    ----------
    db : Path
        The results database.
    total : int
        Audio files found under the data folder.
    skipped : int
        Of which already in the database (finished by an earlier run).
    processed : int
        Clips evaluated by this run (errors included).
    errors : int
        Clips of this run recorded with an error.
    seconds : float
        Wall time of this run.
    workers : int
        Dask workers used (0: serial, in this process).
    summary : Summary
        The table over every clip in the database (see :mod:`freqrex.report`).
    """

    db: Path
    total: int
    skipped: int
    processed: int
    errors: int
    seconds: float
    workers: int
    summary: Summary = field(repr=False)


# -- clips ---------------------------------------------------------------------------------


def find_clips(data_dir: str | os.PathLike) -> list[tuple[str, Path]]:
    """Audio files under ``data_dir``, as (path relative to it in POSIX form, path), sorted.

    Raises
    ------
    FreqrexError
        When ``data_dir`` is not a folder, or holds no audio file.
    """
    root = Path(data_dir)
    if not root.is_dir():
        what = "is a file" if root.exists() else "does not exist"
        raise FreqrexError(f"data folder {root} {what}; give a folder of audio files")
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if not name.startswith(".") and Path(name).suffix.lower() in AUDIO_EXTENSIONS:
                path = Path(folder) / name
                found.append((path.relative_to(root).as_posix(), path))
    if not found:
        raise FreqrexError(
            f"no audio files under {root} (looked for {', '.join(sorted(AUDIO_EXTENSIONS))})")
    return sorted(found)


# -- the per-clip task (runs in workers) ---------------------------------------------------

# Per worker process: models loaded so far, and how many times each spec was loaded (a test
# and the records check that it is once).
_MODELS: dict[ModelSpec, Model] = {}
_LOADS: dict[ModelSpec, int] = {}


def load_model(spec: ModelSpec) -> Model:
    """The model of ``spec``, loaded once per process and then reused."""
    model = _MODELS.get(spec)
    if model is None:
        model = _load(spec)
        _MODELS[spec] = model
        _LOADS[spec] = _LOADS.get(spec, 0) + 1
    return model


def _load(spec: ModelSpec) -> Model:
    from freqrex.model import OnnxModel

    providers = spec.providers if isinstance(spec.providers, str) else list(spec.providers)
    return OnnxModel(spec.path, sample_rate=spec.sample_rate,
                     labels=list(spec.labels) if spec.labels else None,
                     activation=spec.activation, batch_size=spec.batch_size,
                     providers=providers, threads=spec.threads)


def worker_state(spec: ModelSpec | None = None) -> dict[str, Any]:
    """This process's id and model load counts (what ``client.run`` reports per worker)."""
    if spec is not None:
        load_model(spec)
    return {"worker": _worker_id(), "loads": {s.path: n for s, n in _LOADS.items()},
            "spec_loads": _LOADS.get(spec, 0) if spec is not None else None}


def evaluate_clip(clip: str, path: str, job: Job, model: Model | None = None) -> dict[str, Any]:
    """Explain and attack one clip in every domain of ``job``; never raises for a bad clip.

    Parameters
    ----------
    clip : str
        The clip's key: its path relative to the data folder.
    path : str
        Where to read it.
    job : Job
        Model, parameters, domains and attack settings.
    model : Model, optional
        The model to use instead of loading ``job.model`` (serial runs of a Python model).

    Returns
    -------
    dict
        A JSON-able record: ``status`` ``"ok"`` with the target, per-domain explanation
        sizes and costs (``domains``) and the attack steps (``attacks``), or ``"error"``
        with the message; always the worker id and how often it loaded the model.
    """
    started = time.perf_counter()
    loads = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FreqrexWarning)
        try:
            if model is None:
                model = load_model(job.model)
                loads = _LOADS[job.model]
            record = _evaluate(clip, path, job, model)
        except FreqrexError as exc:
            record = error_record(clip, str(exc))
        except Exception as exc:  # a bug or a model crash must not stop the other clips
            record = error_record(clip, _describe_bug(exc), retry=True)
    shown = [str(w.message) for w in caught if issubclass(w.category, FreqrexWarning)]
    record.update(warnings=list(dict.fromkeys(shown)), worker=_worker_id(), model_loads=loads,
                  seconds=time.perf_counter() - started, finished=time.time())
    return record


def error_record(clip: str, message: str, retry: bool = False) -> dict[str, Any]:
    """The record of a clip that could not be evaluated; ``retry``: not the clip's fault."""
    return {"clip": clip, "status": "error", "error": message, "retry": retry}


def _evaluate(clip: str, path: str, job: Job, model: Model) -> dict[str, Any]:
    # Each clip decides the model's output activation from its own original, as `freqrex run`
    # does; otherwise the first clip a worker sees would decide it for the others.
    model.activation = job.config.output_activation
    record: dict[str, Any] = {"clip": clip, "status": "ok", "domains": {}, "attacks": []}
    with _limited_threads(job):
        for domain in job.domains:
            _run_domain(record, path, job, model, domain)
    record["model_calls"] = sum(d["model_calls"] for d in record["domains"].values())
    record["seconds_model"] = sum(d["seconds_model"] for d in record["domains"].values())
    return record


def _run_domain(record: dict[str, Any], path: str, job: Job, model: Model,
                domain: str) -> None:
    """Explain the clip in ``domain``, attack it, and add both to ``record``."""
    from freqrex.manipulation import attack
    from freqrex.pipeline import explain

    before = (model.stats.calls, model.stats.seconds, time.perf_counter())
    result = explain(model, path, sample_rate=job.sample_rate,
                     config=job.config.replace(domain=domain))
    attacked = attack(model, result=result, ks=job.ks, mode=job.mode, factor=job.factor)
    if "target" not in record:
        n = int(result.audio.shape[0])
        record.update(target=result.target, label=result.target_label,
                      confidence=result.confidence, sample_rate=result.sample_rate,
                      n_samples=n, n_bins=n // 2 + 1)
    record["domains"][domain] = _domain_record(result, model, before)
    record["attacks"] += [_attack_record(record["clip"], domain, step)
                          for step in attacked.steps]


@contextmanager
def _limited_threads(job: Job) -> Iterator[None]:
    """Numba's parallel kernels use ``threads`` threads here, as ONNX Runtime does."""
    threads = job.model.threads if job.model is not None else None
    if threads is None:
        yield
        return
    import numba

    # Per calling thread and allowed at any time, unlike NUMBA_NUM_THREADS (which Dask could
    # only set in a worker after the main module, and so Numba, was imported).
    before = numba.get_num_threads()
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _domain_record(result: Any, model: Model, before: tuple[int, float, float]) -> dict:
    out: dict[str, Any] = {
        "n_features": int(result.responsibility.size),
        "model_calls": model.stats.calls - before[0],
        "seconds_model": model.stats.seconds - before[1],
        "seconds": time.perf_counter() - before[2]}
    for kind in KINDS:
        e = result.explanations[kind]
        out[kind] = {"found": bool(e.found), "verified": bool(e.verified),
                     "size": e.size if e.found else None,
                     "share": float(e.share_bins) if e.found else None,
                     "energy": float(e.share_energy) if e.found else None}
    return out


def _attack_record(clip: str, domain: str, step: Any) -> dict[str, Any]:
    p = step.prediction
    return {"clip": clip, "domain": domain, "k": int(step.k), "touched": int(step.touched),
            "within_necessary": bool(step.within_necessary), "flipped": bool(step.flipped),
            "class_index": int(p.class_index), "label": p.label,
            "confidence": float(p.confidence), "target_confidence": float(p.target_confidence),
            "snr_db": float(step.snr_db)}


def _describe_bug(exc: Exception) -> str:
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" at {Path(frame.filename).name}:{frame.lineno}" if frame else ""
    text = str(exc).strip().splitlines()
    return f"internal error: {type(exc).__name__}: {text[0] if text else ''}{where}"


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# -- the run -------------------------------------------------------------------------------


def evaluate(model: Any, data_dir: str | os.PathLike, db: str | os.PathLike, *,
             config: Config | None = None,
             domains: tuple[str, ...] | list[str] = DOMAINS,
             ks: tuple[int, ...] | list[int] = DEFAULT_KS, mode: str = "remove",
             factor: float = DEFAULT_FACTOR, workers: int = DEFAULT_WORKERS,
             scheduler: str | None = None, threads: int | None = None,
             sample_rate: int | None = None, labels: Any = None,
             provider: str | list[str] = "auto", retry_errors: bool = False,
             timeout: float = 10.0, progress: Progress | None = None,
             **params: Any) -> Evaluation:
    """Explain and attack every audio file under ``data_dir``; store the results in ``db``.

    A run can be interrupted at any moment (even killed): running it again with the same
    settings evaluates only the clips not yet in ``db``.

    Parameters
    ----------
    model : str, path, Model, callable or None
        An ONNX file (None: the bundled reference model). A :class:`freqrex.Model` or a
        Python callable works only in serial runs (``workers=0``); workers load the file.
    data_dir : str or path
        Folder searched recursively for audio files (see :data:`AUDIO_EXTENSIONS`).
    db : str or path
        The SQLite results database; created when missing, resumed when it exists.
    config : Config, optional
        Explanation parameters; keyword arguments (``iterations=5``, ``seed=1``...) override
        it. Its ``domain`` is ignored: every domain in ``domains`` is run.
    domains : sequence of str
        ``"fft"`` and/or ``"stft"``.
    ks, mode, factor
        The attacks: change the ``k`` most responsible coefficients, for each ``k``, by
        removing them or attenuating them by ``factor`` (see :func:`freqrex.attack`).
    workers : int
        Local Dask worker processes (one thread each); 0 runs serially in this process.
    scheduler : str, optional
        Address of an existing Dask scheduler (``tcp://host:port``); ``workers`` is then
        ignored. The model and the clips must be readable at the same paths on the workers.
    threads : int, optional
        ONNX Runtime threads per model; default 1 with Dask workers (they share the cores),
        ONNX Runtime's own default in serial runs.
    sample_rate : int, optional
        The model's rate when its metadata has none.
    labels : list of str or path, optional
        Class names, overriding the model's metadata.
    provider : str or list of str
        ONNX Runtime execution providers, ``"auto"`` (CUDA if it works, else CPU).
    retry_errors : bool
        Evaluate again the clips an earlier run recorded with an error of their own (an
        unreadable file...). Clips that failed for another reason (a bug, a worker that
        died) are always evaluated again.
    timeout : float
        Seconds to wait for the scheduler and its first worker.
    progress : callable, optional
        Called as ``progress(record, done, total)`` after each clip is stored, and once as
        ``progress(None, done, total)`` before the first (``done`` counts earlier runs too).

    Returns
    -------
    Evaluation

    Raises
    ------
    FreqrexError
        For a missing or empty data folder, a bad model or option, a database made with
        other settings, or an unreachable scheduler.
    """
    from freqrex.model import load_labels
    from freqrex.report import summarize

    started = time.perf_counter()
    config = _config(config, params)
    domains, ks = _check_domains(domains), _check_ks(ks)
    gain = _check_attack(mode, factor)
    _check_workers(workers, scheduler)
    clips = find_clips(data_dir)
    parallel = workers > 0 or scheduler is not None
    if threads is None and parallel:
        threads = 1  # several worker processes share the cores: no threads within a call
    labels = load_labels(labels) if isinstance(labels, (str, os.PathLike)) else labels
    local_model, spec, identity = _prepare_model(model, config, sample_rate, labels, provider,
                                                 threads, parallel)
    job = Job(model=spec, config=config, domains=domains, ks=ks, mode=mode, factor=gain,
              sample_rate=sample_rate)
    settings = _settings(job, labels)
    with Store(db, settings=settings, model=identity[0], model_sha256=identity[1],
               data_dir=str(Path(data_dir).resolve())) as store:
        # Errors that were not the clip's fault are always tried again; the others on request.
        store.forget(store.error_clips(retry_only=not retry_errors))
        done = store.done_clips()
        pending = [(c, p) for c, p in clips if c not in done]
        counter = _Counter(store, len(clips), len(clips) - len(pending), progress)
        if not pending:
            used = 0
        elif parallel:
            used = _run_dask(pending, job, counter, workers, scheduler, timeout)
        else:
            # a model file is taken from the per-process cache (loaded above), so each record
            # shows its load count; a Python model is handed over as it is
            used = _run_serial(pending, job, counter, local_model if spec is None else None)
        summary = summarize(store)
    return Evaluation(db=Path(db), total=len(clips), skipped=len(clips) - len(pending),
                      processed=counter.processed, errors=counter.errors,
                      seconds=time.perf_counter() - started, workers=used, summary=summary)


class _Counter:
    """Stores records as they arrive and reports progress."""

    def __init__(self, store: Store, total: int, done: int, progress: Progress | None) -> None:
        self.store, self.total, self.done, self.progress = store, total, done, progress
        self.processed = self.errors = 0
        if progress is not None:
            progress(None, done, total)

    def __call__(self, record: dict[str, Any]) -> None:
        if not self.store.write(record):
            return  # a clip computed twice (a retried task): the first copy stands
        self.done += 1
        self.processed += 1
        self.errors += record["status"] == "error"
        if self.progress is not None:
            self.progress(record, self.done, self.total)


def _run_serial(pending: list[tuple[str, Path]], job: Job, store: _Counter,
                model: Model | None) -> int:
    for clip, path in pending:
        store(evaluate_clip(clip, str(path), job, model=model))
    return 0


def _run_dask(pending: list[tuple[str, Path]], job: Job, store: _Counter, workers: int,
              scheduler: str | None, timeout: float) -> int:
    from distributed import as_completed

    with _dask_client(workers, scheduler, timeout) as client:
        # Load the model on every worker now: a worker that cannot read it fails the run with
        # one message instead of recording an error for every clip.
        try:
            states = client.run(worker_state, job.model)
        except FreqrexError as exc:
            raise FreqrexError(f"a Dask worker cannot load the model: {exc}") from None
        futures = {client.submit(evaluate_clip, clip, str(path), job, pure=False,
                                 key=f"freqrex-clip-{i}-{os.getpid()}-{time.time_ns()}"): clip
                   for i, (clip, path) in enumerate(pending)}
        for future in as_completed(futures):
            clip = futures.pop(future)
            try:
                record = future.result()
            except Exception as exc:  # the worker died on it (KilledWorker) or similar
                record = error_record(clip, f"the Dask task failed: {_describe_bug(exc)}",
                                      retry=True)
                record.update(worker=None, model_loads=None, seconds=None, finished=time.time())
            store(record)
            future.release()
        return len(states)


@contextmanager
def _dask_client(workers: int, scheduler: str | None, timeout: float) -> Iterator[Any]:
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError, ValueError) as exc:
            raise FreqrexError(
                f"cannot reach the Dask scheduler at {scheduler} ({_first_line(exc)}); start "
                "one (`dask scheduler`, then `dask worker ADDRESS`) or leave out --scheduler"
            ) from None
        with client:
            _wait_for_workers(client, scheduler, timeout)
            yield client
        return
    # One task thread per worker process; the libraries inside are limited per task (see
    # _limit_threads), not by environment variables, which Dask sets in the worker only after
    # the main module (and so Numba) was imported.
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=logging.ERROR)
    with cluster, Client(cluster) as client:
        yield client


def _wait_for_workers(client: Any, scheduler: str, timeout: float) -> None:
    try:
        client.wait_for_workers(1, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise FreqrexError(
            f"the Dask scheduler at {scheduler} has no workers ({_first_line(exc)}); start "
            f"some with `dask worker {scheduler}`") from None


# -- checks --------------------------------------------------------------------------------


def _config(config: Config | None, params: dict[str, Any]) -> Config:
    unknown = sorted(set(params) - set(Config.names()))
    if unknown:
        raise FreqrexError(f"unknown parameter(s) {', '.join(unknown)}; known: "
                           f"{', '.join(Config.names())}")
    config = config or Config()
    return config.replace(**params) if params else config


def _check_domains(domains: Any) -> tuple[str, ...]:
    names = tuple(domains.split(",")) if isinstance(domains, str) else tuple(domains)
    names = tuple(dict.fromkeys(n.strip() for n in names if n.strip()))
    bad = [n for n in names if n not in DOMAINS]
    if not names or bad:
        raise FreqrexError(f"--domains takes fft and/or stft separated by commas, got "
                           f"{','.join(names) or 'nothing'}")
    return names


def _check_ks(ks: Any) -> tuple[int, ...]:
    try:
        values = sorted({int(k) for k in ks})
    except (TypeError, ValueError):
        raise FreqrexError(f"ks must be positive whole numbers, got {ks!r}") from None
    if not values or values[0] < 1:
        raise FreqrexError(f"ks must be positive whole numbers, got {ks!r}")
    return tuple(values)


def _check_attack(mode: str, factor: float) -> float:
    if mode not in MODES:
        raise FreqrexError(f"attack mode must be remove or attenuate; got {mode!r}")
    if mode == "remove":
        return 0.0  # the factor plays no part; recording it would make resumes fail for nothing
    if not 0.0 <= float(factor) < 1.0:
        raise FreqrexError(f"--factor must be in [0, 1) to attenuate; got {factor}")
    return float(factor)


def _check_workers(workers: int, scheduler: str | None) -> None:
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 0:
        raise FreqrexError(f"--workers must be 0 (serial) or a positive number, got {workers}")
    if scheduler is not None and not scheduler.strip():
        raise FreqrexError("--scheduler needs an address such as tcp://host:8786")


def _prepare_model(model: Any, config: Config, sample_rate: int | None, labels: Any,
                   provider: Any, threads: int | None,
                   parallel: bool) -> tuple[Model | None, ModelSpec | None, tuple[str, Any]]:
    """Check the model here, before any clip; return it (serial), its spec and identity.

    The identity (path, sha256 of the file) is stored with the results: a database made with
    one model refuses to be resumed with another.
    """
    from freqrex import examples
    from freqrex.model import as_model

    if model is None or isinstance(model, (str, os.PathLike)):
        path = Path(model) if model is not None else examples.reference_model()
        providers = provider if isinstance(provider, str) else tuple(provider)
        spec = ModelSpec(str(path.resolve()), sample_rate=sample_rate,
                         labels=tuple(labels) if labels else None,
                         activation=config.output_activation, batch_size=config.batch_size,
                         providers=providers, threads=threads)
        # Serial runs keep this load for every clip; parallel runs only check the model here.
        checked = load_model(spec) if not parallel else _load(spec)
        _check_rate(checked, sample_rate)
        return (checked if not parallel else None), spec, (spec.path, _sha256(path))
    if parallel:
        raise FreqrexError("Dask workers load the model from its file; give an ONNX path, or "
                           "use workers=0 to evaluate a Python model in this process")
    loaded = as_model(model, sample_rate=sample_rate, labels=labels,
                      activation=config.output_activation, batch_size=config.batch_size)
    _check_rate(loaded, sample_rate)
    name = getattr(model, "__qualname__", type(model).__name__)
    return loaded, None, (f"python:{name}", None)


def _check_rate(model: Model, sample_rate: int | None) -> None:
    if model.sample_rate is None and sample_rate is None:
        raise FreqrexError("the model declares no sample rate; pass --sample-rate "
                           "(sample_rate=...) with the rate it expects")


def _settings(job: Job, labels: list[str] | None) -> dict[str, Any]:
    """What the results depend on, as stored in (and compared with) the database."""
    config = job.config.to_dict()
    config.pop("domain")  # every domain of `domains` is run
    config["freq_range"] = list(config["freq_range"]) if config["freq_range"] else None
    return {**config, "domains": list(job.domains), "ks": list(job.ks), "mode": job.mode,
            "factor": job.factor, "sample_rate": job.sample_rate,
            "labels": list(labels) if labels else None}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

