"""Any Python function as a model, and :func:`as_model`, which wraps whatever it is given."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from freqrex.errors import InputError
from freqrex.model.base import Model
from freqrex.model.onnx import OnnxModel, is_onnx

__all__ = ["CallableModel", "as_model"]

_ONNX_OPTIONS = ("sample_rate", "labels", "activation", "batch_size", "providers", "threads",
                 "sessions", "max_memory")
_CALLABLE_OPTIONS = ("sample_rate", "labels", "activation", "batch_size", "input_length",
                     "max_memory")


class CallableModel(Model):
    """A Python function used as a model.

    Parameters
    ----------
    fn : callable
        Maps float32 numpy ``[B, N]`` to an array-like ``[B, C]`` (numpy, lists, or a torch
        tensor, converted by duck typing without importing torch).
    sample_rate, labels, activation, batch_size
        As for :class:`~freqrex.model.OnnxModel`.
    input_length : int, optional
        Fixed number of samples the function takes.
    max_memory : int, optional
        Budget in bytes of one call (see :meth:`Model.waveforms_per_batch`).

    Examples
    --------
    >>> model = CallableModel(lambda x: np.abs(x[:, :2]), sample_rate=16000)
    >>> model.scores(np.ones((1, 4))).tolist()
    [[1.0, 1.0]]
    """

    def __init__(
        self,
        fn: Callable[[np.ndarray], Any],
        *,
        sample_rate: int | None = None,
        labels: Sequence[str] | str | os.PathLike | None = None,
        activation: str = "auto",
        batch_size: int = 32,
        input_length: int | None = None,
        max_memory: int | None = None,
    ) -> None:
        if not callable(fn):
            raise InputError(f"a model function must be callable, got {type(fn).__name__}")
        super().__init__(
            sample_rate=sample_rate,
            labels=labels,
            activation=activation,
            batch_size=batch_size,
            input_length=input_length,
            provider="python",
            max_memory=max_memory,
        )
        self.fn = fn

    def _forward(self, chunk: np.ndarray) -> Any:
        out = self.fn(chunk)
        if hasattr(out, "detach"):
            out = out.detach()
        if hasattr(out, "cpu"):
            out = out.cpu()
        if hasattr(out, "numpy") and not isinstance(out, np.ndarray):
            out = out.numpy()
        return out


def as_model(obj: Any, **kwargs: Any) -> Model:
    """Wrap anything freqrex can evaluate as a :class:`~freqrex.model.Model`.

    Parameters
    ----------
    obj : Model, str, path-like, bytes, onnx.ModelProto, onnxruntime.InferenceSession or callable
        A :class:`Model` is returned unchanged (``kwargs`` are ignored: it carries its own
        settings); paths, serialized models and sessions become
        :class:`~freqrex.model.OnnxModel`; other callables become :class:`CallableModel`.
    **kwargs
        Constructor options. Options the chosen class does not take are dropped when None
        (``providers`` is always dropped for a callable) and rejected otherwise.

    Raises
    ------
    InputError
        For anything else.

    Examples
    --------
    >>> as_model(lambda x: x[:, :3], sample_rate=16000).provider
    'python'
    """
    if isinstance(obj, Model):
        return obj
    if is_onnx(obj):
        return OnnxModel(obj, **_options(kwargs, _ONNX_OPTIONS, "an ONNX model"))
    if callable(obj):
        kwargs = {k: v for k, v in kwargs.items() if k != "providers"}
        return CallableModel(obj, **_options(kwargs, _CALLABLE_OPTIONS, "a Python callable"))
    raise InputError(
        f"cannot use a {type(obj).__name__} as a model; give an .onnx path, an onnxruntime "
        "InferenceSession or a function from waveforms [B, N] to scores [B, C]"
    )


def _options(kwargs: dict[str, Any], allowed: tuple[str, ...], what: str) -> dict[str, Any]:
    out = {}
    for key, value in kwargs.items():
        if key in allowed:
            out[key] = value
        elif value is not None:
            raise InputError(f"option {key!r} does not apply to {what}")
    return out
