"""``compare``: is the causal ranking better than cheap ones, on this model and clip?

Each ranking (responsibility, and the baselines of :mod:`freqrex.baselines`) gets the
same model-call budget (``search_limit`` mutants) and is judged by the same predicates
(:mod:`freqrex.criterion`): its smallest sufficient / necessary / complete prefixes (the
same search as ``explain``, so the sizes are comparable; they are prefixes, not the
shrunk minimal sets), and its deletion and insertion curves with their areas.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from freqrex.baselines import BASELINES, area, curves
from freqrex.config import Config, Progress
from freqrex.criterion import KINDS, Criterion
from freqrex.errors import InputError
from freqrex.extraction import Prefixes, find_prefix
from freqrex.pipeline import explain, prepare

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from freqrex.explanation import Result

RANKINGS = ("responsibility", *BASELINES)


@dataclass
class RankingScore:
    """How one ranking does: set sizes under the predicates, and its curves."""

    name: str
    mutants: int                       # spent making the ranking
    sizes: dict[str, int | None]       # smallest prefix per kind; None: not found
    proven: dict[str, bool]            # whether each size was proven smallest
    ks: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    deletion_area: float
    insertion_area: float
    # waveforms the comparison had the model evaluate for this ranking: making it (the
    # baselines; responsibility's search belongs to the explanation) and scoring it
    waveforms: int = 0

    def to_dict(self) -> dict:
        return {"name": self.name, "mutants": self.mutants, "waveforms": self.waveforms,
                "sizes": dict(self.sizes),
                "proven_smallest": dict(self.proven), "deletion_area": self.deletion_area,
                "insertion_area": self.insertion_area,
                "curves": {"k": self.ks.tolist(), "deletion": self.deletion.tolist(),
                           "insertion": self.insertion.tolist()}}


@dataclass
class Comparison:
    """The outcome of :func:`compare` for one clip."""

    source: str | None
    domain: str
    n_features: int
    target: int
    target_label: str
    confidence: float
    budget: int
    rankings: list[RankingScore]
    criterion: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    config: Config = field(default_factory=Config)

    def score(self, name: str) -> RankingScore:
        return next(r for r in self.rankings if r.name == name)

    def to_dict(self) -> dict:
        """The document written as ``compare.json``."""
        return {"source": self.source, "domain": self.domain, "n_features": self.n_features,
                "target": {"index": self.target, "label": self.target_label,
                           "confidence": self.confidence},
                "budget_mutants": self.budget, "criterion": self.criterion,
                "warnings": list(self.warnings),
                "rankings": [r.to_dict() for r in self.rankings],
                "config": self.config.to_dict()}

    def save(self, out_dir: str | os.PathLike, figure: bool = True) -> Path:
        """Write ``compare.json`` (and ``compare.png``) into ``out_dir``, whole."""
        from freqrex.output.files import save_comparison

        return save_comparison(self, out_dir, figure=figure)

    def plot(self, fig: Any = None) -> Figure:
        """Deletion and insertion curves of every ranking."""
        from freqrex.output.figures import plot_comparison

        return plot_comparison(self, fig=fig)


def compare(model: Any, audio: Any, *, sample_rate: int | None = None,
            config: Config | None = None, rankings: tuple[str, ...] = RANKINGS,
            points: int = 33, progress: Progress | None = None,
            result: Result | None = None, **params: Any) -> Comparison:
    """Rank the clip's features by responsibility and by each baseline; score every ranking.

    Parameters
    ----------
    model, audio, sample_rate, config, progress, **params
        As for :func:`freqrex.explain`; ``search_limit`` is every ranking's mutant budget.
    rankings : tuple of str
        Which rankings: ``"responsibility"``, ``"magnitude"``, ``"random"`` (seeded by
        ``seed``), ``"occlusion"``, ``"random_mask"``.
    points : int
        Evenly spaced points of the deletion and insertion curves (1, 2, 4, ... added).
    result : Result, optional
        An explanation of this clip by this model (:func:`freqrex.explain`): its ranking,
        search cost, target and domain are used and no search is run; ``audio`` is then not
        read (None will do), and ``config`` defaults to the explanation's. Its minimal sets
        and ``multiple`` do not matter: they come after the ranking.

    Returns
    -------
    Comparison

    Examples
    --------
    >>> c = freqrex.compare("model.onnx", "clip.wav", seed=0)
    >>> {r.name: r.sizes["sufficient"] for r in c.rankings}
    """
    unknown = [r for r in rankings if r not in RANKINGS]
    if unknown or not rankings:
        raise InputError(f"rankings must be among {', '.join(RANKINGS)}; got {rankings!r}")
    model, config = prepare(model, config or (result.config if result else None), params)
    if result is None:
        # Rankings are compared by their prefixes: the minimal sets would only cost mutants.
        result = explain(model, audio, sample_rate=sample_rate,
                         config=config.replace(minimal_budget=0, multiple=1),
                         progress=progress)
    domain = result.domain
    criterion = Criterion(model, result.target, result.confidence, config.confidence_filter,
                          config.complete_tolerance, config.necessary_rule)
    scores = []
    for done, name in enumerate(rankings):
        if progress:
            progress("compare", done, len(rankings))
        before = model.stats.samples
        if name == "responsibility":
            order, spent = result.ranking, result.stats.search_mutants
        else:
            order, spent = BASELINES[name](domain, criterion, config.search_limit, config.seed)
        score = _score(name, order, spent, domain, criterion, config, points)
        scores.append(replace(score, waveforms=int(model.stats.samples - before)))
    if progress:
        progress("compare", len(rankings), len(rankings))
    return Comparison(result.source, result.config.domain, result.n_features, result.target,
                      result.target_label, result.confidence, config.search_limit, scores,
                      criterion=criterion.describe(), warnings=list(result.warnings),
                      config=config)


def _score(name: str, order: np.ndarray, spent: int, domain: Any, criterion: Criterion,
           config: Config, points: int) -> RankingScore:
    prefixes = Prefixes(domain, criterion, order)
    sizes: dict[str, int | None] = {}
    proven: dict[str, bool] = {}
    start = 1
    for kind in KINDS:
        k, ok = (find_prefix(prefixes.predicate(kind), start, len(order), config)
                 if kind == "sufficient" or sizes["sufficient"] is not None else (None, False))
        sizes[kind], proven[kind] = k, ok
        start = k if k is not None else start
    ks, deletion, insertion = curves(prefixes, len(order), points)
    return RankingScore(name, int(spent), sizes, proven, ks, deletion, insertion,
                        area(ks, deletion, len(order)), area(ks, insertion, len(order)))
