"""One thread setting, one worker pool and one plan cache for every kernel.

* **The thread setting** (:func:`set_threads`, :func:`threads`) sizes everything that
  runs in parallel: the worker pool below (``threads() - 1`` helpers, the caller being
  the first worker), the per-worker plans of :mod:`.fft` and :mod:`.stft`, and Numba's
  parallel kernels.  Default: the usable CPUs, or ``$FREQREX_THREADS`` if set.
* **The worker pool** runs work items pulled on demand (:func:`run`): static striping
  would make every call wait for its slowest worker; pulled items let a worker that never
  gets a core (another process, onnxruntime spinning) leave its share to the others.
  Every item owns its output, so who runs it cannot change a bit of the result.
* **The plan cache** (:func:`plan`) keeps the plans and buffers of the last
  :data:`PLAN_LIMIT` geometries of each kernel (the first element of the key).

Nothing here imports numba or pyfftw: :func:`prepare_numba` touches numba only when it is
already imported (the caller is about to run a parallel Numba kernel).
"""

from __future__ import annotations

import operator
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, cast

__all__ = [
    "PLAN_LIMIT",
    "forget_plans",
    "plan",
    "prepare_numba",
    "run",
    "set_threads",
    "threads",
    "usable_cores",
]

PLAN_LIMIT = 4  # geometries kept planned per kernel (one clip length is in use at a time)
_ENV = "FREQREX_THREADS"

S = TypeVar("S")
T = TypeVar("T")

_lock = threading.Lock()
_setting: int | None = None  # set_threads(); None: $FREQREX_THREADS or the usable CPUs
_generation = 0  # bumped by every set_threads(), so each thread re-applies Numba's cap
_executor: ThreadPoolExecutor | None = None
_plans: OrderedDict[Hashable, Any] = OrderedDict()
_local = threading.local()


# --------------------------------------------------------------------------- threads


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def _positive(value: object, what: str) -> int:
    try:
        n = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        n = 0
    if isinstance(value, bool) or n < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return n


def _cap() -> int | None:
    """The explicit thread cap: set_threads(), else $FREQREX_THREADS, else None."""
    if _setting is not None:
        return _setting
    raw = os.environ.get(_ENV, "").strip()
    if not raw:
        return None
    try:
        return _positive(int(raw), _ENV)
    except ValueError:
        raise ValueError(f"{_ENV} must be a positive integer, got {raw!r}") from None


def threads() -> int:
    """Threads every kernel may use (FFT rows, STFT units, Numba parallel kernels).

    Returns
    -------
    int
        The value of :func:`set_threads`, else ``$FREQREX_THREADS``, else the number of
        usable CPUs.  The environment variable is read when pools and plans are made.
    """
    cap = _cap()
    return usable_cores() if cap is None else cap


def set_threads(n: int | None) -> None:
    """Cap the threads of every kernel, Numba's parallel kernels included.

    Parameters
    ----------
    n : int or None
        Positive thread count; None restores the default (``$FREQREX_THREADS`` or the
        usable CPUs).  The worker pool and the per-worker plans are rebuilt on the next
        call that needs them.  Numba gets ``min(n, numba.config.NUMBA_NUM_THREADS)``: now
        on this thread if numba is already imported, and on any thread before its next
        parallel kernel (Numba's setting is per thread).

    Examples
    --------
    >>> from freqrex import _kernels
    >>> _kernels.set_threads(1)  # everything serial on the calling thread
    >>> _kernels.threads()
    1
    >>> _kernels.set_threads(None)
    """
    global _setting, _generation, _executor
    value = None if n is None else _positive(n, "threads")
    with _lock:
        before = threads()
        _setting = value
        _generation += 1
        if threads() != before:
            # in-flight calls keep the pool and plans they hold; idle helper threads
            # exit once the old executor is garbage-collected
            _executor = None
            _plans.clear()
    if "numba" in sys.modules:
        prepare_numba()


