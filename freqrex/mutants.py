"""The model's answer on each mutant, asked at most once per explanation.

A mutant is named by the set of features it keeps (the fixed features outside the root
are in every mutant). The search, the prefix searches of the extraction and the
minimisation all ask for mutants by name, so a mutant that one of them already evaluated
costs the others nothing: the empty subset of a child's split is the parent's mutant
without that child, the top-64 prefixes of consecutive rankings are mostly the same sets,
and the minimisation retries sets the prefix search has seen.

Names are Zobrist keys: every feature draws two random 64-bit words, and a set's key is
its size with the wrapping sums of its words. Keys are order-free, cost one lookup per
box through prefix sums, and give every prefix of a ranking in one cumulative sum; two
different sets share a key with probability about 2**-128. The words come from a fixed
seed of their own: keys decide only what is evaluated again, never a result.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter
from typing import TypeVar

import numpy as np

from freqrex import _kernels as kernels
from freqrex.boxes import Box, Interval
from freqrex.criterion import Criterion
from freqrex.domains import Domain
from freqrex.model.base import pass_rows

Key = tuple[int, int, int]
EMPTY: Key = (0, 0, 0)
_WRAP = 1 << 64
_KEY_SEED = 0x6672_6571  # "freq": the keys' own stream, apart from every search seed
OVERLAP_SAMPLES = 1 << 16
"""Clips this long or longer synthesise the next batch while the model scores one (below,
synthesis is cheaper than the hand-over between threads)."""
RAMP = 3
"""How much larger each piece of an overlapped fill is than the one before, from two rows:
a piece is built while the model scores the one before it, so only the first piece's
synthesis waits, and each next one may take as long to build as the last takes to score
(on the bundled model at 30 s, with both on two cores, a row scores ~3x as long as it is
built: see bench/README.md, "Warm engine")."""
J = TypeVar("J")
B = TypeVar("B")
T = TypeVar("T")


@dataclass
class Request:
    """What one step of a computation needs from the model: of the sets named ``keys``
    (whose kept waveforms ``build(indices)`` makes), the kept mutants at ``kept`` and the
    removals at ``removed`` (indices into ``keys``, none known yet)."""

    keys: Sequence[Key]
    build: Callable[[list[int]], np.ndarray]
    kept: list[int]
    removed: list[int]


Steps = Generator[Request, int, T]
"""A computation run by :meth:`Mutants.run`: it yields requests, is sent back how many
mutants each had evaluated, and returns its result."""


def join(a: Key, b: Key) -> Key:
    """The name of the union of two disjoint sets."""
    return a[0] + b[0], (a[1] + b[1]) % _WRAP, (a[2] + b[2]) % _WRAP


def minus(whole: Key, part: Key) -> Key:
    """The name of a set without one of its subsets."""
    return whole[0] - part[0], (whole[1] - part[1]) % _WRAP, (whole[2] - part[2]) % _WRAP


def run_key(sums: np.ndarray, start: int, stop: int) -> Key:
    """The name of the run ``features[start:stop]`` of a set whose ``Mutants.run_sums`` are
    ``sums``."""
    d = sums[stop] - sums[start]   # uint64 wraps as the names do
    return int(stop - start), int(d[0]), int(d[1])


def pieces(total: int, step: int, first: int | None = None) -> list[tuple[int, int]]:
    """``(start, stop)`` of consecutive pieces of ``total`` rows, at most ``step`` each.

    With ``first``, the pieces start at ``first`` rows and grow ``RAMP``-fold up to
    ``step`` (for :func:`overlapped`, where only the first piece's synthesis waits).
    Pieces hold two rows or more wherever ``total`` allows (no one-row tail, as the model's
    own passes: :func:`freqrex.model.base.pass_rows`), so a step below three may give one
    piece of three rows.
    """
    step = max(2, int(step))
    size = step if first is None else max(2, min(int(first), step))
    out, start = [], 0
    while start < total:
        rows = pass_rows(total - start, size)
        out.append((start, start + rows))
        start += rows
        size = min(step, size * RAMP)
    return out


class Mutants:
    """Probabilities of mutants by the features they keep, with and without the clip.

    Parameters
    ----------
    domain : Domain
        The clip's feature space (makes the waveforms).
    criterion : Criterion
        Holds the model (turns waveforms into probabilities).

    Attributes
    ----------
    asked, evaluated : int
        Mutants asked for, and of them evaluated by the model (the rest were known).
    """

    def __init__(self, domain: Domain, criterion: Criterion) -> None:
        self.domain, self.criterion = domain, criterion
        words = np.random.default_rng(_KEY_SEED).integers(
            0, np.iinfo(np.uint64).max, size=(domain.n_features, 2), dtype=np.uint64,
            endpoint=True)
        # only the prefix sums are kept (a feature's words are a difference of two): 16
        # bytes per feature, 77 MB for the 4.8 M bins of a 10-minute clip
        self._cumulative = np.vstack([np.zeros((1, 2), np.uint64), np.cumsum(words, axis=0)])
        del words
        self._kept: dict[Key, np.ndarray] = {}
        self._removed: dict[Key, np.ndarray] = {}
        self._rankings: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.asked = 0
        self.evaluated = 0

    # names ------------------------------------------------------------------------------
    def key(self, features: np.ndarray) -> Key:
        """The name of the mutant keeping ``features`` (flat indices, any order)."""
        w = self.run_sums(features)[-1]
        return int(len(features)), int(w[0]), int(w[1])

    def box_key(self, boxes: Sequence[Box]) -> Key:
        """The name of the mutant keeping a union of disjoint boxes."""
        key = EMPTY
        for box in boxes:
            for lo, hi in self._runs(box):
                d = self._cumulative[hi] - self._cumulative[lo]  # arrays wrap silently
                key = join(key, (hi - lo, int(d[0]), int(d[1])))
        return key

    def prefix_keys(self, ranking: np.ndarray, ks: Sequence[int]) -> list[Key]:
        """The names of the mutants keeping the first ``k`` features of ``ranking``."""
        sums = self._ranking_sums(ranking)
        return [run_key(sums, 0, k) for k in ks]

    def run_sums(self, features: np.ndarray) -> np.ndarray:
        """The features' words summed in their order, ``[len(features) + 1, 2]``: the name
        of any run ``features[a:b]`` is then ``run_key(sums, a, b)``, whatever its length."""
        return kernels.word_sums(self._cumulative, features)

    def _runs(self, box: Box) -> list[tuple[int, int]]:
        if isinstance(box, Interval):
            return [(box.lo, box.hi)]
        frames = self.domain.shape[1]
        return [(row * frames + box.t0, row * frames + box.t1) for row in range(box.f0, box.f1)]

    def _ranking_sums(self, ranking: np.ndarray) -> np.ndarray:
        held = self._rankings.get(id(ranking))
        if held is None or held[0] is not ranking:
            held = (ranking, self.run_sums(ranking))
            self._rankings = {id(ranking): held}  # the latest ranking only: bounded memory
        return held[1]

    # answers ----------------------------------------------------------------------------
    def missing(self, keys: Sequence[Key], removal: bool = False) -> list[int]:
        """Indices of ``keys`` whose mutant (or its removal) was not evaluated yet, each once."""
        table = self._removed if removal else self._kept
        seen: set[Key] = set()
        out = []
        for i, key in enumerate(keys):
            if key not in table and key not in seen:
                seen.add(key)
                out.append(i)
        return out

    def store(self, keys: Sequence[Key], probabilities: np.ndarray,
              removal: bool = False) -> None:
        table = self._removed if removal else self._kept
        for key, p in zip(keys, probabilities):
            table[key] = p

    def lookup(self, keys: Sequence[Key], removal: bool = False) -> np.ndarray:
        """Known probabilities, ``[len(keys), C]``."""
        self.asked += len(keys)
        return self._get(keys, removal)

    def known(self, keys: Sequence[Key], removal: bool = False) -> tuple[list[int], np.ndarray]:
        """Which of ``keys`` have an answer already, and those answers (not counted as
        asked: for the bookkeeping of a caller that has asked for them)."""
        table = self._removed if removal else self._kept
        rows = [i for i, key in enumerate(keys) if key in table]
        return rows, self._get([keys[i] for i in rows], removal)

    def _get(self, keys: Sequence[Key], removal: bool = False) -> np.ndarray:
        table = self._removed if removal else self._kept
        return np.array([table[k] for k in keys])

    def rows_per_call(self, overlap: bool = False) -> int:
        """Mutants synthesised at a time: what the model's memory budget allows for a
        waveform plus freqrex's own rows (the float32 mutant and its removal; with
        ``overlap``, those of the next piece too), else all."""
        per_batch = getattr(self.criterion.model, "waveforms_per_batch", None)
        if per_batch is None:
            return 1 << 30
        extra = (16 if overlap else 8) * self.domain.n
        return int(per_batch(self.domain.n, extra_bytes_per_waveform=extra))

    def ask(self, keys: Sequence[Key], build: Callable[[list[int]], np.ndarray],
            removal: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities on the kept features (and, with ``removal``, on the clip without
        them) for each key; ``build(indices)`` makes the kept waveforms of those not known.

        What is missing is built and evaluated in pieces that fit the model's memory
        budget, so memory stays bounded whatever the clip length; the pieces change how
        the work is batched, never which mutants are evaluated.
        """
        return self.run([self.ask_steps(keys, build, removal)])[0][0]

    def necessary(self, keys: Sequence[Key],
                  build: Callable[[list[int]], np.ndarray]) -> np.ndarray:
        """The necessary predicate per key, asking the model only what decides it.

        A set whose kept mutant is known to fail, or whose removal leaves the decision as
        it was, is not necessary whatever the other half says: the clip without the set
        is evaluated first, the kept set only where the removal broke the decision. The
        answers are those of ``criterion.holds("necessary", *ask(keys, build, True))``.
        """
        return self.run([self.necessary_steps(keys, build)])[0][0]

    def ask_steps(self, keys: Sequence[Key], build: Callable[[list[int]], np.ndarray],
                  removal: bool = False) -> Steps[tuple[tuple[np.ndarray, np.ndarray | None],
                                                    int]]:
        """:meth:`ask` as steps for :meth:`run`; returns its answer and how many mutants
        the model evaluated for it."""
        evaluated = yield Request(keys, build, self.missing(keys),
                                  self.missing(keys, removal=True) if removal else [])
        kept = self.lookup(keys)
        return (kept, self.lookup(keys, removal=True) if removal else None), evaluated

    def necessary_steps(self, keys: Sequence[Key], build: Callable[[list[int]], np.ndarray]
                        ) -> Steps[tuple[np.ndarray, int]]:
        """:meth:`necessary` as steps for :meth:`run` (the removals, then the kept sets
        whose removal broke the decision); returns its answer and how many mutants the
        model evaluated for it."""
        criterion = self.criterion
        self.asked += 2 * len(keys)
        known = [i for i, key in enumerate(keys) if key in self._kept]
        failed = set(np.asarray(known)[~criterion.passes(self._get([keys[i] for i in known]))]
                     .tolist()) if known else set()
        open_ = [i for i in range(len(keys)) if i not in failed]
        out = np.zeros(len(keys), dtype=bool)
        if not open_:
            return out, 0
        removed = [keys[i] for i in open_]
        evaluated = yield Request(removed, lambda rows: build([open_[r] for r in rows]),
                                  [], self.missing(removed, removal=True))
        breaks = criterion.removal_breaks(self._get(removed, removal=True))
        rest = [i for i, ok in zip(open_, breaks) if ok]
        if rest:
            kept = [keys[i] for i in rest]
            evaluated += yield Request(kept, lambda rows: build([rest[r] for r in rows]),
                                       self.missing(kept), [])
            out[rest] = criterion.passes(self._get(kept))
        return out, evaluated

    def run(self, steps: Sequence[Steps[T]]) -> list[T]:
        """Run computations in lock-step and return what each returns.

        Each computation yields a :class:`Request` per step and is sent back how many of its
        mutants the model evaluated (what another asked for in the same round, or earlier,
        is known and not counted). Every round, the requests of all those still running
        are evaluated together (:meth:`_fill`), so independent computations (the three
        sets' minimisations) share model calls instead of each making its own; which
        mutants are evaluated does not depend on it.
        """
        results: list[T | None] = [None] * len(steps)
        waiting: dict[int, Request] = {}

        def advance(j: int, sent: int | None) -> None:
            try:
                waiting[j] = steps[j].send(sent)  # type: ignore[arg-type]
            except StopIteration as stop:
                results[j] = stop.value
                waiting.pop(j, None)

        for j in range(len(steps)):
            advance(j, None)
        while waiting:
            order = sorted(waiting)
            for j, n in zip(order, self._fill([waiting[j] for j in order])):
                advance(j, n)
        return results  # type: ignore[return-value]

    def _fill(self, requests: Sequence[Request]) -> list[int]:
        """Evaluate what ``requests`` ask for, each mutant once, in pieces the memory
        budget allows; how many each request had evaluated (a mutant two ask for counts
        for the first).

        On clips of ``OVERLAP_SAMPLES`` or more the next piece is synthesised while the
        model scores the current one (see :func:`overlapped`), so two pieces are alive at
        once: the budget counts both. The pieces then grow from two rows (``RAMP``): the
        first piece's synthesis is the only one nothing hides.
        """
        kept: set[tuple[int, int]] = set()
        removed: set[tuple[int, int]] = set()
        entries: list[tuple[int, int]] = []   # (request, index into its keys)
        seen_kept: set[Key] = set()
        seen_removed: set[Key] = set()
        counts = []
        for r, request in enumerate(requests):
            new_kept = [i for i in request.kept if request.keys[i] not in seen_kept]
            new_removed = [i for i in request.removed if request.keys[i] not in seen_removed]
            seen_kept.update(request.keys[i] for i in new_kept)
            seen_removed.update(request.keys[i] for i in new_removed)
            kept.update((r, i) for i in new_kept)
            removed.update((r, i) for i in new_removed)
            entries += [(r, i) for i in sorted(set(new_kept) | set(new_removed))]
            counts.append(len(new_kept) + len(new_removed))
        overlap = self.domain.n >= OVERLAP_SAMPLES
        step = self.rows_per_call(overlap=overlap) // (2 if removed else 1)
        jobs = [entries[start:stop]
                for start, stop in pieces(len(entries), step, first=2 if overlap else None)]
        make = lambda piece: self._batch(requests, piece, kept, removed)  # noqa: E731
        score = lambda piece, batch: self._score(requests, piece, batch, kept, removed)  # noqa: E731
        if overlap:
            overlapped(jobs, make, score)
        else:
            for piece in jobs:
                score(piece, make(piece))
        return counts

    def _batch(self, requests: Sequence[Request], piece: list[tuple[int, int]],
               need_kept: set[tuple[int, int]], need_removed: set[tuple[int, int]]
               ) -> np.ndarray:
        """The model batch of a piece: the kept waveforms asked for, then the removals."""
        runs = [(r, [i for _, i in run]) for r, run in groupby(piece, key=itemgetter(0))]
        made = [requests[r].build(rows) for r, rows in runs]
        waves = [(wave, entry) for block, (r, rows) in zip(made, runs)
                 for wave, entry in zip(block, ((r, i) for i in rows))]
        kept = [wave for wave, entry in waves if entry in need_kept]
        removed = [wave for wave, entry in waves if entry in need_removed]
        if len(made) == 1 and not removed:   # every row built is a kept one, in order
            return made[0]
        # one model batch, filled in place: no copy of the piece beyond the batch itself
        batch = np.empty((len(kept) + len(removed), self.domain.n), dtype=np.float32)
        for row, wave in enumerate(kept):
            batch[row] = wave
        for row, wave in enumerate(removed, start=len(kept)):
            self.domain.remove(wave[None], out=batch[row:row + 1])
        return batch

    def _score(self, requests: Sequence[Request], piece: list[tuple[int, int]],
               batch: np.ndarray, need_kept: set[tuple[int, int]],
               need_removed: set[tuple[int, int]]) -> None:
        kept = [requests[r].keys[i] for r, i in piece if (r, i) in need_kept]
        removed = [requests[r].keys[i] for r, i in piece if (r, i) in need_removed]
        probs = self.criterion.probabilities(batch)
        self.evaluated += len(kept) + len(removed)
        self.store(kept, probs[:len(kept)])
        self.store(removed, probs[len(kept):], removal=True)


