"""Sufficient, necessary and complete sets from a ranking: smallest prefixes, then minimal sets.

Features are ranked by responsibility (ties: larger magnitude first) and ``top(k)`` is the
first ``k``. For each kind (predicates in :mod:`freqrex.criterion`):

1. **Smallest prefix** (:func:`smallest_prefix`). The predicates are not monotone in
   ``k``, so the first batch tests *every* ``k`` from the start up to ``dense_limit`` (a
   small set is where a local boundary would overstate the answer most), plus geometric
   steps from there to the end. If one of the dense ``k`` holds,
   the first that does is the answer and it is *proven* smallest. Otherwise the first
   holding step brackets the answer, ``PROBES`` evenly spaced probes per batch narrow the
   bracket, and the last bracket is scanned whole. Guarantee: the reported ``k`` holds,
   ``k - 1`` fails, every tested ``k`` below it fails, and ``k`` is exact whenever the
   predicate is monotone beyond the dense range; ``proven`` says whether every smaller
   ``k`` was tested. ``search="linear"`` scans in steps of ``chunk`` as ReX does.
2. **Minimal set** (:func:`freqrex.minimal.shrink_together`): each prefix is shrunk to a
   subset-minimal set (no single feature can be dropped with the predicate still
   holding), ddmin style, in batched rounds within ``minimal_budget`` mutants per set.
   A necessary or complete set that comes out smaller than the sufficient one and is
   sufficient too is shrunk on as the sufficient set (:func:`_shrink_from_smaller`).
3. **Verification**: one last model call on every reported set.

Every batch is a fixed list of mutants, so nothing depends on ``batch_size``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from freqrex.config import Config
from freqrex.criterion import KINDS, Criterion
from freqrex.domains import Domain
from freqrex.minimal import shrink, shrink_together
from freqrex.mutants import Key, Mutants

Predicate = Callable[[np.ndarray], np.ndarray]
PROBES = 32
"""Probes per refinement batch: a constant, so the search never depends on ``batch_size``."""


@dataclass
class Extracted:
    """One explanation as found by the search, before it is dressed up for reporting."""

    kind: str
    k: int | None                    # smallest prefix size; None when not found
    proven: bool = False             # every smaller prefix was tested and failed
    bins: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # rank order
    minimal: bool = False            # no single feature of ``bins`` can be dropped
    minimal_note: str = ""           # why the set is not proven minimal, when it is not
    verified: bool = False
    probabilities: np.ndarray | None = None          # model output on the kept features
    removed_probabilities: np.ndarray | None = None  # on the clip without them (necessary)
    audio: np.ndarray | None = None


def rank_bins(responsibility: np.ndarray, magnitude: np.ndarray,
              candidates: np.ndarray) -> np.ndarray:
    """``candidates`` (flat feature indices) by responsibility, then magnitude, descending."""
    r, m = responsibility.ravel()[candidates], magnitude.ravel()[candidates]
    return candidates[np.lexsort((candidates, -m, -r))]


class Prefixes:
    """The model's outputs on prefixes of one ranking, each mutant evaluated at most once.

    The sufficient and complete predicates read the same outputs (the kept prefix) and the
    necessary one adds the clip without it; all of them go through the explanation's
    :class:`~freqrex.mutants.Mutants`, so prefixes that an earlier ranking (or the
    search, or the minimisation) already evaluated cost nothing.
    """

    def __init__(self, domain: Domain, criterion: Criterion, ranking: np.ndarray,
                 mutants: Mutants | None = None) -> None:
        self.domain, self.criterion, self.ranking = domain, criterion, ranking
        self.mutants = mutants or Mutants(domain, criterion)

    def outputs(self, ks: np.ndarray, removal: bool = False
                ) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities on each prefix in ``ks`` (and on the clip without it), one batch."""
        return self.mutants.ask(*self._named(ks), removal=removal)

    def holds(self, kind: str, ks: np.ndarray) -> np.ndarray:
        """The predicate of ``kind`` for each prefix size in ``ks``."""
        if kind == "necessary":
            return self.mutants.necessary(*self._named(ks))
        return self.criterion.holds(kind, self.outputs(ks)[0])

    def _named(self, ks: np.ndarray) -> tuple[list[Key], Callable[[list[int]], np.ndarray]]:
        """The prefixes' names, and how to build the waveforms of some of them."""
        ks = np.asarray(ks, dtype=np.int64)
        keys = self.mutants.prefix_keys(self.ranking, ks.tolist())
        return keys, lambda rows: self.domain.keep_top(self.ranking, ks[rows])

    def predicate(self, kind: str) -> Predicate:
        return lambda ks: self.holds(kind, ks)

    def target_probability(self, ks: np.ndarray, removal: bool = False) -> np.ndarray:
        """``p_target`` on each prefix (or on the clip without it)."""
        kept, removed = self.outputs(ks, removal=removal)
        table = removed if removal else kept
        assert table is not None
        return table[:, self.criterion.target]


