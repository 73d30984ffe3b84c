"""Performance kernels: batched masked inverse FFTs and mutant synthesis.

Plain arrays in, plain arrays out; nothing here imports the rest of freqrex.
"""

from .fft import (
    bin_set_parts,
    interval_parts,
    irfft_batch,
    load_wisdom,
    prefix_parts,
    prepare_plans,
    rfft,
    save_wisdom,
    wisdom_path,
)
from .synth import apply_mask, combine, combine_blas, combine_numba, mask_from_bins

__all__ = [
    "apply_mask",
    "bin_set_parts",
    "combine",
    "combine_blas",
    "combine_numba",
    "interval_parts",
    "irfft_batch",
    "load_wisdom",
    "mask_from_bins",
    "prefix_parts",
    "prepare_plans",
    "rfft",
    "save_wisdom",
    "wisdom_path",
]
