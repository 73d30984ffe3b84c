"""Run the per-clip task over a folder: serially or on Dask, resumably.

The calling process is the only writer of the SQLite store (:mod:`freqrex.evaluation.store`),
one transaction per clip, so a run killed at any moment is resumed by running it again:
finished clips are skipped, none is lost or duplicated. Parallelism comes from Dask
distributed: a local cluster of worker processes by default, or an existing cluster given
by its scheduler address. Each worker process opens the model once.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from freqrex.config import AttackConfig, Config, ModelConfig, Progress
from freqrex.errors import FreqrexError, InputError, ModelError, first_line
from freqrex.evaluation.checks import check_workers, prepare_model, settings_of, split_params
from freqrex.evaluation.claims import Claims, ClipQueue
from freqrex.evaluation.report import Summary, summarize
from freqrex.evaluation.store import Store
from freqrex.evaluation.task import (
    ClipRecord,
    Job,
    describe_bug,
    error_record,
    evaluate_clip,
    limited_threads,
    open_model,
    worker_state,
)
from freqrex.model import Model, load_labels

# What libsndfile reads (mp3 since libsndfile 1.1), lower case; hidden files are skipped.
AUDIO_EXTENSIONS = frozenset({
    ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc",
    ".au", ".snd", ".caf", ".w64", ".rf64", ".voc", ".htk", ".sd2", ".paf", ".svx", ".nist",
})

__all__ = ["AUDIO_EXTENSIONS", "Evaluation", "evaluate", "find_clips"]


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
    duplicates : int
        Clips this run computed but found already stored by another run (claims make this
        0 unless a run stopped renewing its claims for a whole lease).
    summary : Summary
        The table over every clip in the database (see :mod:`freqrex.evaluation.report`).
    """

    db: Path
    total: int
    skipped: int
    processed: int
    errors: int
    seconds: float
    workers: int
    summary: Summary = field(repr=False)
    duplicates: int = 0


def find_clips(data_dir: str | os.PathLike) -> list[tuple[str, Path]]:
    """Audio files under ``data_dir``, as (path relative to it in POSIX form, path), sorted.

    Raises
    ------
    InputError
        When ``data_dir`` is not a folder, or holds no audio file.

    Examples
    --------
    >>> [clip for clip, _ in find_clips("clips/")]  # doctest: +SKIP
    ['a/one.wav', 'b/two.flac']
    """
    root = Path(data_dir)
    if not root.is_dir():
        what = "is a file" if root.exists() else "does not exist"
        raise InputError(f"data folder {root} {what}; give a folder of audio files")
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if not name.startswith(".") and Path(name).suffix.lower() in AUDIO_EXTENSIONS:
                path = Path(folder) / name
                found.append((path.relative_to(root).as_posix(), path))
    if not found:
        raise InputError(
            f"no audio files under {root} (looked for {', '.join(sorted(AUDIO_EXTENSIONS))})")
    return sorted(found)


