"""The causal responsibility search (ReX over frequency bins).

Each iteration starts from the root box, splits it into four random children, evaluates
the mutants that keep the box's static context plus every proper subset of the children
(one batch), gives each child its Halpern-Pearl degree of responsibility, and refines
the responsible children, most responsible first, until ``max_depth``, ``min_box_size``
or its share of ``search_limit`` stops it. A root split in which no child is a cause is
drawn again. The per-bin maps of all iterations are summed.

Iterations are independent (each has its own random stream, spawned from the seed), so
they advance in lock-step and their mutants share model batches (one at a time when the
adaptive stop checks after each): the result depends neither on the batch size nor on
how iterations were grouped.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count

import numpy as np

from freqrex.boxes import Box, Energy, split
from freqrex.config import Config
from freqrex.criterion import Criterion
from freqrex.domains import Domain
from freqrex.mutants import Key, Mutants, join

GROUP_BYTES = 64 << 20
"""Memory the per-iteration maps of iterations run in lock-step may take together."""


@dataclass
class _Node:
    box: Box
    context: tuple[Box, ...]
    depth: int


@dataclass
class _Iteration:
    rng: np.random.Generator
    budget: int
    responsibility: np.ndarray   # this iteration's own map: sums never depend on grouping
    queue: list = field(default_factory=list)
    spent: int = 0
    order: count = field(default_factory=count)

    def push(self, responsibility: float, node: _Node) -> None:
        heapq.heappush(self.queue, (-responsibility, next(self.order), node))

    def pop(self) -> _Node:
        return heapq.heappop(self.queue)[2]


@dataclass
class _Split:
    """One refinement step: the mutants of a box's children in their context."""

    iteration: _Iteration
    node: _Node
    children: list[Box]
    masks: np.ndarray        # which subsets of children each mutant keeps (bit i = child i)
    full_passes: bool
    passed: np.ndarray | None = None


@dataclass
class SearchStats:
    """What the responsibility search spent, and why it stopped."""

    splits: int = 0
    mutants: int = 0             # mutants the search asked for (its budget counts these)
    iterations: int = 0          # iterations run (at most ``config.iterations``)
    stopped: str = "iterations"  # "iterations": all ran; "stable": the answer held still

    def to_dict(self) -> dict:
        return {"splits": self.splits, "mutants": self.mutants, "iterations": self.iterations,
                "stopped": self.stopped}


