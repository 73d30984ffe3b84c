"""Manipulation: how little must change in a clip to change the model's mind.

The k-coefficient attack changes the ``k`` most responsible coefficients of the clip
(``Result.attack_ranking``), ``k`` in ``ks``, in one of the modes of
:class:`~freqrex.config.AttackConfig`: ``remove``, ``attenuate`` or ``amplify`` (a fixed
gain), ``set`` (each to one magnitude, phase kept) or ``gain`` (the smallest gain that
flips, :mod:`freqrex.gain_search`). Each step says whether the class flipped, to what, and
how large the change was: SNR, the perceptual proxy of :mod:`freqrex.perception`, the
coefficients changed and which of the result's sufficient sets they touch.

A targeted attack (``to``) ranks by the named class's responsibility instead, and a step
succeeds (``flipped``) when that class is on top.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from freqrex.config import AttackConfig, Config, Progress
from freqrex.errors import FreqrexWarning, InputError
from freqrex.explanation import Prediction, Result
from freqrex.gain_search import changed, search_gains
from freqrex.model import Model, as_model
from freqrex.perception import Judge
from freqrex.pipeline import explain

NO_ANSWER = Prediction(-1, "(no answer: the model's output was not finite)", 0.0, 0.0)
"""The prediction reported for a change on which the model's output was not finite."""


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


@dataclass
class AttackStep:
    """The clip with its ``k`` most responsible coefficients changed.

    ``gain`` is what the changed coefficients were multiplied by (None in ``set`` mode,
    where each has its own; in ``gain`` mode without a flip, the try that came closest);
    ``flipped`` means the top class is no longer the target, or
    in a targeted attack that the named class is on top. The perceptual fields are those
    of :class:`freqrex.perception.Perception`.
    """

    k: int
    touched: int                 # coefficients actually changed (k, or fewer if the set is small)
    within_necessary: bool       # all touched coefficients belong to the necessary set
    flipped: bool
    prediction: Prediction
    snr_db: float
    audio: np.ndarray = field(repr=False)
    mode: str = "remove"
    gain: float | None = 0.0
    seg_snr_db: float | None = None
    mask_ratio_db: float | None = None   # worst perturbation-to-mask ratio
    above_mask: float | None = None      # share of band-frames above their mask
    inaudible: bool | None = None
    evaluations: int = 1                 # waveforms the model scored for this step
    features: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64), repr=False)
    touches_sets: list[int] = field(default_factory=list)  # of Result.explanations_multi
    answered: bool = True                # False: the model's output was not finite

    @property
    def gain_db(self) -> float | None:
        """``20 log10 gain`` (-inf for removal; None in set mode)."""
        if self.gain is None:
            return None
        return -math.inf if self.gain == 0 else 20.0 * math.log10(self.gain)

    def to_dict(self) -> dict:
        return {"k": self.k, "touched": self.touched, "within_necessary": self.within_necessary,
                "flipped": self.flipped, "prediction": self.prediction.to_dict(),
                "mode": self.mode, "gain": self.gain, "gain_db": _finite(self.gain_db),
                "removed": self.gain == 0.0, "snr_db": _finite(self.snr_db),
                "seg_snr_db": _finite(self.seg_snr_db),
                "mask_ratio_db": _finite(self.mask_ratio_db), "above_mask": self.above_mask,
                "inaudible": self.inaudible, "evaluations": self.evaluations,
                "answered": self.answered,
                "touches_sets": list(self.touches_sets)}


@dataclass
class AttackResult:
    """All steps of one attack (one mode) on one clip."""

    domain: str
    mode: str
    factor: float | None
    target: int
    target_label: str
    sample_rate: int
    steps: list[AttackStep]
    targeted: bool = False       # target is the class the attack puts on top

    @property
    def first_flip(self) -> AttackStep | None:
        """The smallest ``k`` that flipped the class, if any did."""
        return next((s for s in self.steps if s.flipped), None)

    def flipped_at(self, k: int) -> bool:
        """Whether changing at most ``k`` coefficients flipped the class."""
        return any(s.flipped for s in self.steps if s.k <= k)

    def to_dict(self) -> dict:
        first = self.first_flip
        means = (f"{self.target_label} is the top class" if self.targeted
                 else f"the top class is no longer {self.target_label}")
        return {"domain": self.domain, "mode": self.mode, "factor": self.factor,
                "targeted": self.targeted, "flipped_means": means,
                "target": {"index": self.target, "label": self.target_label},
                "first_flip_k": first.k if first else None,
                "steps": [s.to_dict() for s in self.steps]}

    def save(self, out_dir: str | os.PathLike) -> Path:
        """Write ``attack.json`` and each flipping clip as ``<domain>_k<k>.wav`` (float32)."""
        from freqrex.output.files import save_attack

        return save_attack(self, out_dir)

    def plot(self, result: Result | None = None, fig: Any = None) -> Any:
        """Target probability against ``k`` (and, given the explanation ``result``, the
        spectrum with the attacked bins marked): a :class:`matplotlib.figure.Figure`.
        """
        from freqrex.output.figures import plot_attack

        return plot_attack(self, result, fig=fig)

    def __str__(self) -> str:
        """The table ``freqrex attack`` prints, and its one-line verdict."""
        from freqrex.output.terminal import as_text

        return as_text(self)