def evaluate(model: Any, data_dir: str | os.PathLike, db: str | os.PathLike, *,
             config: Config | None = None, attack: AttackConfig | None = None,
             options: ModelConfig | None = None, workers: int = 2,
             scheduler: str | None = None, retry_errors: bool = False,
             timeout: float = 10.0, compare: bool = False, progress: Progress | None = None,
             on_clip: Callable[[ClipRecord], None] | None = None,
             **params: Any) -> Evaluation:
    """Explain and attack every audio file under ``data_dir``; store the results in ``db``.

    A run can be interrupted at any moment (even killed): running it again with the same
    settings evaluates only the clips not yet in ``db``.

    Parameters
    ----------
    model : str, path, Model, callable or None
        An ONNX file (None: the bundled reference model). A :class:`freqrex.Model` or a
        Python callable works only in serial runs (``workers=0``); workers open the file.
    data_dir : str or path
        Folder searched recursively for audio files (see :data:`AUDIO_EXTENSIONS`).
    db : str or path
        The SQLite results database; created when missing, resumed when it exists.
    config : Config, optional
        Explanation parameters. Its ``domain`` is ignored: every domain of the attack's
        ``domains`` is run.
    attack : AttackConfig, optional
        The attacks: change the ``k`` most responsible coefficients, for each ``k``, in each
        of ``domains`` (see :func:`freqrex.attack`).
    options : ModelConfig, optional
        How the model file is opened (sample rate, labels, provider, threads). ``threads``
        defaults to 1 with Dask workers (they share the cores).
    workers : int
        Local Dask worker processes (one thread each); 0 runs serially in this process.
    scheduler : str, optional
        Address of an existing Dask scheduler (``tcp://host:port``); ``workers`` is then
        ignored. The model and the clips must be readable at the same paths on the workers.
    retry_errors : bool
        Evaluate again the clips an earlier run recorded with an error of their own (an
        unreadable file...). Clips that failed for another reason (a bug, a worker that
        died) are always evaluated again.
    timeout : float
        Seconds to wait for the scheduler and its first worker.
    compare : bool
        Also score, in every domain, the baselines' rankings against responsibility's as
        :func:`freqrex.compare` does (its ``baselines`` table; the report's "rankings
        compared"). A setting of the run: a resumed run must give the same.
    progress : callable, optional
        ``progress("clips", done, total)``: once before the first clip, then after each
        clip is stored (``done`` counts earlier runs too).
    on_clip : callable, optional
        Called with each stored :class:`~freqrex.evaluation.task.ClipRecord`, right after
        its ``progress`` call.
    **params
        :class:`Config` fields (``iterations=5``, ``seed=1``...) and :class:`AttackConfig`
        fields (``ks=(1, 5)``, ``domains=("fft",)``...), overriding ``config`` and ``attack``.

    Returns
    -------
    Evaluation

    Raises
    ------
    FreqrexError
        For a missing or empty data folder, a bad model or parameter, a database made with
        other settings, or an unreachable scheduler.

    Examples
    --------
    >>> run = evaluate("model.onnx", "clips/", "results.sqlite", workers=0,
    ...                iterations=2, ks=(1, 5))  # doctest: +SKIP
    >>> run.summary.value("fft", "flip_rate_k1")  # doctest: +SKIP
    """
    started = time.perf_counter()
    config, attack = split_params(config or Config(), attack or AttackConfig(), params)
    options = options or ModelConfig()
    check_workers(workers, scheduler)
    clips = find_clips(data_dir)
    parallel = workers > 0 or scheduler is not None
    if options.threads is None and parallel:
        # several worker processes share the cores: no threads within a call
        options = options.replace(threads=1)
    labels = load_labels(options.labels) if options.labels is not None else None
    local_model, spec, identity = prepare_model(model, config, options, labels, parallel)
    if attack.to is not None:  # a targeted attack's class is checked before any clip
        (local_model or open_model(spec)).class_index(attack.to)  # type: ignore[arg-type]
    job = Job(model=spec, config=config, attack=attack, sample_rate=options.sample_rate,
              compare=compare)
    with Store(db, settings=settings_of(job, labels), model=identity[0],
               model_sha256=identity[1], data_dir=str(Path(data_dir).resolve())) as store:
        # Errors that were not the clip's fault are always tried again; the others on request.
        store.forget(store.error_clips(retry_only=not retry_errors))
        done = store.done_clips()
        pending = [(c, p) for c, p in clips if c not in done]
        counter = _Counter(store, len(clips), len(clips) - len(pending), progress, on_clip)
        if not pending:
            used = 0
        else:
            # other evaluate processes on this database share the clips through claims
            with Claims(store.path).held() as claims:
                queue = ClipQueue(pending, claims)
                if parallel:
                    used = _run_dask(queue, job, counter, workers, scheduler, timeout)
                else:
                    # a model file is taken from the per-process cache (opened above), so
                    # each record shows its load count; a Python model is handed over as is
                    used = _run_serial(queue, job, counter,
                                       local_model if spec is None else None)
        summary = summarize(store)
    return Evaluation(db=Path(db), total=len(clips), skipped=len(clips) - counter.processed,
                      processed=counter.processed, errors=counter.errors,
                      seconds=time.perf_counter() - started, workers=used, summary=summary,
                      duplicates=counter.duplicates)


class _Counter:
    """Stores records as they arrive and reports progress."""

    def __init__(self, store: Store, total: int, done: int, progress: Progress | None,
                 on_clip: Callable[[ClipRecord], None] | None) -> None:
        self.store, self.total, self.done = store, total, done
        self.progress, self.on_clip = progress, on_clip
        self.processed = self.errors = self.duplicates = 0
        if progress is not None:
            progress("clips", done, total)

    def __call__(self, record: ClipRecord) -> None:
        if not self.store.write(record):
            # a clip computed twice (a retried task, or a run whose claim had expired): the
            # first copy stands
            self.duplicates += 1
            return
        self.done += 1
        self.processed += 1
        self.errors += record.status == "error"
        if self.progress is not None:
            self.progress("clips", self.done, self.total)
        if self.on_clip is not None:  # after progress: its counts include this clip
            self.on_clip(record)


