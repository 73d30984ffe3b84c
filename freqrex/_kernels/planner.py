"""FFTW plans whose results do not depend on what FFTW has seen before.

Every plan here is FFTW_ESTIMATE, made against an empty wisdom. FFTW_MEASURE picks an
algorithm by timing it, and another algorithm rounds differently (~2e-7 relative on most
samples of a row, at every length tried), so the bits of a row, and of an explanation,
would depend on the machine's load at planning time. FFTW_ESTIMATE alone is not enough:
it takes any MEASURE plan of the same problem that the process's wisdom holds (the
user's own pyFFTW code may have made one), so the wisdom is set aside while a plan is
made and given back after. FFTW_MEASURE's ~1.2x per row was within the pipeline's
run-to-run noise, not worth the rounding that would change with it.

Setting the wisdom aside costs ~4 ms a plan (exporting and importing it, planning from
nothing) instead of ~0.05 ms; plans are kept (one per length and worker, one per batch
size and worker for the STFT), so a process pays it a few dozen times at most: the first
STFT explanation of a 4 s clip makes 34 plans, 0.15 s of its 11.8 s (Numba compiling).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import pyfftw

__all__ = ["estimate_plan"]

_lock = threading.Lock()


def estimate_plan(source: Any, target: Any, **kwargs: Any) -> pyfftw.FFTW:
    """``pyfftw.FFTW(source, target, flags=(FFTW_ESTIMATE, *flags), **kwargs)``, planned
    as in a fresh process: the same algorithm, hence the same bits, whatever wisdom the
    process holds."""
    flags = ("FFTW_ESTIMATE", *kwargs.pop("flags", ()))
    with _lock:   # two planners interleaving would hand each other's wisdom back early
        held = pyfftw.export_wisdom()
        pyfftw.forget_wisdom()
        try:
            return pyfftw.FFTW(source, target, flags=flags, **kwargs)
        finally:
            pyfftw.forget_wisdom()
            pyfftw.import_wisdom(held)


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()   # a parent thread may have held it: fork keeps no threads


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