def snr_db(x: np.ndarray, changed: np.ndarray) -> float:
    """``10 log10(|x|^2 / |x - x'|^2)``; infinite when nothing changed."""
    noise = float(np.sum((x.astype(np.float64) - changed) ** 2))
    signal = float(np.sum(x.astype(np.float64) ** 2))
    return float("inf") if noise == 0 else 10.0 * np.log10(signal / noise)


def attack(model: Any, audio: Any = None, *, result: Result | None = None,
           domain: str | None = None, attack_config: AttackConfig | None = None,
           sample_rate: int | None = None, config: Config | None = None,
           **params: Any) -> AttackResult:
    """Change the k most responsible coefficients of a clip and see whether the class flips.

    Parameters
    ----------
    model : Model, path, session or callable
        As for :func:`freqrex.explain`.
    audio : str, path or np.ndarray, optional
        The clip; not needed when ``result`` is given.
    result : Result, optional
        An explanation of this clip by this model, in the attacked domain (of the named
        class, for a targeted attack); computed with ``config`` (and ``params``) when
        omitted or when it does not fit.
    domain : str, optional
        ``"fft"`` (rfft bins) or ``"stft"`` (time-frequency cells); defaults to the
        domain of ``result`` or of ``config``.
    attack_config : AttackConfig, optional
        ``ks``, one mode, ``factor``, ``level``, ``to``...; keyword arguments of those
        names override it. For several modes use :func:`attacks`.
    **params
        :class:`AttackConfig` fields (``ks=(1, 5)``, ``mode="gain"``, ``to="dog"``) and
        :class:`Config` fields for the explanation.

    Returns
    -------
    AttackResult

    Examples
    --------
    >>> a = freqrex.attack("model.onnx", "clip.wav", ks=(1, 2, 5), mode="gain")
    >>> [(s.k, s.gain_db, s.inaudible) for s in a.steps if s.flipped]
    """
    settings, params = _split_params(attack_config or AttackConfig(), params)
    if len(settings.modes) != 1:
        raise InputError(f"attack runs one mode, got {', '.join(settings.modes)}; use "
                         "freqrex.manipulation.attacks for several")
    return next(iter(attacks(model, audio, result=result, domain=domain,
                             attack_config=settings, sample_rate=sample_rate, config=config,
                             **params).values()))


def attacks(model: Any, audio: Any = None, *, result: Result | None = None,
            domain: str | None = None, attack_config: AttackConfig | None = None,
            sample_rate: int | None = None, config: Config | None = None,
            **params: Any) -> dict[str, AttackResult]:
    """:func:`attack` in each mode of ``attack_config.modes``, on one explanation: mode ->
    AttackResult."""
    settings, params = _split_params(attack_config or AttackConfig(), params)
    model = model if isinstance(model, Model) else as_model(model)
    config = config or (result.config if result is not None else Config())
    if domain is not None:
        config = config.replace(domain=domain)
    if params:
        config = config.replace(**params)
    to = model.class_index(settings.to) if settings.to is not None else None
    if (result is None or result.config.domain != config.domain
            or (to is not None and result.target != to)):
        if audio is None:
            audio = result.audio if result is not None else None
            sample_rate = result.sample_rate if result is not None else sample_rate
        if audio is None:
            raise InputError("attack needs the audio or an explanation result")
        result = explain_for_attack(model, audio, config, settings, sample_rate)
    # the proxy's view of the original (its band powers) serves every mode
    judge = Judge(result.domain.x, result.sample_rate, settings.mask_offset_db)
    return {mode: _attack(model, result, settings, mode, judge) for mode in settings.modes}


def explain_for_attack(model: Model, audio: Any, config: Config, settings: AttackConfig,
                       sample_rate: int | None = None,
                       progress: Progress | None = None) -> Result:
    """The explanation an attack ranks by: of ``config.target`` (default the top class),
    or of the named class ``settings.to`` of a targeted attack.

    A targeted attack's class is usually not on top, which is its point: the warning
    :func:`freqrex.explain` gives for such a target is not raised here.
    """
    if settings.to is None:
        return explain(model, audio, sample_rate=sample_rate, config=config, progress=progress)
    config = config.replace(target=model.class_index(settings.to))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is not the model's top class",
                                category=FreqrexWarning)
        return explain(model, audio, sample_rate=sample_rate, config=config, progress=progress)


def _split_params(attack_config: AttackConfig,
                  params: dict[str, Any]) -> tuple[AttackConfig, dict[str, Any]]:
    """Route keyword arguments to the attack's config or the explanation's."""
    own = {k: params.pop(k) for k in list(params) if k in AttackConfig.names()}
    unknown = [k for k in params if k not in Config.names()]
    if unknown:
        raise InputError(f"attack got unknown parameters: {', '.join(sorted(unknown))}")
    return (attack_config.replace(**own) if own else attack_config), params


