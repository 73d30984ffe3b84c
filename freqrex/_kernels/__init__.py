"""Performance kernels: batched masked inverse FFTs, inverse STFTs and mutant synthesis.

Plain arrays in, plain arrays out; nothing here imports the rest of freqrex.

    pool.py     the thread setting (set_threads / threads), one worker pool, one plan cache
    planner.py  FFTW plans made the same way whatever FFTW planned before
    fft.py      batched masked inverse FFTs, narrow-band synthesis (rows.py: one row's plan)
    stft.py     forward STFT, inverse STFT of the frames a part touches (frames.py: its
                per-worker buffers and Numba kernels)
    synth.py    Numba: mutants as sums of part signals, bin-set masks, ranks
    keys.py     Numba: running sums of the mutants' names

Importing this package imports numpy only; pyfftw and numba are loaded by the first use
of a name that needs them (this module's ``__getattr__``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .pool import set_threads, threads

if TYPE_CHECKING:
    from .fft import bin_set_parts, interval_parts, irfft_batch, prefix_parts, rfft
    from .keys import word_sums
    from .synth import apply_mask, combine, combine_blas, combine_numba, mask_from_bins

_HOME = {
    "apply_mask": "synth",
    "bin_set_parts": "fft",
    "combine": "synth",
    "combine_blas": "synth",
    "combine_numba": "synth",
    "interval_parts": "fft",
    "irfft_batch": "fft",
    "mask_from_bins": "synth",
    "prefix_parts": "fft",
    "rfft": "fft",
    "word_sums": "keys",
}

__all__ = [
    "apply_mask",
    "bin_set_parts",
    "combine",
    "combine_blas",
    "combine_numba",
    "interval_parts",
    "irfft_batch",
    "mask_from_bins",
    "prefix_parts",
    "rfft",
    "set_threads",
    "threads",
    "word_sums",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOME})
