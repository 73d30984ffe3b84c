"""The per-clip task: one clip in, one :class:`ClipRecord` out, never an exception.

:func:`evaluate_clip` is a top-level function so that Dask can ship it to its workers; each
worker process opens the model once (:func:`cached_model`) and reuses it for every clip it
is given. The records are plain data (dataclasses of numbers and strings), and
:mod:`freqrex.evaluation.store` derives its table columns from their fields, so a new field
is added here and only here.
"""

from __future__ import annotations

import math
import os
import socket
import time
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from freqrex.config import AttackConfig, Config, ModelConfig
from freqrex.criterion import KINDS
from freqrex.errors import FreqrexError, FreqrexWarning
from freqrex.model import Model

__all__ = ["AttackRecord", "BaselineRecord", "ClipRecord", "DomainRecord", "Job", "ModelSpec",
           "SetRecord", "cached_model", "compare_records", "error_record", "evaluate_clip",
           "explainer_for", "limited_threads", "open_model", "worker_state"]


# -- the records ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SetRecord:
    """One explanation of one domain: was a set found, did the final model call confirm
    it, its size in features, its share of the domain's features and of the clip's energy,
    the prefix of the ranking it was shrunk from and whether it is proven minimal."""

    found: bool
    verified: bool
    size: int | None = None
    share: float | None = None
    energy: float | None = None
    prefix_size: int | None = None   # the smallest prefix of the ranking it was shrunk from
    minimal: bool | None = None      # proven subset-minimal


@dataclass(frozen=True)
class DomainRecord:
    """One domain's results for a clip; ``sets`` has one :class:`SetRecord` per kind.

    With ``multiple > 1`` (:mod:`freqrex.multiple`): ``disjoint_sets``, the sufficient sets
    found within the budget (disjoint up to ``max_overlap``; a lower bound on the model's
    independent reasons), and their union's shares of the features and of the energy.
    None when only one set was searched.
    """

    n_features: int
    model_calls: int
    seconds: float
    seconds_model: float
    sets: dict[str, SetRecord] = field(default_factory=dict)
    disjoint_sets: int | None = None
    union_share: float | None = None
    union_energy: float | None = None


@dataclass(frozen=True)
class AttackRecord:
    """One attack step: the ``k`` most responsible coefficients of ``domain`` changed in
    ``mode`` (see :class:`freqrex.manipulation.AttackStep`). ``gain`` is 0 for removal and
    None in set mode; ``gain_db`` is None for both. The last four fields are the
    perceptual proxy of :mod:`freqrex.perception`."""

    clip: str
    domain: str
    mode: str
    k: int
    touched: int
    within_necessary: bool
    flipped: bool
    class_index: int
    label: str
    confidence: float
    target_confidence: float
    snr_db: float | None  # SQLite stores NaN as NULL
    gain: float | None = None
    gain_db: float | None = None
    seg_snr_db: float | None = None
    mask_ratio_db: float | None = None  # worst perturbation-to-mask ratio (None: no change)
    above_mask: float | None = None
    inaudible: bool | None = None
    answered: bool = True          # False: the model's output on the change was not finite


@dataclass(frozen=True)
class BaselineRecord:
    """One ranking of one domain judged as :func:`freqrex.compare` judges it (``evaluate
    --compare``): its smallest sufficient / necessary / complete prefixes (None: not found
    within the budget), whether each is proven smallest, their shares of the domain's
    features, and the areas of its deletion and insertion curves. ``mutants``: spent making
    the ranking (for responsibility, by the explanation's search); ``waveforms``: what the
    comparison had the model evaluate for it beyond the explanation."""

    clip: str
    domain: str
    ranking: str
    n_features: int
    mutants: int
    waveforms: int
    deletion_area: float
    insertion_area: float
    sufficient_size: int | None = None
    necessary_size: int | None = None
    complete_size: int | None = None
    sufficient_share: float | None = None
    necessary_share: float | None = None
    complete_share: float | None = None
    sufficient_proven: bool = False
    necessary_proven: bool = False
    complete_proven: bool = False


@dataclass(frozen=True)
class ClipRecord:
    """What the task returns for one clip, and what the store writes (one ``clips`` row).

    ``status`` is ``"ok"`` (the target, per-domain results in ``domains`` and the attack
    steps in ``attacks``) or ``"error"`` (the message in ``error``; ``retry`` when it was
    not the clip's fault, so that a later run evaluates it again). The last fields say
    where and how fast it ran; ``baselines`` (``--compare`` only) has one
    :class:`BaselineRecord` per domain and ranking.
    """

    clip: str
    status: str = "ok"
    error: str | None = None
    retry: bool = False
    warnings: tuple[str, ...] = ()
    target: int | None = None
    label: str | None = None
    confidence: float | None = None
    sample_rate: int | None = None
    n_samples: int | None = None
    n_bins: int | None = None
    domains: dict[str, DomainRecord] = field(default_factory=dict)
    model_calls: int | None = None
    seconds: float | None = None
    seconds_model: float | None = None
    worker: str | None = None
    model_loads: int | None = None
    finished: float | None = None
    attacks: tuple[AttackRecord, ...] = ()
    baselines: tuple[BaselineRecord, ...] = ()


