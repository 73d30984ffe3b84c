"""What an explanation run returns: the responsibility map, three bin sets, run statistics.

Results are plain data. They become JSON documents here; writing and drawing them is
``freqrex.output``'s job (``save`` and ``plot`` are conveniences that call it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from freqrex.config import Config

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from freqrex.domains import Domain

SCHEMA_VERSION = 1


@dataclass
class Prediction:
    """The model's verdict on one waveform."""

    class_index: int
    label: str
    confidence: float          # probability of the predicted class
    target_confidence: float   # probability of the explained class

    def to_dict(self) -> dict:
        return {"class_index": self.class_index, "label": self.label,
                "confidence": self.confidence, "target_confidence": self.target_confidence}


@dataclass
class Explanation:
    """One explanation: a set of bins, its reconstruction, and what the model makes of it.

    ``found`` is False when the search could not find a set meeting the definition; the
    other fields are then empty. ``verified`` says whether the final model call confirmed it.
    ``bins`` is the subset-minimal set when ``minimal`` is set (shrunk from the smallest
    prefix of the ranking, ``prefix_size`` features); otherwise the prefix itself, with
    ``minimal_note`` saying why it was not shrunk.
    """

    kind: str
    found: bool
    bins: np.ndarray
    verified: bool = False
    share_bins: float = 0.0
    share_energy: float = 0.0
    hz_ranges: list[tuple[float, float]] = field(default_factory=list)
    time_ranges: list[tuple[float, float]] = field(default_factory=list)
    prediction: Prediction | None = None
    removed: Prediction | None = None       # necessary only: the clip without these bins
    audio: np.ndarray | None = None
    prefix_size: int = 0            # the smallest prefix of the ranking meeting the definition
    proven_smallest: bool = False   # every smaller prefix was tested and failed
    minimal: bool = False           # no single feature of ``bins`` can be dropped
    minimal_note: str = ""          # why ``bins`` is not proven minimal, when it is not

    @property
    def size(self) -> int:
        return int(len(self.bins))

    def to_dict(self) -> dict:
        out = {"found": self.found, "verified": self.verified, "size": self.size,
               "share_bins": self.share_bins, "share_energy": self.share_energy,
               "hz_ranges": [list(r) for r in self.hz_ranges],
               "time_ranges": [list(r) for r in self.time_ranges],
               "prediction": self.prediction.to_dict() if self.prediction else None,
               "prefix_size": self.prefix_size if self.found else None,
               "proven_smallest": self.proven_smallest, "minimal": self.minimal,
               "minimal_note": self.minimal_note or None,
               "bins": self.bins.tolist()}
        if self.kind == "necessary":
            out["removed_prediction"] = self.removed.to_dict() if self.removed else None
        return out


@dataclass
class RunStats:
    """Where a run's work and time went."""

    model_calls: int          # forward passes of the model
    mutants: int              # waveforms evaluated, the original included
    search_mutants: int       # of which by the responsibility search
    splits: int
    seconds_total: float
    seconds_model: float      # inside model inference
    iterations: int = 0       # search iterations run
    stopped: str = ""         # why the search stopped: "stable" or "iterations"
    used_iterations: int = 0  # iterations in the map (the last improving one, when stable)
    # per iteration, the sufficient prefix to within the stability margin (coarse_prefix)
    # if it improved on the best before it, else None
    sizes: list[int | None] = field(default_factory=list)
    reused: int = 0           # mutants asked for again and answered without the model

    def to_dict(self) -> dict:
        return {"model_calls": self.model_calls, "mutants": self.mutants,
                "search_mutants": self.search_mutants, "splits": self.splits,
                "seconds_total": self.seconds_total, "seconds_model": self.seconds_model,
                "seconds_outside_model": self.seconds_total - self.seconds_model,
                "search": {"iterations": self.iterations, "stopped": self.stopped,
                           "used_iterations": self.used_iterations,
                           "sufficient_prefix_sizes": self.sizes},
                "reused_mutants": self.reused}


