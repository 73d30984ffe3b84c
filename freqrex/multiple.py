"""Several sufficient sets: how many independent reasons does the model have?

A decision with a single small sufficient set is fragile (remove it and the model changes
its mind); one with many disjoint sufficient sets is robust. After the first sufficient
set (found by :func:`freqrex.extraction.extract`), :func:`find_multiple` searches again
among the features not yet used:

1. **Re-rank**: the existing ranking without the used features; its smallest sufficient
   prefix (the configured prefix search), mutants keeping only remaining features.
2. **Fresh search**: where the first ranking no longer separates anything (no prefix
   passes, or the passing one reaches features of zero responsibility, ordered by
   magnitude alone), a new responsibility search restricted to the remaining features,
   within ``multiple_budget``; its smallest sufficient prefix is taken when smaller.
3. Each set found is shrunk to a subset-minimal one (:func:`freqrex.minimal.shrink`)
   and verified by one final model call on exactly that set.

The budget is checked before each step (a prefix search, a fresh search, a shrinking); a
step once started finishes, and ``mutants`` reports what was really spent (the final
verification calls, one per set, come on top). The search stops when ``multiple`` sets
are found, when neither step finds a sufficient
set among the remaining features, or when the budget is spent, and says which.

"Used" features: with ``max_overlap = 0`` every feature of every set found; with
``max_overlap = s > 0`` only the most responsible ``ceil((1 - s) * |S|)`` of each set
``S``, so a later set shares at most ``s * |S|`` features with ``S``.

Everything goes through the explanation's :class:`~freqrex.mutants.Mutants`, so no mutant
is evaluated twice; every batch is a fixed list, so nothing depends on ``batch_size``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from freqrex.boxes import Box, flat_features
from freqrex.config import Config
from freqrex.criterion import Criterion
from freqrex.domains import Domain
from freqrex.extraction import Extracted, Prefixes, find_prefix, rank_bins
from freqrex.minimal import shrink
from freqrex.mutants import Key, Mutants
from freqrex.responsibility import responsibility_map

MIN_FRESH = 15
"""A fresh search needs at least one split (14-15 mutants) to say anything."""


@dataclass
class Multiple:
    """The sufficient sets found, and why the search for more stopped."""

    sets: list[Extracted]
    stopped: str                  # "multiple", "none_left", "budget" or "no_first_set"
    reason: str                   # the same in a sentence
    mutants: int = 0              # mutants evaluated for the extra sets
    fresh_searches: int = 0       # restricted responsibility searches run
    found_by: list[str] = field(default_factory=list)  # per set: first/rerank/fresh

    def union(self) -> np.ndarray:
        if not self.sets:
            return np.empty(0, dtype=np.int64)
        return np.unique(np.concatenate([s.bins for s in self.sets]))


class _Restricted:
    """The clip's domain with some features removed for good: a mutant keeping a box keeps
    only its features that are not ``used``. Only what the responsibility search needs."""

    def __init__(self, base: Domain, used: np.ndarray) -> None:
        self.base = base
        self.used = np.unique(np.asarray(used, dtype=np.int64))
        self.name, self.x, self.n = base.name, base.x, base.n
        self.sample_rate, self.shape = base.sample_rate, base.shape
        self.root, self.fixed = base.root, base.fixed
        self.n_features = base.n_features

    def free(self, boxes: Sequence[Box]) -> np.ndarray:
        flat = flat_features(list(boxes), self.shape)
        return flat[~np.isin(flat, self.used)]

    def mutants(self, context: Sequence[Box], children: Sequence[Box], masks: np.ndarray,
                out: np.ndarray | None = None) -> np.ndarray:
        """As :meth:`Domain.mutants`, without the used features (linearity: each mutant is
        a 0/1 sum of the context's signal and the children's)."""
        parts = self.base.keep([self.free(context)] + [self.free([c]) for c in children])
        parts[1:] -= self.fixed   # the fixed signal counts once, with the context
        out = np.empty((len(masks), self.n), np.float32) if out is None else out
        for row, mask in zip(out, masks.tolist()):
            # a row's sum never depends on the other rows asked with it (nor would BLAS
            # promise that): pieces sized by the memory budget change no bit
            row[...] = parts[0]
            for i in range(len(children)):
                if mask >> i & 1:
                    row += parts[1 + i]
        return out


class _RestrictedMutants(Mutants):
    """Names restricted mutants by the features they really keep, in the shared tables, so
    the restricted search reuses (and feeds) the explanation's answers."""

    def __init__(self, parent: Mutants, domain: _Restricted) -> None:
        self.__dict__.update(parent.__dict__)   # the same dicts: answers are shared
        self.domain, self.parent = domain, parent  # type: ignore[assignment]
        self.asked = self.evaluated = 0

    def box_key(self, boxes: Sequence[Box]) -> Key:
        assert isinstance(self.domain, _Restricted)
        return self.key(self.domain.free(boxes))