def prefer_passive_omp_waits() -> None:
    """Default ``OMP_WAIT_POLICY`` to PASSIVE before Numba's OpenMP pool starts.

    Numba's OpenMP workers busy-wait after every parallel region by default.  On the
    2-core dev box that spin holds the core the FFT row pool (and onnxruntime) needs
    next: interval_parts + combine_numba at n = 480 000 took 6.4 ms median instead of
    4.2 ms, and with another busy process on the box a parallel call took 8-12 ms.
    libgomp reads the variable once, when it is loaded, and Numba loads its own copy
    only when it launches its threads (first parallel kernel, ``numba.set_num_threads``):
    so this runs right before that, never at import, and an explicit setting wins.
    (pyFFTW's bundled libgomp is loaded at ``import pyfftw``, but every plan here runs
    with threads=1, so it never waits; OpenBLAS does not read the variable.)
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def prepare_numba() -> None:
    """Call right before a parallel Numba kernel: passive OpenMP waits, the thread cap.

    Cheap after the first call on a thread (one thread-local lookup).  Leaves Numba's
    own setting alone until freqrex is capped (set_threads or ``$FREQREX_THREADS``).
    """
    if _local.__dict__.get("generation") == _generation:
        return
    prefer_passive_omp_waits()
    cap = _cap()
    if cap is None and _generation == 0:
        _local.generation = _generation
        return
    import numba

    limit = int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
    numba.set_num_threads(limit if cap is None else min(cap, limit))
    _local.generation = _generation


# --------------------------------------------------------------------------- pool


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max(1, threads() - 1),
                                           thread_name_prefix="freqrex-kernels")
        return _executor


_DONE = object()


def run(workers: Sequence[S], items: Iterable[T], job: Callable[[S, T], None]) -> None:
    """Run ``job(worker, item)`` for every item, items handed out on demand.

    Parameters
    ----------
    workers : Sequence
        Per-thread state (plans, buffers); ``workers[0]`` is used by the calling thread,
        each other one by a pool thread.  One worker: a plain loop on the caller.
    items : Iterable
        Work items, ideally most expensive first so the cheap ones fill the gaps.
    job : Callable
        Must write only outputs its item owns.  The first exception stops every worker
        and is raised here.
    """
    if len(workers) <= 1:
        for item in items:
            job(workers[0], item)
        return
    it = iter(items)
    lock = threading.Lock()
    stop: list[bool] = []

    def drain(worker: S) -> None:
        try:
            while not stop:
                with lock:
                    item = next(it, _DONE)
                if item is _DONE:
                    return
                job(worker, cast(T, item))
        except BaseException:
            stop.append(True)  # let the other workers stop early too
            raise

    helpers = [_pool().submit(drain, w) for w in workers[1:]]
    try:
        drain(workers[0])
    finally:
        for fut in helpers:
            # a helper that has not started yet has nothing left to do
            if not fut.cancel():
                fut.result()


# --------------------------------------------------------------------------- plans


def plan(key: tuple[Hashable, ...], make: Callable[[], T],
         fits: Callable[[T], bool] | None = None) -> T:
    """The cached plan for ``key`` (``key[0]`` names the kernel), made if missing.

    ``make`` runs under the cache lock (planning is serialised anyway); an entry that
    ``fits`` rejects is replaced.  Each kernel keeps its :data:`PLAN_LIMIT` most recent.
    """
    with _lock:
        value = _plans.get(key)
        if value is None or (fits is not None and not fits(value)):
            value = make()
            _put(key, value)
        else:
            _plans.move_to_end(key)
        return cast(T, value)


def forget_plans() -> None:
    """Drop every cached plan (they are rebuilt on demand)."""
    with _lock:
        _plans.clear()


def _put(key: tuple[Hashable, ...], value: object) -> None:
    _plans[key] = value
    _plans.move_to_end(key)
    same = [k for k in _plans if cast(tuple, k)[0] == key[0]]
    for old in same[:-PLAN_LIMIT]:
        del _plans[old]


def _after_fork_in_child() -> None:
    # Threads do not survive fork(): drop the pool and every lock a parent thread may
    # have held; plans are rebuilt on demand.
    global _executor, _lock
    _executor = None
    _lock = threading.Lock()
    _plans.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