@dataclass
class Result:
    """The outcome of :func:`freqrex.explain` for one clip.

    Attributes
    ----------
    audio : np.ndarray
        The clip as the model saw it (mono float32 at ``sample_rate``).
    target, target_label : int, str
        The explained class.
    prediction : Prediction
        The model's verdict on the whole clip (``prediction.target_confidence`` is
        ``p_target(x)``, the confidence being explained).
    responsibility : np.ndarray
        Responsibility per rfft bin (float64, ``n_samples // 2 + 1``).
    ranking : np.ndarray
        The searched bins, most responsible first (ties: larger magnitude first); every
        explanation is a prefix of it.
    explanations : dict
        ``"sufficient"``, ``"necessary"``, ``"complete"`` -> :class:`Explanation`.
    domain : Domain
        The clip's feature space (transform, geometry, mutant synthesis), kept so that
        attacks and figures reuse it instead of transforming the clip again.
    explanations_multi : list of Explanation
        With ``multiple > 1``: the disjoint (``max_overlap``) sufficient sets found, each
        minimal and verified, the first being ``sufficient`` (:mod:`freqrex.multiple`).
    redundancy : dict or None
        Their count, sizes, union's shares of features and energy, and why the search
        stopped; None when only one set was asked for.
    """

    audio: np.ndarray
    sample_rate: int
    target: int
    target_label: str
    prediction: Prediction
    responsibility: np.ndarray
    ranking: np.ndarray
    explanations: dict[str, Explanation]
    stats: RunStats
    config: Config
    domain: Domain = field(repr=False, compare=False)
    model_info: dict = field(default_factory=dict)
    source: str | None = None
    warnings: list[str] = field(default_factory=list)   # degenerate decisions, said aloud
    criterion: dict = field(default_factory=dict)       # the rules the sets were tested by
    # multiple > 1: the sufficient sets found (the first is ``sufficient``), and the summary
    # of :func:`freqrex.multiple.redundancy` (None when not searched).
    explanations_multi: list[Explanation] = field(default_factory=list)
    redundancy: dict | None = None

    @property
    def attack_ranking(self) -> np.ndarray:
        """What the attacks change first: the necessary set's features, most responsible
        first, then the rest of the ranking (METHOD.md: "the k most responsible bins of
        the necessary set")."""
        inside = np.isin(self.ranking, self.necessary.bins)
        return np.concatenate([self.ranking[inside], self.ranking[~inside]])

    @property
    def sufficient(self) -> Explanation:
        return self.explanations["sufficient"]

    @property
    def necessary(self) -> Explanation:
        return self.explanations["necessary"]

    @property
    def complete(self) -> Explanation:
        return self.explanations["complete"]

    @property
    def confidence(self) -> float:
        """``p_target(x)`` on the whole clip."""
        return self.prediction.target_confidence

    @property
    def n_features(self) -> int:
        """Number of features: rfft bins (fft) or STFT cells (stft)."""
        return int(self.responsibility.size)

    @property
    def unit(self) -> str:
        return "cells" if self.config.domain == "stft" else "bins"

    def to_dict(self) -> dict:
        """The JSON document written as ``explanation.json`` (schema in README)."""
        n = int(self.audio.shape[0])
        return {
            "schema_version": SCHEMA_VERSION,
            "source": self.source,
            "clip": {"sample_rate": self.sample_rate, "n_samples": n,
                     "seconds": n / self.sample_rate},
            "features": self._features(),
            "model": self.model_info,
            "target": {"index": self.target, "label": self.target_label,
                       "confidence": self.confidence,
                       "is_top_class": self.prediction.class_index == self.target},
            "prediction": self.prediction.to_dict(),
            "criterion": self.criterion,
            "warnings": list(self.warnings),
            "explanations": {k: e.to_dict() for k, e in self.explanations.items()},
            **({"explanations_multi": [e.to_dict() for e in self.explanations_multi],
                "redundancy": self.redundancy} if self.redundancy is not None else {}),
            "stats": self.stats.to_dict(),
            "config": self.config.to_dict(),
        }

    def _features(self) -> dict:
        c, n = self.config, int(self.audio.shape[0])
        out = {"domain": c.domain, "count": self.n_features,
               "shape": list(self.responsibility.shape)}
        if c.domain == "stft":
            out.update(n_fft=c.n_fft, hop=c.hop, bin_hz=self.sample_rate / c.n_fft,
                       frame_seconds=c.hop / self.sample_rate)
        else:
            out.update(bin_hz=self.sample_rate / n)
        return out

    def to_json(self, indent: int | None = 2) -> str:
        """The result document as strict JSON."""
        from freqrex.output.files import to_json

        return to_json(self.to_dict(), indent=indent)

    def save(self, out_dir: str | os.PathLike, figure: bool = True) -> Path:
        """Write the result files into ``out_dir`` (see :func:`freqrex.output.files.save_result`).

        Files: ``explanation.json``, ``responsibility.npy``, ``<kind>.wav`` for each
        explanation found (32-bit float), and ``explanation.png`` when ``figure`` is set;
        the folder appears whole or not at all.
        """
        from freqrex.output.files import save_result

        return save_result(self, out_dir, figure=figure)

    def plot(self, ax: Any = None, fig: Any = None) -> Figure:
        """The explanation figure (:func:`freqrex.output.figures.plot_result`).

        With ``ax``, only the spectrum (or spectrogram) with the sets marked, drawn into that
        axes; otherwise every panel, in ``fig`` or a new :class:`matplotlib.figure.Figure`.
        Nothing switches matplotlib's backend, so it works in notebooks as in scripts.
        """
        from freqrex.output.figures import plot_result

        return plot_result(self, fig=fig, ax=ax)

    def __str__(self) -> str:
        """What ``freqrex run`` prints: the clip, model, target, rule and the three sets."""
        from freqrex.output.terminal import as_text

        return as_text(self)
