"""``Explainer``: one warm engine for many clips, for tools that explain again and again.

Opening an ONNX session, probing its provider, planning FFTs and compiling the Numba
kernels cost far more than one small explanation. An :class:`Explainer` pays for them
once: it keeps the model (its sessions, its decided batch sizes and statistics), and
the kernels keep their plans per clip length, so the second clip of a length runs warm.
The results are exactly those of :func:`freqrex.explain` with the same parameters.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np

from freqrex.config import AttackConfig, Config, Progress
from freqrex.explanation import Result
from freqrex.manipulation import AttackResult, attack, attacks, explain_for_attack
from freqrex.pipeline import explain, prepare

Audio = str | os.PathLike | np.ndarray


class Explainer:
    """Explain and attack clips with one model, kept warm between calls.

    Parameters
    ----------
    model : Model, path, session or callable
        As for :func:`freqrex.explain`; opened once, here.
    sample_rate : int, optional
        The rate of waveform arrays (and of the model, when it declares none).
    config : Config, optional
        Parameters of every explanation; keyword arguments override them.
    attack_config : AttackConfig, optional
        Parameters of :meth:`attack`.

    Examples
    --------
    >>> explainer = freqrex.Explainer("model.onnx", iterations=4, seed=0)
    >>> first = explainer.explain("a.wav")       # opens, plans and compiles
    >>> second = explainer.explain("b.wav")      # warm
    >>> explainer.attack(result=second).first_flip
    """

    def __init__(self, model: Any, *, sample_rate: int | None = None,
                 config: Config | None = None, attack_config: AttackConfig | None = None,
                 **params: Any) -> None:
        self.model, self.config = prepare(model, config, params)
        self.attack_config = attack_config or AttackConfig()
        self.sample_rate = sample_rate

    def explain(self, audio: Audio, *, sample_rate: int | None = None,
                progress: Progress | None = None, **params: Any) -> Result:
        """Explain one clip (see :func:`freqrex.explain`); ``params`` change this call only."""
        config = self.config.replace(**params) if params else self.config
        return explain(self.model, audio, sample_rate=sample_rate or self.sample_rate,
                       config=config, progress=progress)

    def explain_many(self, clips: Iterable[Audio], **params: Any) -> list[Result]:
        """Explain clips one after another, in memory; one result per clip, in order."""
        return [self.explain(clip, **params) for clip in clips]

    def attack(self, audio: Audio | None = None, *, result: Result | None = None,
               **params: Any) -> AttackResult:
        """Attack a clip, or an explanation of one (see :func:`freqrex.attack`)."""
        # An explanation given is attacked in its own domain and settings.
        config = self.config if result is None else None
        return attack(self.model, audio, result=result, attack_config=self.attack_config,
                      sample_rate=self.sample_rate, config=config, **params)

    def attacks(self, audio: Audio | None = None, *, result: Result | None = None,
                **params: Any) -> dict[str, AttackResult]:
        """Every mode of the attack settings on one explanation: mode -> AttackResult
        (see :func:`freqrex.manipulation.attacks`). Without ``result`` the clip is
        explained first, for the named class of a targeted attack (``to``)."""
        config = self.config if result is None else None
        return attacks(self.model, audio, result=result, attack_config=self.attack_config,
                       sample_rate=self.sample_rate, config=config, **params)

    def explain_for_attack(self, audio: Audio, **params: Any) -> Result:
        """The explanation the attacks rank by: of the configured target, or of the
        attack's named class ``to`` (without the warning that it is not on top)."""
        config = self.config.replace(**params) if params else self.config
        return explain_for_attack(self.model, audio, config, self.attack_config,
                                  self.sample_rate)

    def __repr__(self) -> str:
        return f"Explainer({self.model!r}, calls={self.model.stats.calls})"
