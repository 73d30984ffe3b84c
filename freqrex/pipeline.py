"""``explain``: clip -> spectrum -> mutants -> model -> responsibility -> explanations."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from freqrex import audio as audio_io
from freqrex.config import Config, Progress
from freqrex.criterion import Criterion
from freqrex.domains import Domain, make_domain
from freqrex.errors import InputError
from freqrex.explanation import Explanation, Prediction, Result, RunStats
from freqrex.extraction import Extracted, extract, rank_bins
from freqrex.model import Model, as_model
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
    config = config or Config()
    if params:
        config = config.replace(**params)
    if not isinstance(model, Model):
        model = as_model(model, activation=config.output_activation,
                         batch_size=config.batch_size)
    x, rate, source = _prepare_audio(audio, model, sample_rate)
    before = (model.stats.calls, model.stats.samples, model.stats.seconds)

    original = np.asarray(model(x[None]), dtype=np.float64)[0]
    target = model.class_index(config.target) if config.target is not None else int(
        np.argmax(original))
    criterion = Criterion(model, target, float(original[target]), config.confidence_filter)
    domain = make_domain(x, rate, config.domain, config.n_fft, config.hop, config.freq_range)

    def report(stage: str) -> Callable[[int, int], None] | None:
        return (lambda done, total: progress(stage, done, total)) if progress else None

    responsibility, search = responsibility_map(
        domain, criterion, config, original_passes=bool(criterion.passes(original[None])[0]),
        progress=report("search"))
    ranking = rank_bins(responsibility, domain.magnitude(), domain.candidates())
    if progress:
        progress("extract", 0, 1)
    found = extract(domain, criterion, ranking, config)
    if progress:
        progress("extract", 1, 1)

    explanations = {kind: _explanation(e, ranking, domain, model, target)
                    for kind, e in found.items()}
    stats = RunStats(model_calls=model.stats.calls - before[0],
                     mutants=model.stats.samples - before[1],
                     search_mutants=search.mutants, splits=search.splits,
                     seconds_total=time.perf_counter() - started,
                     seconds_model=model.stats.seconds - before[2])
    return Result(audio=x, sample_rate=rate, target=target, target_label=model.label(target),
                  prediction=_prediction(original, model, target),
                  responsibility=responsibility, ranking=ranking, explanations=explanations,
                  stats=stats, config=config, domain=domain, model_info=_model_info(model),
                  source=source)


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


def _explanation(found: Extracted, ranking: np.ndarray, domain: Domain, model: Model,
                 target: int) -> Explanation:
    if found.k is None:
        return Explanation(found.kind, found=False, bins=np.empty(0, dtype=np.int64))
    bins = np.sort(ranking[:found.k])
    removed = (_prediction(found.removed_probabilities, model, target)
               if found.removed_probabilities is not None else None)
    assert found.probabilities is not None  # a found set has been evaluated
    return Explanation(
        kind=found.kind, found=True, bins=bins, verified=found.verified,
        share_bins=found.k / domain.n_features, share_energy=domain.energy_share(bins),
        hz_ranges=domain.hz_ranges(bins), time_ranges=domain.time_ranges(bins),
        prediction=_prediction(found.probabilities, model, target), removed=removed,
        audio=found.audio)


def _model_info(model: Model) -> dict:
    return {"provider": model.provider, "activation": model.activation,
            "sample_rate": model.sample_rate, "labels": model.labels,
            "source": model.source}
