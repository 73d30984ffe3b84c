"""Manipulation: how few coefficients must change to change the model's mind.

The k-frequency attack removes (or attenuates by ``factor``) the ``k`` most responsible
coefficients of the clip, ``k`` in ``ks``, and reports for each ``k`` whether the class
flipped, to what, and how large the change was (SNR in dB, coefficients touched).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from freqrex.config import AttackConfig, Config
from freqrex.errors import InputError
from freqrex.explanation import Prediction, Result
from freqrex.model import Model, as_model
from freqrex.pipeline import explain


@dataclass
class AttackStep:
    """The clip with its ``k`` most responsible coefficients changed."""

    k: int
    touched: int                 # coefficients actually changed (k, or fewer if the set is small)
    within_necessary: bool       # all touched coefficients belong to the necessary set
    flipped: bool                # the model's top class is no longer the target
    prediction: Prediction
    snr_db: float
    audio: np.ndarray = field(repr=False)

    def to_dict(self) -> dict:
        return {"k": self.k, "touched": self.touched, "within_necessary": self.within_necessary,
                "flipped": self.flipped, "prediction": self.prediction.to_dict(),
                "snr_db": self.snr_db if math.isfinite(self.snr_db) else None}


@dataclass
class AttackResult:
    """All steps of one attack on one clip."""

    domain: str
    mode: str
    factor: float
    target: int
    target_label: str
    sample_rate: int
    steps: list[AttackStep]

    @property
    def first_flip(self) -> AttackStep | None:
        """The smallest ``k`` that flipped the class, if any did."""
        return next((s for s in self.steps if s.flipped), None)

    def flipped_at(self, k: int) -> bool:
        """Whether changing at most ``k`` coefficients flipped the class."""
        return any(s.flipped for s in self.steps if s.k <= k)

    def to_dict(self) -> dict:
        first = self.first_flip
        return {"domain": self.domain, "mode": self.mode, "factor": self.factor,
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
        An explanation of this clip by this model, in the attacked domain; computed with
        ``config`` (and ``params``) when omitted.
    domain : str, optional
        ``"fft"`` (rfft bins) or ``"stft"`` (time-frequency cells); defaults to the
        domain of ``result`` or of ``config``.
    attack_config : AttackConfig, optional
        ``ks``, ``mode`` and ``factor``; keyword arguments of those names override it.
    **params
        :class:`AttackConfig` fields (``ks=(1, 5)``, ``mode="attenuate"``,
        ``factor=0.5``) and :class:`Config` fields for the explanation.

    Returns
    -------
    AttackResult

    Examples
    --------
    >>> a = freqrex.attack("model.onnx", "clip.wav", ks=(1, 2, 5))
    >>> a.first_flip.k if a.first_flip else None
    """
    attack_config, params = _split_params(attack_config or AttackConfig(), params)
    model = model if isinstance(model, Model) else as_model(model)
    config = config or (result.config if result is not None else Config())
    if domain is not None:
        config = config.replace(domain=domain)
    if params:
        config = config.replace(**params)
    if result is None or result.config.domain != config.domain:
        if audio is None:
            audio = result.audio if result is not None else None
            sample_rate = result.sample_rate if result is not None else sample_rate
        if audio is None:
            raise InputError("attack needs the audio or an explanation result")
        result = explain(model, audio, sample_rate=sample_rate, config=config)
    return _attack(model, result, attack_config)


def _split_params(attack_config: AttackConfig,
                  params: dict[str, Any]) -> tuple[AttackConfig, dict[str, Any]]:
    """Route keyword arguments to the attack's config or the explanation's."""
    own = {k: params.pop(k) for k in list(params) if k in AttackConfig.names()}
    unknown = [k for k in params if k not in Config.names()]
    if unknown:
        raise InputError(f"attack got unknown parameters: {', '.join(sorted(unknown))}")
    return (attack_config.replace(**own) if own else attack_config), params


def _attack(model: Model, result: Result, settings: AttackConfig) -> AttackResult:
    domain, ks, gain = result.domain, list(settings.ks), settings.gain
    x = domain.x
    ranking = result.attack_ranking
    # Linearity again: the clip minus (1 - gain) times the signal of the top-k coefficients.
    top = domain.keep_top(ranking, np.minimum(ks, len(ranking))) - domain.fixed
    batch = (x[None, :] - (1.0 - gain) * top).astype(np.float32)
    probs = np.asarray(model(batch), dtype=np.float64)
    necessary = result.necessary.size if result.necessary.found else 0
    steps = []
    for k, wave, p in zip(ks, batch, probs):
        top_class = int(np.argmax(p))
        touched = min(k, len(ranking))
        steps.append(AttackStep(
            k=k, touched=touched, within_necessary=touched <= necessary,
            flipped=top_class != result.target,
            prediction=Prediction(top_class, model.label(top_class), float(p[top_class]),
                                  float(p[result.target])),
            snr_db=snr_db(x, wave), audio=wave))
    return AttackResult(result.config.domain, settings.mode, gain, result.target,
                        result.target_label, result.sample_rate, steps)
