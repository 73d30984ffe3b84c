"""The model adapter: any audio classifier as a black box from waveforms to class probabilities.

- :mod:`~freqrex.model.base`: :class:`Model` (batching, call statistics, activation, labels)
- :mod:`~freqrex.model.onnx`: :class:`OnnxModel`, :func:`load_model`, :func:`providers_for`
- :mod:`~freqrex.model.callable`: :class:`CallableModel`, :func:`as_model`
- :mod:`~freqrex.model.labels`: :func:`load_labels` and labels or rates from metadata

Importing this package does not import onnxruntime; opening an ONNX model does. Nor torch:
``TorchModel`` (:mod:`~freqrex.model.torch`) is imported when first asked for.
"""

from typing import Any

from freqrex.config import ACTIVATIONS
from freqrex.model.base import (
    PROB_TOLERANCE,
    Model,
    ModelStats,
    apply_activation,
    sigmoid,
    softmax,
)
from freqrex.model.callable import CallableModel, as_model
from freqrex.model.labels import load_labels
from freqrex.model.onnx import OnnxModel, load_model, providers_for


def __getattr__(name: str) -> Any:
    # TorchModel imports torch: only when it is asked for.
    if name == "TorchModel":
        from freqrex.model.torch import TorchModel

        return TorchModel
    raise AttributeError(f"module 'freqrex.model' has no attribute {name!r}")


__all__ = [
    "ACTIVATIONS",
    "PROB_TOLERANCE",
    "CallableModel",
    "Model",
    "ModelStats",
    "OnnxModel",
    "TorchModel",
    "apply_activation",
    "as_model",
    "load_labels",
    "load_model",
    "providers_for",
    "sigmoid",
    "softmax",
]