def _attack(model: Model, result: Result, settings: AttackConfig, mode: str,
            judge: Judge) -> AttackResult:
    domain, ks, x = result.domain, list(settings.ks), result.domain.x
    ranking = result.attack_ranking
    counts = np.minimum(ks, len(ranking))
    goal, targeted = result.target, settings.to is not None

    def score(waves: np.ndarray) -> np.ndarray:
        # A boost can take a model where its outputs are not finite (musicnn's float16 step
        # overflows): that try has no answer, and it neither flips nor comes close.
        return np.asarray(model(waves, finite=False), dtype=np.float64)

    def flips(p: np.ndarray) -> np.ndarray:
        top = np.argmax(p, axis=1)
        return _answered(p) & (top == goal if targeted else top != goal)

    def margin(p: np.ndarray) -> np.ndarray:  # how close a try comes to succeeding
        other = np.delete(p, goal, axis=1).max(axis=1)
        return np.where(_answered(p), p[:, goal] - other if targeted else other - p[:, goal],
                        -np.inf)

    # Linearity: the clip plus (gain - 1) times the signal of the top-k coefficients.
    tops = domain.keep_top(ranking, counts) - domain.fixed
    gains: list[float | None]
    evaluations = [1] * len(ks)
    if mode == "gain":
        found = search_gains(score, x, tops, flips, margin, settings.gain_points,
                             settings.gain_max_db, settings.gain_tolerance_db)
        gains = [f.gain for f in found]
        waves = np.stack([changed(x, top, f.gain) for top, f in zip(tops, found)])
        probs = np.stack([f.probabilities for f in found])
        evaluations = [f.evaluations for f in found]
    else:
        if mode == "set":
            gains, waves = [None] * len(ks), _set_waves(result, ranking, counts, settings.level)
        else:
            gain = settings.gain(mode)
            assert gain is not None
            gains, waves = [gain] * len(ks), np.stack([changed(x, top, gain) for top in tops])
        probs = score(waves)
    necessary = result.necessary.size if result.necessary.found else 0
    steps = []
    for k, count, wave, p, g, n in zip(ks, counts, waves, probs, gains, evaluations):
        top_class, heard = int(np.argmax(p)), judge(wave)
        features = np.asarray(ranking[:count], dtype=np.int64)
        answered = bool(_answered(p[None])[0])
        steps.append(AttackStep(
            k=k, touched=int(count), within_necessary=bool(count <= necessary),
            flipped=bool(flips(p[None])[0]),
            prediction=(Prediction(top_class, model.label(top_class), float(p[top_class]),
                                   float(p[goal])) if answered else NO_ANSWER),
            answered=answered,
            snr_db=snr_db(x, wave), audio=wave, mode=mode, gain=g,
            seg_snr_db=heard.seg_snr_db, mask_ratio_db=heard.mask_ratio_db,
            above_mask=heard.above_mask, inaudible=heard.inaudible, evaluations=n,
            features=features, touches_sets=touched_sets(result, features)))
    return AttackResult(result.config.domain, mode, settings.gain(mode), goal,
                        result.target_label, result.sample_rate, steps, targeted=targeted)


def _answered(p: np.ndarray) -> np.ndarray:
    """Rows on which the model gave a finite answer."""
    return np.all(np.isfinite(p), axis=1)


def touched_sets(result: Result, features: np.ndarray) -> list[int]:
    """Indices of ``result.explanations_multi`` whose features meet ``features``."""
    return [i for i, e in enumerate(result.explanations_multi)
            if e.found and np.intersect1d(e.bins, features).size > 0]


def _set_waves(result: Result, ranking: np.ndarray, counts: np.ndarray,
               level: float) -> np.ndarray:
    """The clip with each of the top ``count`` coefficients set to magnitude ``level``
    times the largest coefficient magnitude in the domain, phase kept (a coefficient of
    magnitude 0 has no phase and stays 0); ``counts`` ascending."""
    domain = result.domain
    magnitude = np.asarray(domain.magnitude(), dtype=np.float64).ravel()
    order = np.asarray(ranking[:int(counts.max())], dtype=np.int64)
    own = magnitude[order]
    weights = np.where(own > 0, level * magnitude.max() / np.where(own > 0, own, 1.0) - 1.0, 0.0)
    total = np.zeros(domain.n)
    out = np.empty((len(counts), domain.n), dtype=np.float32)
    done = 0
    for i, count in enumerate(counts):
        for start in range(done, int(count), 32):  # per-coefficient signals, 32 at a time
            chunk = order[start:min(start + 32, int(count))]
            signals = domain.keep([chunk[j:j + 1] for j in range(chunk.size)]) - domain.fixed
            total += weights[start:start + chunk.size] @ signals.astype(np.float64)
        done = int(count)
        out[i] = (domain.x + total).astype(np.float32)
    return out