def error_record(clip: str, message: str, retry: bool = False) -> ClipRecord:
    """The record of a clip that could not be evaluated; ``retry``: not the clip's fault."""
    return ClipRecord(clip=clip, status="error", error=message, retry=retry)


# -- what to run ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSpec:
    """How a worker opens the model file: picklable, and the key of the per-process cache,
    so two specs that differ in any option are two models."""

    path: str
    options: ModelConfig = field(default_factory=ModelConfig)
    activation: str = "auto"
    batch_size: int = 32


@dataclass(frozen=True)
class Job:
    """Everything one clip's task needs besides the clip itself."""

    model: ModelSpec | None       # None: the model object is passed along (serial runs only)
    config: Config
    attack: AttackConfig
    sample_rate: int | None = None
    compare: bool = False         # also rank by the baselines and score every ranking


# Per worker process: models opened so far, and how many times each spec was opened (a test
# and the records check that it is once).
_MODELS: dict[ModelSpec, Model] = {}
_LOADS: dict[ModelSpec, int] = {}
_EXPLAINERS: dict[tuple, Any] = {}   # the Explainer of the job this worker runs


def open_model(spec: ModelSpec) -> Model:
    """Open the model of ``spec`` (every call opens it again; see :func:`cached_model`)."""
    from freqrex.model import load_model

    return load_model(spec.path, spec.options, activation=spec.activation,
                      batch_size=spec.batch_size)


def cached_model(spec: ModelSpec) -> Model:
    """The model of ``spec``, opened once per process and then reused."""
    model = _MODELS.get(spec)
    if model is None:
        model = open_model(spec)
        _MODELS[spec] = model
        _LOADS[spec] = _LOADS.get(spec, 0) + 1
    return model


def worker_state(spec: ModelSpec | None = None) -> dict[str, Any]:
    """This process's id and model load counts (what ``client.run`` reports per worker).

    With a ``spec``, also open its model and cap this process's kernel threads for good.
    """
    if spec is not None:
        cached_model(spec)
        if spec.options.threads is not None:
            from freqrex import _kernels as kernels

            kernels.set_threads(spec.options.threads)
    return {"worker": _worker_id(), "loads": {s.path: n for s, n in _LOADS.items()},
            "spec_loads": _LOADS.get(spec, 0) if spec is not None else None}


# -- the task ------------------------------------------------------------------------------


