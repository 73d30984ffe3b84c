"""``explain``: clip -> spectrum -> mutants -> model -> responsibility -> explanations."""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from freqrex import audio as audio_io
from freqrex.config import Config, Progress
from freqrex.criterion import Criterion, on_top
from freqrex.domains import Domain, make_domain
from freqrex.errors import FreqrexWarning, InputError
from freqrex.explanation import Explanation, Prediction, Result, RunStats
from freqrex.extraction import Extracted, SufficientWatch, extract, rank_bins
from freqrex.model import Model, as_model
from freqrex.multiple import find_multiple, redundancy
from freqrex.mutants import Mutants
from freqrex.responsibility import responsibility_map


def explain(model: Any, audio: str | os.PathLike | np.ndarray, *,
            sample_rate: int | None = None, config: Config | None = None,
            progress: Progress | None = None, **params: Any) -> Result:
    """Explain a classifier's decision on one clip in the frequency domain.

    Parameters
    ----------
    model : Model, str, path, onnxruntime.InferenceSession or callable
        An ONNX model file or session, a :class:`freqrex.Model`, or any callable mapping
        float32 waveforms ``[B, n]`` to class scores ``[B, C]`` (a PyTorch model wrapped
        in a function works without exporting).
    audio : str, path or np.ndarray
        An audio file (any format libsndfile reads; mixed to mono and resampled to the
        model's rate) or a mono waveform.
    sample_rate : int, optional
        The waveform's rate when ``audio`` is an array, and the model's rate when the
        model does not declare one.
    config : Config, optional
        All parameters; keyword arguments (``iterations=20``, ``seed=1``...) override it.
    progress : callable, optional
        Called as ``progress(stage, done, total)``.

    Returns
    -------
    Result
        Responsibility map, the sufficient / necessary / complete explanations and
        run statistics.

    Examples
    --------
    >>> result = freqrex.explain("model.onnx", "clip.wav", iterations=20, seed=1)
    >>> result.sufficient.size, result.sufficient.hz_ranges[:3]
    """
    started = time.perf_counter()
    model, config = prepare(model, config, params)
    x, rate, source = _prepare_audio(audio, model, sample_rate)
    before = (model.stats.calls, model.stats.samples, model.stats.seconds)

    model.new_clip()  # an activation decided on an earlier clip must not decide this one
    original = np.asarray(model(x[None]), dtype=np.float64)[0]
    target = model.class_index(config.target) if config.target is not None else int(
        np.argmax(original))
    criterion = Criterion(model, target, float(original[target]), config.confidence_filter,
                          config.complete_tolerance, config.necessary_rule)
    notes = decision_warnings(original, target, model.label)
    for note in notes:
        warnings.warn(note, FreqrexWarning, stacklevel=2)
    domain = make_domain(x, rate, config.domain, config.n_fft, config.hop, config.freq_range)

    def report(stage: str) -> Callable[[int, int], None] | None:
        return (lambda done, total: progress(stage, done, total)) if progress else None

    mutants = Mutants(domain, criterion)   # every mutant of this explanation, asked once
    watch = SufficientWatch(domain, criterion, config, mutants)
    responsibility, search = responsibility_map(
        domain, criterion, config, original_passes=bool(criterion.passes(original[None])[0]),
        progress=report("search"), mutants=mutants, stop=watch)
    if search.stopped == "stable" and watch.best_map is not None:
        # the iterations after the last improving one were the stop's look-ahead
        responsibility = watch.best_map
    ranking = rank_bins(responsibility, domain.magnitude(), domain.candidates())
    if progress:
        progress("extract", 0, 1)
    found = extract(domain, criterion, ranking, config, mutants)
    if progress:
        progress("extract", 1, 1)

    explanations = {kind: _explanation(e, domain, model, target) for kind, e in found.items()}
    multi, summary = [], None
    if config.multiple > 1:
        if progress:
            progress("multiple", 0, 1)
        sets = find_multiple(domain, criterion, config, ranking, responsibility,
                             found["sufficient"], mutants)
        multi = [_explanation(e, domain, model, target) for e in sets.sets]
        summary = redundancy(sets, domain)
        if progress:
            progress("multiple", 1, 1)
    stats = RunStats(model_calls=model.stats.calls - before[0],
                     mutants=model.stats.samples - before[1],
                     search_mutants=search.mutants, splits=search.splits,
                     seconds_total=time.perf_counter() - started,
                     seconds_model=model.stats.seconds - before[2],
                     iterations=search.iterations, stopped=search.stopped,
                     used_iterations=(watch.best_iteration if search.stopped == "stable"
                                      and watch.best_map is not None else search.iterations),
                     sizes=watch.sizes, reused=mutants.asked - mutants.evaluated)
    return Result(audio=x, sample_rate=rate, target=target, target_label=model.label(target),
                  prediction=_prediction(original, model, target),
                  responsibility=responsibility, ranking=ranking, explanations=explanations,
                  stats=stats, config=config, domain=domain, model_info=_model_info(model),
                  source=source, warnings=notes, criterion=criterion.describe(),
                  explanations_multi=multi, redundancy=summary)