def _run_serial(queue: ClipQueue, job: Job, store: _Counter, model: Model | None) -> int:
    with limited_threads(job):  # once for the run, not per clip
        while True:
            taken = queue.take(1)
            if not taken:
                if queue.wait():
                    continue
                break
            for clip, path in taken:
                store(evaluate_clip(clip, str(path), job, model=model))
    return 0


def _run_dask(queue: ClipQueue, job: Job, store: _Counter, workers: int,
              scheduler: str | None, timeout: float) -> int:
    from distributed import as_completed

    with _dask_client(workers, scheduler, timeout) as client:
        # Open the model on every worker now: a worker that cannot read it fails the run with
        # one message instead of recording an error for every clip.
        try:
            states = client.run(worker_state, job.model)
        except FreqrexError as exc:
            raise ModelError(f"a Dask worker cannot load the model: {exc}") from None
        # Claimed (and submitted) a few at a time, two per worker in flight: clips another
        # run is waiting for are not all held by this one.
        window = 2 * max(1, len(states))
        futures: dict[Any, str] = {}
        results = as_completed()
        numbers = itertools.count()

        def submit(limit: int) -> None:
            for clip, path in queue.take(limit):
                key = f"freqrex-clip-{next(numbers)}-{os.getpid()}-{time.time_ns()}"
                future = client.submit(evaluate_clip, clip, str(path), job, pure=False, key=key)
                futures[future] = clip
                results.add(future)

        submit(window)
        while futures or queue.wait():
            if not futures:
                submit(window)
                continue
            future = next(results)
            clip = futures.pop(future)
            try:
                record = future.result()
            except Exception as exc:  # the worker died on it (KilledWorker) or similar
                record = replace(
                    error_record(clip, f"the Dask task failed: {describe_bug(exc)}",
                                 retry=True), finished=time.time())
            store(record)
            future.release()
            submit(1)
        return len(states)


@contextmanager
def _dask_client(workers: int, scheduler: str | None, timeout: float) -> Iterator[Any]:
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError, ValueError) as exc:
            raise FreqrexError(
                f"cannot reach the Dask scheduler at {scheduler} ({first_line(exc)}); start "
                "one (`dask scheduler`, then `dask worker ADDRESS`) or give no scheduler"
            ) from None
        with client:
            _wait_for_workers(client, scheduler, timeout)
            yield client
        return
    # One task thread per worker process; the libraries inside are limited by the model's
    # threads (see task.worker_state), not by environment variables, which Dask sets in the
    # worker only after the main module (and so Numba) was imported.
    #
    # The local cluster speaks TLS with credentials made for this run only (mutual
    # authentication: a client or worker without them is refused), and has no dashboard:
    # plain TCP on localhost would let any local user submit code that runs as this user.
    # Dask's HTTP servers listen whatever the dashboard setting (the scheduler's on 8787);
    # without routes they answer 404 to everything, on a random port of 127.0.0.1.
    import dask

    no_routes: dict[str, list] = {"distributed.scheduler.http.routes": [],
                                  "distributed.worker.http.routes": []}
    with dask.config.set(no_routes):  # the nannies hand this config to their workers
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               security=local_security(), protocol="tls://", host="127.0.0.1",
                               dashboard_address="127.0.0.1:0",
                               scheduler_kwargs={"dashboard": False},
                               silence_logs=logging.ERROR)
    with cluster, Client(cluster) as client:
        yield client


def local_security() -> Any:
    """Temporary TLS credentials for a local Dask cluster (``Security.temporary()``); a
    FreqrexError when the ``cryptography`` package that makes them is missing."""
    from distributed.security import Security

    try:
        return Security.temporary()
    except ImportError as exc:
        raise FreqrexError(
            "a local Dask cluster needs the cryptography package for its TLS credentials "
            f"({first_line(exc)}); pip install cryptography, or use workers=0") from None


def _wait_for_workers(client: Any, scheduler: str, timeout: float) -> None:
    try:
        client.wait_for_workers(1, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise FreqrexError(
            f"the Dask scheduler at {scheduler} has no workers ({first_line(exc)}); start "
            f"some with `dask worker {scheduler}`") from None