def evaluate_clip(clip: str, path: str, job: Job, model: Model | None = None) -> ClipRecord:
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
        The model to use instead of opening ``job.model`` (serial runs of a Python model).

    Returns
    -------
    ClipRecord
        ``status`` ``"ok"`` with the results, or ``"error"`` with the message; always the
        worker id and how often it opened the model.
    """
    started = time.perf_counter()
    loads = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FreqrexWarning)
        try:
            if model is None:
                if job.model is None:
                    raise ValueError("a job without a model spec needs the model object")
                model = cached_model(job.model)
                loads = _LOADS[job.model]
            record = _evaluate(clip, path, job, model)
        except FreqrexError as exc:
            record = error_record(clip, str(exc))
        except Exception as exc:  # a bug or a model crash must not stop the other clips
            record = error_record(clip, describe_bug(exc), retry=True)
    shown = [str(w.message) for w in caught if issubclass(w.category, FreqrexWarning)]
    return replace(record, warnings=tuple(dict.fromkeys(shown)), worker=_worker_id(),
                   model_loads=loads, seconds=time.perf_counter() - started,
                   finished=time.time())


def _evaluate(clip: str, path: str, job: Job, model: Model) -> ClipRecord:
    # Each clip decides the model's output activation from its own original, as `freqrex run`
    # does; otherwise the first clip a worker sees would decide it for the others.
    model.activation = job.config.output_activation
    about: dict[str, Any] = {}
    domains: dict[str, DomainRecord] = {}
    attacks: list[AttackRecord] = []
    baselines: list[BaselineRecord] = []
    with limited_threads(job):
        for domain in job.attack.domains:
            result, domains[domain], steps = _run_domain(clip, path, job, model, domain)
            attacks += steps
            about = about or _about_clip(result)
            if job.compare:  # after the domain record: its cost stays the explanation's
                baselines += compare_records(clip, domain, result, model)
    return ClipRecord(clip=clip, status="ok", **about, domains=domains, attacks=tuple(attacks),
                      baselines=tuple(baselines),
                      model_calls=sum(d.model_calls for d in domains.values()),
                      seconds_model=sum(d.seconds_model for d in domains.values()))


def explainer_for(job: Job, model: Model) -> Any:
    """The worker's :class:`freqrex.Explainer` of ``model`` with the job's settings, made
    once per process and job and kept warm for every clip it is given."""
    from freqrex.engine import Explainer

    key = (id(model), job.config, job.attack, job.sample_rate)
    explainer = _EXPLAINERS.get(key)
    if explainer is None or explainer.model is not model:
        explainer = Explainer(model, config=job.config, attack_config=job.attack,
                              sample_rate=job.sample_rate)
        _EXPLAINERS.clear()   # one job at a time per worker: nothing else to keep
        _EXPLAINERS[key] = explainer
    return explainer


def _run_domain(clip: str, path: str, job: Job, model: Model,
                domain: str) -> tuple[Any, DomainRecord, list[AttackRecord]]:
    """Explain the clip in ``domain`` and attack it: the result and its two records."""
    explainer = explainer_for(job, model)
    before = (model.stats.calls, model.stats.seconds, time.perf_counter())
    result = explainer.explain_for_attack(path, domain=domain)
    # every mode on the one explanation (the explanation's cost is in the domain record)
    steps = [_attack_record(clip, domain, step)
             for attacked in explainer.attacks(result=result).values()
             for step in attacked.steps]
    return result, _domain_record(result, model, before), steps


def compare_records(clip: str, domain: str, result: Any,
                    model: Model) -> list[BaselineRecord]:
    """Score every ranking of :func:`freqrex.compare` on ``result``'s clip and domain, reusing
    its responsibility ranking (the search is not run again): one record per ranking."""
    from freqrex.comparison import compare

    comparison = compare(model, None, result=result)
    n = comparison.n_features
    records = []
    for r in comparison.rankings:
        per_kind: dict[str, Any] = {}
        for kind in KINDS:
            size = r.sizes[kind]
            per_kind[f"{kind}_size"] = size
            per_kind[f"{kind}_share"] = None if size is None else size / n
            per_kind[f"{kind}_proven"] = bool(r.proven[kind])
        records.append(BaselineRecord(
            clip=clip, domain=domain, ranking=r.name, n_features=n, mutants=int(r.mutants),
            waveforms=int(r.waveforms), deletion_area=float(r.deletion_area),
            insertion_area=float(r.insertion_area), **per_kind))
    return records


def _about_clip(result: Any) -> dict[str, Any]:
    """The ClipRecord fields that every domain's result agrees on."""
    n = int(result.audio.shape[0])
    return {"target": result.target, "label": result.target_label,
            "confidence": result.confidence, "sample_rate": result.sample_rate,
            "n_samples": n, "n_bins": n // 2 + 1}


@contextmanager
def limited_threads(job: Job) -> Iterator[None]:
    """The kernels (FFT pool, Numba) use the model's ``threads`` here, as ONNX Runtime does.

    Changing the setting drops the kernels' plans, so a run sets it once around all its
    clips (a Dask worker: in :func:`worker_state`); then this is a no-op per clip.
    """
    threads = job.model.options.threads if job.model is not None else None
    if threads is None:
        yield
        return
    from freqrex import _kernels as kernels

    before = kernels.threads()
    if before != threads:
        kernels.set_threads(threads)
    try:
        yield
    finally:
        if before != threads:
            kernels.set_threads(before)


def _domain_record(result: Any, model: Model, before: tuple[int, float, float]) -> DomainRecord:
    sets = {}
    for kind in KINDS:
        e = result.explanations[kind]
        sets[kind] = SetRecord(found=bool(e.found), verified=bool(e.verified),
                               size=e.size if e.found else None,
                               share=float(e.share_bins) if e.found else None,
                               energy=float(e.share_energy) if e.found else None,
                               prefix_size=e.prefix_size if e.found else None,
                               minimal=bool(e.minimal) if e.found else None)
    red = result.redundancy  # None unless multiple > 1
    return DomainRecord(n_features=int(result.responsibility.size),
                        model_calls=model.stats.calls - before[0],
                        seconds_model=model.stats.seconds - before[1],
                        seconds=time.perf_counter() - before[2], sets=sets,
                        disjoint_sets=None if red is None else int(red["sets"]),
                        union_share=None if red is None else float(red["union_share_features"]),
                        union_energy=None if red is None else float(red["union_share_energy"]))


def _attack_record(clip: str, domain: str, step: Any) -> AttackRecord:
    p = step.prediction

    def finite(v: float | None) -> float | None:
        return float(v) if v is not None and math.isfinite(v) else None

    return AttackRecord(clip=clip, domain=domain, mode=str(step.mode), k=int(step.k),
                        touched=int(step.touched), within_necessary=bool(step.within_necessary),
                        flipped=bool(step.flipped), class_index=int(p.class_index),
                        label=p.label, confidence=float(p.confidence),
                        target_confidence=float(p.target_confidence),
                        snr_db=float(step.snr_db), gain=step.gain, gain_db=finite(step.gain_db),
                        seg_snr_db=finite(step.seg_snr_db),
                        mask_ratio_db=finite(step.mask_ratio_db), above_mask=step.above_mask,
                        inaudible=step.inaudible, answered=bool(step.answered))


def describe_bug(exc: BaseException) -> str:
    """An unexpected exception in one line, with the file and line it came from."""
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" at {Path(frame.filename).name}:{frame.lineno}" if frame else ""
    text = str(exc).strip().splitlines()
    return f"internal error: {type(exc).__name__}: {text[0] if text else ''}{where}"


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"