def find_multiple(domain: Domain, criterion: Criterion, config: Config, ranking: np.ndarray,
                  responsibility: np.ndarray, first: Extracted, mutants: Mutants) -> Multiple:
    """Up to ``config.multiple`` sufficient sets, subset-minimal, verified, (nearly) disjoint.

    Parameters
    ----------
    domain, criterion : Domain, Criterion
        The clip's feature space and passing test.
    config : Config
        ``multiple``, ``max_overlap``, ``multiple_budget`` and the extraction parameters.
    ranking, responsibility : np.ndarray
        The explanation's ranking and the map it came from; re-ranking keeps its order.
    first : Extracted
        The sufficient set already found (it opens the list when verified).
    mutants : Mutants
        The explanation's mutant answers.

    Returns
    -------
    Multiple
    """
    if first.k is None or not first.verified:
        return Multiple([], "no_first_set", "no verified sufficient set to start from")
    start = mutants.evaluated
    sets, found_by, fresh = [first], ["first"], 0
    magnitude, candidates = domain.magnitude(), domain.candidates()
    weight = np.asarray(responsibility, dtype=np.float64).ravel()

    def left() -> int:
        return config.multiple_budget - (mutants.evaluated - start)

    while len(sets) < config.multiple:
        used = _used(sets, config.max_overlap)
        remaining = candidates[~np.isin(candidates, used)]
        if remaining.size == 0:
            return _done(sets, found_by, "none_left", "every feature is used by a set found",
                         mutants.evaluated - start, fresh)
        if left() <= 0:
            return _done(sets, found_by, "budget", f"multiple_budget "
                         f"({config.multiple_budget} mutants) spent", mutants.evaluated - start,
                         fresh)
        how, order = "rerank", ranking[~np.isin(ranking, used)]
        k, _ = _sufficient_prefix(domain, criterion, order, config, mutants)
        # The first ranking no longer separates anything when no prefix passes, or when the
        # passing prefix reaches features of no responsibility (ordered by magnitude only).
        if k is None or weight[order[k - 1]] <= 0:
            if left() < MIN_FRESH:
                if k is None:
                    return _done(sets, found_by, "budget", "no sufficient prefix of the "
                                 "re-ranked remaining features, and too little of "
                                 "multiple_budget left for a fresh search",
                                 mutants.evaluated - start, fresh)
            else:
                fresh += 1
                other = _fresh_ranking(domain, criterion, config, used, remaining, magnitude,
                                       mutants, left(), len(sets))
                k2, _ = _sufficient_prefix(domain, criterion, other, config, mutants)
                if k2 is not None and (k is None or k2 < k):
                    how, order, k = "fresh", other, k2
        if k is None:
            return _done(sets, found_by, "none_left", f"no sufficient set among the "
                         f"{remaining.size} remaining features (re-ranked, then searched "
                         "afresh)", mutants.evaluated - start, fresh)
        e = Extracted("sufficient", k, proven=False)
        e.bins, e.minimal, e.minimal_note, _ = shrink(
            domain, criterion, "sufficient", order[:k],
            max(0, min(config.minimal_budget, left())), mutants)
        _verify(domain, criterion, e)
        sets.append(e)
        found_by.append(how)
    return _done(sets, found_by, "multiple", f"multiple ({config.multiple}) sets found",
                 mutants.evaluated - start, fresh)