class _Scan:
    """A predicate over prefix sizes that remembers every answer it gave."""

    def __init__(self, predicate: Predicate, lo: int) -> None:
        self.predicate, self.lo = predicate, lo
        self.seen: dict[int, bool] = {}

    def ask(self, ks: list[int] | np.ndarray) -> None:
        new = [int(k) for k in dict.fromkeys(np.asarray(ks).tolist()) if int(k) not in self.seen]
        if new:
            for k, ok in zip(new, self.predicate(np.array(new, dtype=np.int64))):
                self.seen[k] = bool(ok)

    def first_true(self, below: int | None = None) -> int | None:
        return next((k for k in sorted(self.seen) if self.seen[k]
                     and (below is None or k < below)), None)

    def last_false_before(self, k: int) -> int:
        return max((j for j in self.seen if j < k), default=self.lo - 1)

    def result(self, k: int | None, hi: int) -> tuple[int | None, bool]:
        end = hi + 1 if k is None else k
        return k, all(j in self.seen for j in range(self.lo, end))


def smallest_prefix(predicate: Predicate, lo: int, hi: int, *, dense_limit: int = 64,
                    probes: int = PROBES) -> tuple[int | None, bool]:
    """Smallest ``k`` in ``[lo, hi]`` where ``predicate`` holds, and whether it is proven.

    Parameters
    ----------
    predicate : callable
        int64 ``[M]`` prefix sizes to bool ``[M]``; called once per batch.
    lo, hi : int
        The range searched.
    dense_limit : int
        ``k = lo .. dense_limit`` are all tested in the first batch (none when ``lo`` is
        beyond it: the geometric steps then start at ``lo``).
    probes : int
        Probes per refinement batch.

    Returns
    -------
    k : int or None
        None when no probe held.
    proven : bool
        Every ``k'`` in ``[lo, k)`` (``[lo, hi]`` for None) was tested and failed: ``k`` is
        the smallest. Without proof ``k`` still holds, ``k - 1`` fails, and it is exact for
        a predicate monotone beyond the dense range.

    Examples
    --------
    >>> smallest_prefix(lambda ks: (ks == 17) | (ks >= 300), 1, 1000)
    (17, True)
    """
    scan = _Scan(predicate, lo)
    if hi < lo:
        return None, True
    dense_end = min(hi, max(lo - 1, dense_limit))
    steps = dense_end + (1 << np.arange(int(np.log2(max(hi - dense_end, 1))) + 2))
    scan.ask(np.concatenate([np.arange(lo, dense_end + 1), steps[steps < hi], [hi]]))
    first = scan.first_true()
    if first is None:
        return scan.result(None, hi)
    return scan.result(_narrow(scan, first, probes, lambda k: 1), hi)


def coarse_prefix(predicate: Predicate, lo: int, hi: int, *, tolerance: float,
                  probes: int = PROBES) -> int | None:
    """A prefix size that holds, at most ``tolerance`` of itself above a failing one.

    Cheaper than :func:`smallest_prefix` (no dense range, no scan of the last bracket): it
    is what the adaptive stop needs to tell whether an iteration shrank the prefix by more
    than ``1 - stability``. The answer holds and ``(1 - tolerance) * k`` or more fails; it is
    the smallest within that tolerance when the predicate is monotone.

    Examples
    --------
    >>> coarse_prefix(lambda ks: ks >= 1000, 1, 4000, tolerance=0.05)
    1008
    """
    if hi < lo:
        return None
    scan = _Scan(predicate, lo)
    steps = lo - 1 + (1 << np.arange(int(np.log2(max(hi - lo + 1, 1))) + 1))
    scan.ask(np.append(steps[steps < hi], hi))
    above = scan.first_true()
    if above is None:
        return None
    return _narrow(scan, above, probes, lambda k: max(1, int(tolerance * k)))


