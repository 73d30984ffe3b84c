"""freqrex: causal frequency-space explanations and stress tests for audio classifiers.

Given a classifier (an ONNX file or any Python callable) and a clip, freqrex finds which
rfft bins (or STFT cells) are causally sufficient, necessary and complete for the
model's decision, and how few of them must change to flip it.

>>> import freqrex
>>> result = freqrex.explain("model.onnx", "clip.wav", seed=0)
>>> result.sufficient.size, result.necessary.hz_ranges

The names below are imported on first use (as librosa does), so ``import freqrex``
stays cheap: NumPy, Numba, pyFFTW, ONNX Runtime, Dask and matplotlib load only when
the code that needs them runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

# public name -> the module that defines it
_EXPORTS = {
    "AttackConfig": "freqrex.config",
    "Config": "freqrex.config",
    "ModelConfig": "freqrex.config",
    "FreqrexError": "freqrex.errors",
    "FreqrexWarning": "freqrex.errors",
    "InputError": "freqrex.errors",
    "ModelError": "freqrex.errors",
    "OutputError": "freqrex.errors",
    "Explanation": "freqrex.explanation",
    "Prediction": "freqrex.explanation",
    "Result": "freqrex.explanation",
    "RunStats": "freqrex.explanation",
    "AttackResult": "freqrex.manipulation",
    "AttackStep": "freqrex.manipulation",
    "attack": "freqrex.manipulation",
    "CallableModel": "freqrex.model",
    "Model": "freqrex.model",
    "OnnxModel": "freqrex.model",
    "as_model": "freqrex.model",
    "explain": "freqrex.pipeline",
    "Explainer": "freqrex.engine",
    "explain_many": "freqrex.pipeline",
    "TorchModel": "freqrex.model.torch",
    "compare": "freqrex.comparison",
    "Comparison": "freqrex.comparison",
    "evaluate": "freqrex.evaluation",
}

__all__ = [
    "AttackConfig", "AttackResult", "AttackStep", "CallableModel", "Config", "Explanation",
    "FreqrexError", "FreqrexWarning", "InputError", "ModelConfig", "ModelError",
    "OnnxModel", "Model", "OutputError", "Prediction", "Result", "RunStats", "as_model",
    "attack", "evaluate", "explain", "Explainer", "compare", "Comparison", "explain_many",
    "TorchModel",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'freqrex' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from freqrex.comparison import Comparison, compare
    from freqrex.config import AttackConfig, Config, ModelConfig
    from freqrex.engine import Explainer
    from freqrex.errors import (
        FreqrexError,
        FreqrexWarning,
        InputError,
        ModelError,
        OutputError,
    )
    from freqrex.evaluation import evaluate
    from freqrex.explanation import Explanation, Prediction, Result, RunStats
    from freqrex.manipulation import AttackResult, AttackStep, attack
    from freqrex.model import CallableModel, Model, OnnxModel, as_model
    from freqrex.model.torch import TorchModel
    from freqrex.pipeline import explain, explain_many
