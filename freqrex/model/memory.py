"""The memory budget of model calls: the default budget, and the peak a call really reached.

A model call's memory is its input batch plus what the runtime allocates for the
activations, and both grow with the clip length times the rows of the call. freqrex measures
the activations of the first call (the high-water mark of the process's resident memory
while it runs, above what was resident before) and sizes every later call from it, so that
model + input stay within ``max_memory`` whatever the clip length.

Resident memory is read from ``/proc/self/statm`` (Linux), sampled by a helper thread
while the call runs (ONNX Runtime and torch release the GIL), and from
``resource.getrusage``'s peak when the call raised it; elsewhere only the latter. Nothing
here resets the kernel's high-water mark (``/proc/self/clear_refs``), which would hide an
earlier peak from whoever measures the process from outside.
"""

from __future__ import annotations

import os
import sys
import threading
from types import TracebackType

__all__ = ["DEFAULT_CAP", "PeakMeter", "default_budget", "device_memory", "rss_bytes"]

DEFAULT_CAP = 2 * 1024**3  # the default budget is min(2 GiB, RAM_SHARE of the RAM)
RAM_SHARE = 0.25
_SAMPLE_SECONDS = 0.0005


def default_budget() -> int:
    """min(2 GiB, 25% of the physical RAM); 2 GiB where the RAM cannot be read.

    2 GiB keeps a 10-minute clip of a small model under 3 GiB in all while still
    batching a 30 s clip 32 waveforms at a time.
    """
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return DEFAULT_CAP
    return int(min(DEFAULT_CAP, RAM_SHARE * ram)) if ram > 0 else DEFAULT_CAP


def rss_bytes() -> int | None:
    """Resident memory of this process now, in bytes (None without ``/proc``)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _maxrss_bytes() -> int:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024  # bytes on macOS


class PeakMeter:
    """``with PeakMeter() as meter: work()``; then ``meter.peak``: the most bytes the process
    held above what it held on entry (a lower bound where sampling missed a short spike;
    None when nothing could be measured).
    """

    def __init__(self) -> None:
        self.peak: int | None = None
        self._start: int | None = None
        self._high = 0
        self._maxrss_before = 0
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakMeter:
        self._start = rss_bytes()
        self._maxrss_before = _maxrss_bytes()
        if self._start is not None:
            self._high = self._start
            self._thread = threading.Thread(target=self._sample, name="freqrex-rss",
                                            daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._done.wait(_SAMPLE_SECONDS):
            now = rss_bytes()
            if now is not None and now > self._high:
                self._high = now

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        end = rss_bytes()
        high = max(self._high, end or 0)
        maxrss = _maxrss_bytes()
        if maxrss > self._maxrss_before:
            high = max(high, maxrss)  # the call itself set a new peak for the process
        if self._start is not None:
            self.peak = max(0, high - self._start)
        elif maxrss > self._maxrss_before:
            # without /proc: only a new process peak says anything, relative to the old one
            self.peak = maxrss - self._maxrss_before


def device_memory() -> tuple[int, int] | None:
    """``(free, total)`` bytes of the current CUDA device, through the CUDA runtime that
    ONNX Runtime's CUDA provider loads; None where it cannot be asked."""
    import ctypes

    for name in ("libcudart.so", "libcudart.so.12", "libcudart.so.11.0", "cudart64_12.dll"):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        free, total = ctypes.c_size_t(), ctypes.c_size_t()
        if lib.cudaMemGetInfo(ctypes.byref(free), ctypes.byref(total)) == 0:
            return int(free.value), int(total.value)
        return None
    return None