def _narrow(scan: _Scan, above: int, probes: int, gap: Callable[[int], int]) -> int:
    """Refine the bracket below the holding ``above`` with ``probes`` evenly spaced probes
    per batch until the last failing size is within ``gap(above)`` of the first holding
    one; that first holding size."""
    below = scan.last_false_before(above)
    while above - below > gap(above):
        inner = np.unique(np.linspace(below, above, probes + 2).round().astype(np.int64))
        scan.ask(inner[(inner > below) & (inner < above)])
        above = scan.first_true() or above   # never None once something held
        below = scan.last_false_before(above)
    return above


def linear_prefix(predicate: Predicate, lo: int, hi: int, *, chunk: int,
                  probes: int = PROBES) -> tuple[int | None, bool]:
    """Smallest ``k`` in ``[lo, hi]`` by ReX's scan: steps of ``chunk``, ``probes`` per batch,
    then the first holding step scanned feature by feature. Returns ``(k, proven)``."""
    scan = _Scan(predicate, lo)
    coarse = np.unique(np.append(np.arange(lo, hi + 1, chunk), hi))
    for start in range(0, len(coarse), probes):
        scan.ask(coarse[start:start + probes])
        if scan.first_true() is not None:
            break
    k = scan.first_true()
    if k is None:
        return scan.result(None, hi)
    fine = np.arange(scan.last_false_before(k) + 1, k, dtype=np.int64)
    for start in range(0, len(fine), probes):
        scan.ask(fine[start:start + probes])
        if scan.first_true() != k:
            break
    return scan.result(scan.first_true(), hi)


def extract(domain: Domain, criterion: Criterion, ranking: np.ndarray,
            config: Config, mutants: Mutants | None = None) -> dict[str, Extracted]:
    """Find, shrink and verify the sufficient, necessary and complete sets.

    Parameters
    ----------
    mutants : Mutants, optional
        The explanation's mutant answers (shared with the search); a new one if omitted.

    Returns
    -------
    dict
        ``kind -> Extracted`` for the three kinds, in order.
    """
    mutants = mutants or Mutants(domain, criterion)
    prefixes = Prefixes(domain, criterion, ranking, mutants)
    total = len(ranking)
    found: dict[str, Extracted] = {}
    start = 1
    for kind in KINDS:
        k, proven = find_prefix(prefixes.predicate(kind), start, total, config)
        found[kind] = Extracted(kind, k, proven=proven)
        start = k if k is not None else start   # k' >= k, k'' >= k' (METHOD.md)
        if kind == "sufficient" and k is None:  # nothing else can hold without it
            break
    for kind in KINDS:
        found.setdefault(kind, Extracted(kind, None))
    # each set its own budget, so one hard set cannot starve the rest; shrunk together,
    # so each round of the three is one model call
    shrinking = [e for e in found.values() if e.k is not None]
    shrunk = shrink_together(domain, criterion, [(e.kind, ranking[:e.k]) for e in shrinking],
                             config.minimal_budget, mutants)
    spent = {}
    for e, (bins, minimal, note, cost) in zip(shrinking, shrunk):
        e.bins, e.minimal, e.minimal_note, spent[e.kind] = bins, minimal, note, cost
    _shrink_from_smaller(domain, criterion, found,
                         config.minimal_budget - spent.get("sufficient", 0), mutants)
    return _verify(domain, criterion, found)


