"""Shapes of ONNX inputs and outputs: which waveform layouts freqrex feeds, and how to show them."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["arg_info", "channels_last", "fixed", "shape_text", "supported_input_shape"]


def fixed(dim: Any) -> int | None:
    """A dimension's size when fixed; None for a named or unknown (dynamic) dimension."""
    if isinstance(dim, (int, np.integer)) and dim > 0:
        return int(dim)
    return None


def supported_input_shape(shape: list[Any]) -> bool:
    if len(shape) in (1, 2):
        return True
    if len(shape) == 3:
        # one channel first, or last; a dynamic channel dimension is fed 1
        return fixed(shape[1]) in (None, 1) or fixed(shape[2]) == 1
    return False


def channels_last(shape: list[Any]) -> bool:
    """``[B, N, 1]``: a fixed 1 last, and the middle not a fixed 1 (``[B, 1, N]`` wins, and
    ``[B, ?, ?]`` stays ``[B, 1, N]`` as before)."""
    return len(shape) == 3 and fixed(shape[2]) == 1 and fixed(shape[1]) != 1


def shape_text(shape: Any) -> str:
    if shape is None:
        return "[unknown]"
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def arg_info(arg: Any) -> dict[str, Any]:
    dtype = arg.type
    if dtype.startswith("tensor(") and dtype.endswith(")"):
        dtype = dtype[len("tensor(") : -1]
        dtype = {"float": "float32", "double": "float64"}.get(dtype, dtype)
    return {"name": arg.name, "shape": list(arg.shape or []), "dtype": dtype}
