"""Every core busy: one ONNX Runtime session using all threads, or parts of each batch run
concurrently, one thread each, whichever scores more waveforms per second.

Many models do not scale across threads inside ONNX Runtime (a DFT over a long clip, small
models on small batches): one session then leaves cores idle. ORT releases the GIL in
``run`` and a session may be run from several threads at once, so a *pool* of ``k`` threads
calling one single-threaded session on ``k`` contiguous parts of the batch uses ``k`` cores.

What is measured (``sessions`` not given): on the first forward pass with at least two rows
both ways are run on the same rows (the pool's first run also warms it up) and their scores
compared bit for bit; the following passes alternate between the two, ``ROUNDS`` each, and
the faster best pass (waveforms/s) wins; the pool must beat the single session by ``MARGIN``,
so a model that already scales keeps its one session.

What is guaranteed: a row's score does not depend on which way it was computed. Passes
of fewer than four rows go to the single session, and no part has one row (ONNX Runtime
scores a one-row batch with other kernels, whose last bit can differ); the pool is used
only after it reproduced the single session's scores bit for bit on the first batch, and
otherwise never (the choice then says so). That is exact for models whose rows of two or
more are computed independently of the rest of the batch and of the thread count (which
``batch_size`` invariance needs as well); the tests check it on the oracles, the bundled
model and the bundled tagger.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["MARGIN", "POOL_ROWS", "ROUNDS", "SessionRunner", "Throughput", "usable_cores"]

ROUNDS = 4  # timed passes per way before choosing
POOL_ROWS = 4  # fewer rows go to the single session: no part may have one row
MARGIN = 1.05  # the pool must be this much faster to be chosen


def usable_cores() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


@dataclass
class Throughput:
    """How forward passes run, and what was measured to decide it.

    Attributes
    ----------
    choice : str
        ``"single"`` (one session, ``threads`` threads), ``"sessions"`` (``sessions``
        concurrent single-threaded runs on parts of each batch) or ``"measuring"``.
    sessions : int
        Concurrent runs of the pool (1 for the single session).
    reason : str
        Why: ``"measured"``, ``"requested"``, ``"one core"``, ``"one thread per call"``,
        ``"fixed batch"``, ``"provider"``, or ``"scores differ between sessions"``.
    rates : dict
        Best waveforms/s measured per way (``"single"``, ``"sessions"``).
    """

    choice: str = "single"
    sessions: int = 1
    reason: str = ""
    rates: dict[str, float] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=lambda: {"single": [],
                                                                     "sessions": []})

    def to_dict(self) -> dict[str, Any]:
        """Plain record for the JSON (``choice``, ``sessions``, ``reason``, ``rates``)."""
        return {"choice": self.choice, "sessions": self.sessions, "reason": self.reason,
                "rates": {k: round(v, 3) for k, v in self.rates.items()}}


class SessionRunner:
    """Runs forward passes on one wide session or on a pool of concurrent narrow runs.

    Parameters
    ----------
    run : callable
        ``run(session, rows) -> scores``: one ``session.run`` on float32 rows ``[b, N]``.
    wide : onnxruntime.InferenceSession
        The session using ``threads`` threads.
    make_narrow : callable
        Opens the single-threaded session the pool shares (called once, when first needed).
    sessions : int or None
        Concurrent runs requested (1: the wide session only); None: measure.
    reason : str, optional
        Why the pool is off from the start (``choice`` is then ``"single"``).
    """

    def __init__(self, run: Callable[[Any, np.ndarray], np.ndarray], wide: Any,
                 make_narrow: Callable[[], Any], sessions: int | None,
                 reason: str | None = None) -> None:
        self._run = run
        self.wide = wide
        self._make_narrow = make_narrow
        self._narrow: Any = None
        self._pool: ThreadPoolExecutor | None = None
        self._verified = False
        self._turn = 0
        cores = usable_cores()
        if reason is not None or sessions == 1 or (sessions is None and cores < 2):
            why = reason or ("requested" if sessions == 1 else "one core")
            self.throughput = Throughput("single", 1, why)
        elif sessions is None:
            self.throughput = Throughput("measuring", cores, "measured")
        else:
            self.throughput = Throughput("sessions", sessions, "requested")

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        """Scores of ``rows``, computed the chosen way (or timed, while measuring)."""
        t = self.throughput
        if rows.shape[0] < POOL_ROWS or t.choice == "single":
            return self._run(self.wide, rows)
        if not self._verified:
            return self._verify(rows)
        if t.choice == "sessions":
            return self._pooled(rows)
        way = ("single", "sessions")[self._turn % 2]
        self._turn += 1
        start = time.perf_counter()
        out = self._run(self.wide, rows) if way == "single" else self._pooled(rows)
        t.samples[way].append(rows.shape[0] / max(time.perf_counter() - start, 1e-9))
        if min(len(v) for v in t.samples.values()) >= ROUNDS:
            self._choose()
        return out

    def measures(self, rows: int) -> bool:
        """Whether passes of ``rows`` would still be run both ways, to be measured."""
        return self.throughput.choice == "measuring" and rows >= POOL_ROWS

    def _verify(self, rows: np.ndarray) -> np.ndarray:
        t = self.throughput
        start = time.perf_counter()
        reference = self._run(self.wide, rows)
        if t.choice == "measuring":
            t.samples["single"].append(rows.shape[0] / max(time.perf_counter() - start, 1e-9))
        pooled = self._pooled(rows)  # also the pool's warm-up: not timed
        self._verified = True
        if reference.tobytes() != pooled.tobytes():
            self._settle("single", "scores differ between sessions")
        return reference

    def _choose(self) -> None:
        t = self.throughput
        # the best pass of each way: on a shared machine others only ever slow a pass down
        t.rates = {way: max(v) for way, v in t.samples.items()}
        faster = t.rates["sessions"] > MARGIN * t.rates["single"]
        self._settle("sessions" if faster else "single", "measured")

    def _settle(self, choice: str, reason: str) -> None:
        t = self.throughput
        t.choice, t.reason = choice, reason
        if choice == "single":
            t.sessions = 1
            self.close()  # the narrow session and its arena are no longer needed

    def _pooled(self, rows: np.ndarray) -> np.ndarray:
        # parts of two rows or more: a one-row batch takes other kernels (see Model.scores)
        k = min(self.throughput.sessions, rows.shape[0] // 2)
        if k < 2:
            return self._run(self.wide, rows)
        if self._narrow is None:
            self._narrow = self._make_narrow()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.throughput.sessions,
                                            thread_name_prefix="freqrex-ort")
        bounds = np.linspace(0, rows.shape[0], k + 1).round().astype(int)
        futures = [self._pool.submit(self._run, self._narrow, rows[a:b])
                   for a, b in zip(bounds[:-1], bounds[1:])]
        return np.concatenate([f.result() for f in futures], axis=0)

    def close(self) -> None:
        """Drop the pool and its session (the wide session stays)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._pool, self._narrow = None, None