def _shrink_from_smaller(domain: Domain, criterion: Criterion, found: dict[str, Extracted],
                         budget: int, mutants: Mutants) -> None:
    """Shrink the sufficient set on from a smaller sufficient set of another kind, if any.

    The necessary set is sufficient by definition, and the complete set is whenever its
    tolerance keeps ``p_t`` above the threshold; shrunk for their own predicates, either
    may come out smaller than the sufficient set (flute.wav, seed 2: complete 5 bins,
    sufficient 6). The smallest of them that is known to be sufficient (its kept set's
    output was evaluated while it was shrunk: no model call) is shrunk on as a sufficient
    set with what the sufficient set's ``budget`` left, and replaces it: a smaller
    sufficient set, subset-minimal when that budget lets the shrinking finish (``minimal``
    and ``minimal_note`` say), and not a subset of the smallest sufficient prefix, whose
    size ``k`` is still reported as such."""
    sufficient = found["sufficient"]
    if sufficient.k is None:
        return
    smaller = sorted((e for e in found.values()
                      if e.k is not None and len(e.bins) < len(sufficient.bins)),
                     key=lambda e: len(e.bins))
    for e in smaller:
        rows, kept = mutants.known([mutants.key(e.bins)])
        if rows and criterion.passes(kept)[0]:
            sufficient.bins, sufficient.minimal, sufficient.minimal_note, _ = shrink(
                domain, criterion, "sufficient", e.bins, budget, mutants)
            return


def find_prefix(predicate: Predicate, lo: int, hi: int,
                config: Config) -> tuple[int | None, bool]:
    """The configured prefix search (``config.search``) over ``[lo, hi]``."""
    if config.search == "linear":
        return linear_prefix(predicate, lo, hi, chunk=config.chunk)
    return smallest_prefix(predicate, lo, hi, dense_limit=config.dense_limit)


def _verify(domain: Domain, criterion: Criterion,
            found: dict[str, Extracted]) -> dict[str, Extracted]:
    """One final model call on every set found (and on the clip without the necessary one)."""
    kinds = [kind for kind in KINDS if found[kind].k is not None]
    if not kinds:
        return found
    kept = domain.keep([found[kind].bins for kind in kinds])
    necessary = kinds.index("necessary") if "necessary" in kinds else None
    batch = kept if necessary is None else np.concatenate(
        [kept, domain.remove(kept[necessary:necessary + 1])])
    probs = criterion.probabilities(batch)
    for row, kind in enumerate(kinds):
        e = found[kind]
        e.probabilities, e.audio = probs[row], kept[row]
        removed = probs[-1:] if kind == "necessary" else None
        e.removed_probabilities = removed[0] if removed is not None else None
        e.verified = bool(criterion.holds(kind, probs[row:row + 1], removed)[0])
    return found


class SufficientWatch:
    """The adaptive stop of the search: do more iterations still improve the answer?

    Called with the responsibility map after each iteration, it ranks the features and
    finds the smallest sufficient prefix to within half the stability margin
    (:func:`coarse_prefix`, through the shared mutants, so prefixes that an
    earlier ranking shares cost nothing) among the sizes below ``config.stability``
    times the best one before it (all sizes until one is found): an iteration *improves*
    the answer when one of those holds; ``sizes`` records it, or None when none did.
    After ``config.stable_rounds`` iterations in a row without an improvement, the
    search may stop: the ranking is good for what it is used for, and ``best_map`` (the
    map after the last improving iteration) is the one to use.
    """

    def __init__(self, domain: Domain, criterion: Criterion, config: Config,
                 mutants: Mutants) -> None:
        self.domain, self.criterion, self.config, self.mutants = (
            domain, criterion, config, mutants)
        self.best: int | None = None
        self.best_map: np.ndarray | None = None
        self.best_iteration = 0
        self.calm = 0
        self.sizes: list[int | None] = []   # smallest sufficient prefix after each iteration

    def __call__(self, responsibility: np.ndarray) -> bool:
        ranking = rank_bins(responsibility, self.domain.magnitude(), self.domain.candidates())
        prefixes = Prefixes(self.domain, self.criterion, ranking, self.mutants)
        # Within half the stability margin is enough to judge an improvement; the exact
        # search runs once, on the final ranking (and reuses these probes). Only sizes
        # that would improve on the best are searched: a calm iteration costs one batch.
        bar = len(ranking) if self.best is None else math.ceil(
            self.config.stability * self.best) - 1
        k = coarse_prefix(prefixes.predicate("sufficient"), 1, bar,
                          tolerance=(1.0 - self.config.stability) / 2)
        self.sizes.append(k)
        improved = k is not None
        if improved:
            self.best, self.best_map = k, responsibility.copy()
            self.best_iteration = len(self.sizes)
        self.calm = 0 if improved else self.calm + 1
        return self.calm >= self.config.stable_rounds