def decision_warnings(original: np.ndarray, target: int,
                      label: Callable[[int], str]) -> list[str]:
    """What makes a decision degenerate: scores all tied, or a target that is not on top.

    Such a decision has nothing (or something else) to explain; the run says so instead of
    reporting a tiny "verified" set.
    """
    p = np.asarray(original, dtype=np.float64)
    if float(np.ptp(p)) <= 1e-12 * max(1.0, float(np.abs(p).max())):
        return [f"the model's scores are all tied on this clip (every class at {p[0]:.4g}): "
                "there is no decision to explain, and no set can pass"]
    if not on_top(p[None], target)[0]:
        top = int(np.argmax(p))
        return [f"the target {label(target)} ({p[target]:.4g}) is not the model's top class "
                f"on this clip ({label(top)}: {p[top]:.4g}); the explanations are sets on "
                "which it becomes the top class"]
    return []


def prepare(model: Any, config: Config | None,
            params: dict[str, Any]) -> tuple[Model, Config]:
    """The run's config (``config`` with ``params`` applied, validated) and its model
    (opened with that config's activation and batch size unless it is a Model already)."""
    config = config or Config()
    if params:
        config = config.replace(**params)
    if not isinstance(model, Model):
        model = as_model(model, activation=config.output_activation,
                         batch_size=config.batch_size)
    return model, config


def _prepare_audio(audio: Any, model: Model,
                   sample_rate: int | None) -> tuple[np.ndarray, int, str | None]:
    """The clip as the model wants it: mono float32 at its rate and length."""
    rate = model.sample_rate or sample_rate
    if isinstance(audio, (str, os.PathLike)):
        if rate is None:
            raise InputError("the model declares no sample rate; give the rate it expects "
                             "as sample_rate")
        x, loaded = audio_io.load_audio(audio, rate)
        rate, source = loaded, str(audio)
    else:
        x = audio_io.check_waveform(audio)
        if sample_rate is None:
            raise InputError("a waveform array needs its sample_rate; pass sample_rate=...")
        if rate is None:
            rate = sample_rate
        elif rate != sample_rate:
            x = audio_io.resample(x, sample_rate, rate)
        source = None
    if model.input_length is not None:
        x = audio_io.fit_length(x, model.input_length, sample_rate=rate)
    return x, int(rate), source


def _prediction(probs: np.ndarray, model: Model, target: int) -> Prediction:
    top = int(np.argmax(probs))
    return Prediction(class_index=top, label=model.label(top), confidence=float(probs[top]),
                      target_confidence=float(probs[target]))


def _explanation(found: Extracted, domain: Domain, model: Model, target: int) -> Explanation:
    if found.k is None:
        return Explanation(found.kind, found=False, bins=np.empty(0, dtype=np.int64),
                           minimal_note=found.minimal_note)
    bins = np.sort(found.bins)
    removed = (_prediction(found.removed_probabilities, model, target)
               if found.removed_probabilities is not None else None)
    assert found.probabilities is not None  # a found set has been evaluated
    return Explanation(
        kind=found.kind, found=True, bins=bins, verified=found.verified,
        share_bins=len(bins) / domain.n_features, share_energy=domain.energy_share(bins),
        hz_ranges=domain.hz_ranges(bins), time_ranges=domain.time_ranges(bins),
        prediction=_prediction(found.probabilities, model, target), removed=removed,
        audio=found.audio, prefix_size=found.k, proven_smallest=found.proven,
        minimal=found.minimal, minimal_note=found.minimal_note)


def _model_info(model: Model) -> dict:
    info = {"provider": model.provider, "activation": model.activation,
            "sample_rate": model.sample_rate, "labels": model.labels,
            "source": model.source}
    throughput = getattr(model, "throughput", None)  # ONNX models: sessions or threads
    if throughput is not None:
        info["throughput"] = throughput.to_dict()
        from freqrex.model.opening import cuda_fell_back

        info["cuda_fallback"] = model.provider == "CPUExecutionProvider" and cuda_fell_back()
    return info


def explain_many(model: Any, clips: Any, *, sample_rate: int | None = None,
                 config: Config | None = None, **params: Any) -> list[Result]:
    """Explain a list of clips with one model, in memory (no database, no workers).

    The model is opened once and reused; each clip decides its own output activation, as
    it would alone, so the results equal those of :func:`explain` one clip at a time.

    Parameters
    ----------
    model : Model, path, session or callable
        As for :func:`explain`.
    clips : iterable of str, path or np.ndarray
        Audio files or mono waveforms (waveforms at ``sample_rate``).
    sample_rate, config, **params
        As for :func:`explain`, the same for every clip.

    Returns
    -------
    list of Result
        One per clip, in order.

    Examples
    --------
    >>> results = freqrex.explain_many("model.onnx", ["a.wav", "b.wav"], seed=0)
    >>> [r.sufficient.size for r in results]
    """
    model, config = prepare(model, config, params)
    return [explain(model, clip, sample_rate=sample_rate, config=config) for clip in clips]
