"""freqrex: causal frequency-space explanations and stress tests for audio classifiers.

Given a classifier (an ONNX file or any Python callable) and a clip, freqrex finds which
rfft bins are causally sufficient, necessary and complete for the model's decision.

>>> import freqrex
>>> result = freqrex.explain("model.onnx", "clip.wav", seed=0)
>>> result.sufficient.size, result.necessary.hz_ranges
"""

from freqrex.config import Config
from freqrex.errors import FreqrexError, FreqrexWarning
from freqrex.evaluate import evaluate
from freqrex.explanation import Explanation, Prediction, Result, RunStats
from freqrex.manipulation import AttackResult, AttackStep, attack
from freqrex.model import CallableModel, Model, OnnxModel, as_model
from freqrex.pipeline import explain

__version__ = "0.1.0"

__all__ = [
    "AttackResult",
    "AttackStep",
    "CallableModel",
    "Config",
    "Explanation",
    "FreqrexError",
    "FreqrexWarning",
    "Model",
    "OnnxModel",
    "Prediction",
    "Result",
    "RunStats",
    "as_model",
    "attack",
    "evaluate",
    "explain",
]