def _used(sets: list[Extracted], max_overlap: float) -> np.ndarray:
    """Features later sets may not use: all of each set, or its most responsible share."""
    parts = [s.bins[:math.ceil((1.0 - max_overlap) * len(s.bins))] for s in sets]
    return np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)


def _sufficient_prefix(domain: Domain, criterion: Criterion, order: np.ndarray,
                       config: Config, mutants: Mutants) -> tuple[int | None, bool]:
    prefixes = Prefixes(domain, criterion, order, mutants)
    return find_prefix(prefixes.predicate("sufficient"), 1, len(order), config)


def _fresh_ranking(domain: Domain, criterion: Criterion, config: Config, used: np.ndarray,
                   remaining: np.ndarray, magnitude: np.ndarray, mutants: Mutants,
                   budget: int, round_: int) -> np.ndarray:
    """The remaining features ranked by a responsibility search that never keeps a used one."""
    restricted = _Restricted(domain, used)
    names = _RestrictedMutants(mutants, restricted)
    whole = mutants.ask([mutants.key(remaining)], lambda _: domain.keep([remaining]))[0]
    # A fresh seed per round, derived from the user's: reproducible, never the first search's.
    seed = int(np.random.SeedSequence([config.seed, round_]).generate_state(1)[0])
    # Every iteration spends at least one split: fewer iterations when the budget is small.
    fresh = config.replace(search_limit=min(config.search_limit, budget), seed=seed,
                           iterations=max(1, min(config.iterations, budget // MIN_FRESH)))
    responsibility, _ = responsibility_map(
        restricted, criterion, fresh,  # type: ignore[arg-type]
        original_passes=bool(criterion.passes(whole)[0]), mutants=names)
    mutants.evaluated += names.evaluated
    mutants.asked += names.asked
    return rank_bins(responsibility, magnitude, remaining)


def _verify(domain: Domain, criterion: Criterion, e: Extracted) -> None:
    """One final model call on exactly the set (never answered from the cache)."""
    kept = domain.keep([e.bins])
    probs = criterion.probabilities(kept)
    e.probabilities, e.audio = probs[0], kept[0]
    e.verified = bool(criterion.passes(probs)[0])


def _done(sets: list[Extracted], found_by: list[str], stopped: str, reason: str,
          spent: int, fresh: int) -> Multiple:
    return Multiple(sets, stopped, reason, spent, fresh, found_by)


def redundancy(found: Multiple, domain: Domain) -> dict:
    """The summary written to the JSON: how many sets, their sizes, their union's shares of
    the features and of the energy, the largest pairwise overlap (the share of the earlier
    set a later one reuses), and why the search stopped."""
    union = found.union()
    sets = found.sets
    # As max_overlap counts it: the share of the earlier set that a later one reuses.
    overlap = max((len(np.intersect1d(a.bins, b.bins)) / max(1, len(a.bins))
                   for i, a in enumerate(sets) for b in sets[i + 1:]), default=0.0)
    return {"sets": len(sets), "sizes": [int(len(s.bins)) for s in sets],
            "verified": [bool(s.verified) for s in sets], "found_by": list(found.found_by),
            "disjoint": overlap == 0.0, "max_pairwise_overlap": float(overlap),
            "union_size": int(union.size),
            "union_share_features": union.size / domain.n_features,
            "union_share_energy": domain.energy_share(union) if union.size else 0.0,
            "stopped": found.stopped, "reason": found.reason, "mutants": found.mutants,
            "fresh_searches": found.fresh_searches}
