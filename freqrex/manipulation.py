"""Manipulation: how few coefficients must change to change the model's mind.

The k-frequency attack removes (or attenuates by ``factor``) the ``k`` most responsible
coefficients of the clip, ``k`` in ``ks``, and reports for each ``k`` whether the class
flipped, to what, and how large the change was (SNR in dB, coefficients touched).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from freqrex.config import Config
from freqrex.domains import make_domain
from freqrex.errors import FreqrexError
from freqrex.explanation import Prediction, Result
from freqrex.output.folders import writing_folder
from freqrex.model import Model, as_model

DEFAULT_KS = (1, 2, 5, 10, 20, 50, 100)
MODES = ("remove", "attenuate")


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
                "snr_db": self.snr_db}


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
        from freqrex.audio import write_wav

        with writing_folder(out_dir) as tmp:
            (tmp / "attack.json").write_text(json.dumps(self.to_dict(), indent=2))
            for step in self.steps:
                if step.flipped:
                    write_wav(tmp / f"{self.domain}_k{step.k}.wav", step.audio,
                              self.sample_rate)
        return Path(out_dir)


def snr_db(x: np.ndarray, changed: np.ndarray) -> float:
    """``10 log10(|x|^2 / |x - x'|^2)``; infinite when nothing changed."""
    noise = float(np.sum((x.astype(np.float64) - changed) ** 2))
    signal = float(np.sum(x.astype(np.float64) ** 2))
    return float("inf") if noise == 0 else 10.0 * np.log10(signal / noise)


def attack(model: Any, audio: Any = None, *, result: Result | None = None,
           domain: str | None = None, ks: tuple[int, ...] = DEFAULT_KS, mode: str = "remove",
           factor: float = 0.0, sample_rate: int | None = None, config: Config | None = None,
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
    ks : tuple of int
        Numbers of coefficients to change, most responsible first.
    mode : str
        ``"remove"`` sets them to zero; ``"attenuate"`` multiplies them by ``factor``.
    factor : float
        Gain kept by attenuated coefficients (0 <= factor < 1).

    Returns
    -------
    AttackResult
    """
    from freqrex.pipeline import explain

    gain = _gain(mode, factor)
    if not ks or any(int(k) < 1 for k in ks):
        raise FreqrexError(f"--ks must be positive integers, got {ks}")
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
            raise FreqrexError("attack needs the audio or an explanation result")
        result = explain(model, audio, sample_rate=sample_rate, config=config)
    return _attack(model, result, sorted({int(k) for k in ks}), mode, gain)


def _gain(mode: str, factor: float) -> float:
    if mode not in MODES:
        raise FreqrexError(f"attack mode must be remove or attenuate; got {mode!r}")
    gain = 0.0 if mode == "remove" else float(factor)
    if not 0.0 <= gain < 1.0:
        raise FreqrexError(f"--factor must be in [0, 1) to attenuate; got {factor}")
    return gain


def _attack(model: Model, result: Result, ks: list[int], mode: str,
            gain: float) -> AttackResult:
    c = result.config
    domain = make_domain(result.audio, result.sample_rate, c.domain, c.n_fft, c.hop,
                         c.freq_range)
    x = domain.x
    ranking = result.ranking
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
    return AttackResult(c.domain, mode, gain, result.target, result.target_label,
                        result.sample_rate, steps)