def responsibility_map(domain: Domain, criterion: Criterion, config: Config,
                       original_passes: bool = True,
                       progress: Callable[[int, int], None] | None = None,
                       mutants: Mutants | None = None,
                       stop: Callable[[np.ndarray], bool] | None = None,
                       ) -> tuple[np.ndarray, SearchStats]:
    """Sum of the responsibility maps of up to ``config.iterations`` searches.

    Parameters
    ----------
    domain : Domain
        The clip's feature space.
    criterion : Criterion
        Decides which mutants pass.
    config : Config
        Search parameters (iterations, max_depth, min_box_size, cuts, search_limit,
        batch_size, seed, stable_rounds).
    original_passes : bool
        Whether the unmodified clip passes (it does unless the target is not the top class).
    progress : callable, optional
        Called with (mutants evaluated, mutant budget) after every batch.
    mutants : Mutants, optional
        The explanation's mutant answers, shared with the extraction (a new one if omitted).
    stop : callable, optional
        Asked with the map so far after each iteration but the last (when
        ``config.stable_rounds`` is not 0): True ends the search early.

    Returns
    -------
    responsibility : np.ndarray
        float64 per feature, shaped like ``domain.shape``; the sum of the iterations' own
        maps in iteration order, so it never depends on how iterations were grouped.
    stats : SearchStats
    """
    mutants = mutants or Mutants(domain, criterion)
    stats = SearchStats()
    seeds = np.random.SeedSequence(config.seed).spawn(config.iterations)
    # At least one split per iteration, so that every iteration says something.
    budget = max(config.search_limit // config.iterations, 15)
    iterations = [_Iteration(np.random.default_rng(s), budget, np.zeros(domain.shape))
                  for s in seeds]
    for it in iterations:
        it.push(1.0, _Node(domain.root, (), 0))
    total = np.zeros(domain.shape)
    energy = Energy(domain.power_weights()) if config.cuts == "energy" else None
    watch = stop if config.stable_rounds else None
    # Without a stop, iterations run in lock-step and share model batches (fuller batches,
    # fewer calls), as many at a time as their maps fit in GROUP_BYTES; with one, one at a
    # time, each ending with the stability check.
    group = 1 if watch is not None else max(1, min(len(iterations),
                                                   GROUP_BYTES // (8 * domain.n_features)))
    for start in range(0, len(iterations), group):
        members = iterations[start:start + group]
        _search(members, domain, mutants, config, original_passes, stats, energy,
                lambda done: progress(done, budget * len(iterations)) if progress else None)
        for it in members:   # in iteration order: the sum never depends on the grouping
            total += it.responsibility
            it.responsibility = np.empty(0)
            stats.iterations += 1
        if watch is not None and stats.iterations < len(iterations) and watch(total):
            stats.stopped = "stable"
            break
    return total, stats


def _search(group: list[_Iteration], domain: Domain, mutants: Mutants, config: Config,
            original_passes: bool, stats: SearchStats, energy: Energy | None,
            progress: Callable[[int], None]) -> None:
    """Run iterations in lock-step, so that their mutants share model batches."""
    while True:
        splits = [s for it in group
                  if (s := _next_split(it, config, original_passes, energy))]
        if not splits:
            return
        _evaluate(splits, domain, mutants, min(config.batch_size, mutants.rows_per_call()))
        for s in splits:
            _credit(s)
            stats.splits += 1
            stats.mutants += len(s.masks)
        progress(stats.mutants)


def _next_split(it: _Iteration, config: Config, original_passes: bool,
                energy: Energy | None) -> _Split | None:
    """Pop the iteration's most responsible box that can still be split, and split it."""
    while it.queue:
        node = it.pop()
        if node.depth >= config.max_depth:
            continue
        children = split(node.box, it.rng, config.min_box_size, energy=energy)
        if not children:
            continue
        masks = _subset_masks(len(children), with_empty=bool(node.context))
        if it.spent + len(masks) > it.budget:
            it.queue.clear()
            return None
        it.spent += len(masks)
        is_root = node.depth == 0
        return _Split(it, node, children, masks,
                      full_passes=original_passes if is_root else True)
    return None


def _subset_masks(m: int, with_empty: bool) -> np.ndarray:
    """Every proper subset of m children; the empty one only when a context stands alone."""
    first = 0 if with_empty else 1
    return np.arange(first, (1 << m) - 1, dtype=np.int64)


def _evaluate(splits: list[_Split], domain: Domain, mutants: Mutants,
              batch_size: int) -> None:
    """Synthesize the splits' new mutants a batch at a time and record which pass."""
    group: list[_Split] = []
    size = 0
    for s in splits:
        # Fill model batches without splitting a split's mutants over two calls.
        if group and size + len(s.masks) > batch_size:
            _evaluate_group(group, domain, mutants)
            group, size = [], 0
        group.append(s)
        size += len(s.masks)
    if group:
        _evaluate_group(group, domain, mutants)


def _evaluate_group(group: list[_Split], domain: Domain, mutants: Mutants) -> None:
    """Model calls for every mutant of the group not evaluated before (by name), built in
    pieces the memory budget allows (the next synthesised while the model scores one, on
    long clips; see :meth:`Mutants.ask`), into two buffers used in turn."""
    keys = [_keys(s, mutants) for s in group]
    rows = [(g, i) for g, k in enumerate(keys) for i in range(len(k))]
    buffers: list[np.ndarray] = []

    def build(wanted: list[int]) -> np.ndarray:
        # pieces are built in order and at most two are alive: the one the model scores
        # and the next, so the third reuses the first's buffer
        buffer = buffers.pop(0) if len(buffers) == 2 else None
        if buffer is None or buffer.shape[0] < len(wanted):
            buffer = np.empty((len(wanted), domain.n), dtype=np.float32)
        buffers.append(buffer)
        batch = buffer[:len(wanted)]
        piece = [rows[r] for r in wanted]
        for g, run in _runs_of_splits(piece):
            s = group[g]
            domain.mutants(s.node.context, s.children, s.masks[[i for _, i in piece[run]]],
                           out=batch[run])
        return batch

    kept, _ = mutants.ask([keys[g][i] for g, i in rows], build)
    passed = mutants.criterion.passes(kept)
    start = 0
    for s, k in zip(group, keys):
        s.passed, start = passed[start:start + len(k)], start + len(k)


def _runs_of_splits(piece: list[tuple[int, int]]) -> list[tuple[int, slice]]:
    """The piece's rows split by the split they belong to: ``(split, rows)`` per run."""
    runs, start = [], 0
    for end in range(1, len(piece) + 1):
        if end == len(piece) or piece[end][0] != piece[start][0]:
            runs.append((piece[start][0], slice(start, end)))
            start = end
    return runs


def _keys(s: _Split, mutants: Mutants) -> list[Key]:
    """The names of a split's mutants: its context plus each subset of its children."""
    context = mutants.box_key(s.node.context)
    children = [mutants.box_key([c]) for c in s.children]
    keys = []
    for mask in s.masks.tolist():
        key = context
        for i, child in enumerate(children):
            if mask >> i & 1:
                key = join(key, child)
        keys.append(key)
    return keys


def _credit(s: _Split) -> None:
    """Give each child its responsibility and queue the responsible ones."""
    m = len(s.children)
    passes = np.zeros(1 << m, dtype=bool)
    passes[s.masks] = s.passed
    passes[(1 << m) - 1] = s.full_passes
    degrees, witnesses = child_responsibility(passes, m)
    if s.node.depth == 0 and not degrees.any():
        # These cuts separated nothing that matters (say, two bands that only compete once
        # apart landed in one child): try the root again with fresh cuts, within budget.
        s.iteration.push(0.0, s.node)
    for i, child in enumerate(s.children):
        if degrees[i] <= 0:
            continue
        s.iteration.responsibility[child.index] += degrees[i] / child.size
        kept = tuple(c for j, c in enumerate(s.children) if j != i and witnesses[i] >> j & 1)
        s.iteration.push(degrees[i], _Node(child, s.node.context + kept, s.node.depth + 1))


def child_responsibility(passes: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Halpern-Pearl degree of responsibility of each of ``m`` children.

    Child ``i`` is a cause when some passing subset ``K`` holding ``i`` fails without it;
    its degree is ``1 / (1 + |W|)`` with ``W`` the children outside ``K``. The largest degree
    over all such ``K`` counts; ``K`` itself is returned as the child's witness mask.

    Parameters
    ----------
    passes : np.ndarray
        bool ``[2**m]``: whether the mutant keeping subset mask ``K`` passes.
    m : int
        Number of children.

    Returns
    -------
    degrees : np.ndarray
        float64 ``[m]``, zero for children that are not causes.
    witnesses : np.ndarray
        int64 ``[m]`` subset masks (``-1`` where the child is not a cause).
    """
    degrees = np.zeros(m)
    witnesses = np.full(m, -1, dtype=np.int64)
    for i in range(m):
        bit = 1 << i
        for k in range(1 << m):
            if k & bit and passes[k] and not passes[k ^ bit]:
                degree = 1.0 / (1 + m - bin(k).count("1"))
                if degree > degrees[i]:
                    degrees[i], witnesses[i] = degree, k
    return degrees, witnesses