_builder: ThreadPoolExecutor | None = None
_builder_lock = threading.Lock()


def overlapped(jobs: Sequence[J], build: Callable[[J], B],
               consume: Callable[[J, B], None]) -> None:
    """``consume(job, build(job))`` for every job in order, each next job being built in a
    second thread while the current one is consumed.

    Synthesis (inverse FFTs, Numba kernels) and ONNX Runtime both release the GIL, so a
    mutant batch is made while the model scores the one before it instead of after it.
    Each job's result is the same whichever thread builds it; one job is built inline.
    """
    if len(jobs) < 2:
        for job in jobs:
            consume(job, build(job))
        return
    builder = _builder_thread()
    pending: Future[B] | None = builder.submit(build, jobs[0])
    try:
        for i, job in enumerate(jobs):
            assert pending is not None
            made = pending.result()
            pending = builder.submit(build, jobs[i + 1]) if i + 1 < len(jobs) else None
            consume(job, made)
            del made   # at most two jobs' results alive: this one is done with
    finally:
        if pending is not None and not pending.cancel():
            pending.exception()   # a build still running finishes before we leave


def _builder_thread() -> ThreadPoolExecutor:
    global _builder
    with _builder_lock:
        if _builder is None:
            _builder = ThreadPoolExecutor(1, thread_name_prefix="freqrex-synth")
        return _builder
