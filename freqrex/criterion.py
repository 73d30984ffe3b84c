"""When a mutant passes: the model still picks the target, with enough confidence."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

KINDS = ("sufficient", "necessary", "complete")
"""The three explanations, in the order they are searched and reported."""


@dataclass(frozen=True)
class Criterion:
    """The passing test of METHOD.md, bound to one clip.

    Parameters
    ----------
    model : callable
        Float32 waveforms ``[B, n]`` to class probabilities ``[B, C]``.
    target : int
        The class being explained.
    original_confidence : float
        ``p_target(x)`` of the unmodified clip.
    confidence_filter : float
        A mutant passes when its target probability is at least this share of the original's.
    """

    model: Callable[[np.ndarray], np.ndarray]
    target: int
    original_confidence: float
    confidence_filter: float

    @property
    def threshold(self) -> float:
        return self.confidence_filter * self.original_confidence

    def probabilities(self, waveforms: np.ndarray) -> np.ndarray:
        return np.asarray(self.model(waveforms), dtype=np.float64)

    def passes(self, probabilities: np.ndarray) -> np.ndarray:
        """Boolean per row of ``probabilities``."""
        top = np.argmax(probabilities, axis=1)
        return (top == self.target) & (probabilities[:, self.target] >= self.threshold)

    def test(self, waveforms: np.ndarray) -> np.ndarray:
        """Run the model on ``waveforms`` and say which pass."""
        return self.passes(self.probabilities(waveforms))
