"""The predicates of METHOD.md "Explanations", bound to one clip: the one place they live.

- **sufficient**: the target is the top class on the kept features and
  ``p_t >= confidence_filter * p0``;
- **necessary**: sufficient, and removing the features makes another class the top class
  (``necessary_rule="class"``, the default); the weaker ``"confidence"`` rule only asks
  the removal to push ``p_t`` below ``confidence_filter * p0``;
- **complete**: the target is the top class and ``|p_t - p0| <= complete_tolerance``,
  both ways: a higher confidence is as incomplete as a lower one.

"The top class" is strict: a class tied with the target at the maximum beats it, so a
model whose scores are all tied never makes any set pass (and the run says why).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from freqrex.config import NECESSARY_RULES

KINDS = ("sufficient", "necessary", "complete")
"""The three explanations, in the order they are searched and reported."""


def on_top(probabilities: np.ndarray, target: int) -> np.ndarray:
    """Per row: is ``target`` strictly above every other class?"""
    p = np.asarray(probabilities, dtype=np.float64)
    return p[:, target] > best_other(p, target)


def best_other(probabilities: np.ndarray, target: int) -> np.ndarray:
    """Per row: the highest probability of a class other than ``target`` (-inf: none)."""
    others = np.array(probabilities, dtype=np.float64)
    others[:, target] = -np.inf
    return others.max(axis=1)


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
        ``p_target(x)`` of the unmodified clip (``p0``).
    confidence_filter : float
        A mutant passes when its target probability is at least this share of ``p0``.
    complete_tolerance : float
        How far from ``p0`` (either way) a complete set's confidence may be.
    necessary_rule : str
        ``"class"``: removing a necessary set changes the top class; ``"confidence"``:
        it only needs to fail the sufficiency test.

    Examples
    --------
    >>> c = Criterion(lambda x: x, target=0, original_confidence=0.8, confidence_filter=0.5)
    >>> c.passes(np.array([[0.5, 0.3, 0.2]])).tolist()
    [True]
    """

    model: Callable[[np.ndarray], np.ndarray]
    target: int
    original_confidence: float
    confidence_filter: float
    complete_tolerance: float = 0.02
    necessary_rule: str = "class"

    def __post_init__(self) -> None:
        if self.necessary_rule not in NECESSARY_RULES:
            raise ValueError(f"necessary_rule must be one of {NECESSARY_RULES}")

    @property
    def threshold(self) -> float:
        return self.confidence_filter * self.original_confidence

    def probabilities(self, waveforms: np.ndarray) -> np.ndarray:
        return np.asarray(self.model(waveforms), dtype=np.float64)

    def passes(self, probabilities: np.ndarray) -> np.ndarray:
        """Sufficiency per row of ``probabilities``: target on top, confidence kept."""
        p = np.asarray(probabilities, dtype=np.float64)
        return on_top(p, self.target) & (p[:, self.target] >= self.threshold)

    def complete(self, probabilities: np.ndarray) -> np.ndarray:
        """Completeness per row: target on top, confidence within the tolerance of ``p0``."""
        p = np.asarray(probabilities, dtype=np.float64)
        close = np.abs(p[:, self.target] - self.original_confidence) <= self.complete_tolerance
        return on_top(p, self.target) & close

    def removal_breaks(self, removed: np.ndarray) -> np.ndarray:
        """Per row of the model's output on the clip *without* a set: does it break the
        decision as ``necessary_rule`` asks?"""
        p = np.asarray(removed, dtype=np.float64)
        if self.necessary_rule == "class":
            return ~on_top(p, self.target)
        return ~self.passes(p)

    def kept_margins(self, kept: np.ndarray) -> np.ndarray:
        """How far each row of the model's output on a kept set is inside the sufficiency
        test, ``[B, 2]``: ``p_t`` above the best other class, and above the threshold
        (both >= 0 where it passes; the first > 0)."""
        p = np.asarray(kept, dtype=np.float64)
        return np.stack([p[:, self.target] - best_other(p, self.target),
                         p[:, self.target] - self.threshold], axis=1)

    def removal_margin(self, removed: np.ndarray) -> np.ndarray:
        """How far each row of the model's output on the clip without a set breaks the
        decision as ``necessary_rule`` asks, ``[B]``: the best other class above ``p_t``
        (a tie, 0, already breaks it: the top class is strict) and, with the
        ``"confidence"`` rule, ``p_t`` below the threshold, whichever is larger."""
        q = np.asarray(removed, dtype=np.float64)
        margin = best_other(q, self.target) - q[:, self.target]
        if self.necessary_rule == "class":
            return margin
        return np.maximum(margin, self.threshold - q[:, self.target])

    def holds(self, kind: str, kept: np.ndarray, removed: np.ndarray | None = None) -> np.ndarray:
        """The predicate of ``kind`` per row, from the model's output on the kept features
        (and, for ``"necessary"``, on the clip without them)."""
        if kind == "sufficient":
            return self.passes(kept)
        if kind == "complete":
            return self.complete(kept)
        if kind == "necessary":
            if removed is None:
                raise ValueError("the necessary predicate needs the removed probabilities")
            return self.passes(kept) & self.removal_breaks(removed)
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")

    def test(self, waveforms: np.ndarray) -> np.ndarray:
        """Run the model on ``waveforms`` and say which pass."""
        return self.passes(self.probabilities(waveforms))

    def describe(self) -> dict:
        """The rules as recorded in a result's JSON."""
        return {"confidence_filter": self.confidence_filter,
                "threshold": self.threshold, "original_confidence": self.original_confidence,
                "complete_tolerance": self.complete_tolerance,
                "necessary_rule": self.necessary_rule, "top_class": "strict"}
