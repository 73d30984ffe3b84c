"""How raw model outputs become probabilities: softmax, sigmoid, or kept as they are."""

from __future__ import annotations

import numpy as np

from freqrex.errors import InputError

__all__ = ["apply_activation", "sigmoid", "softmax"]


def apply_activation(raw: np.ndarray, activation: str) -> np.ndarray:
    """Turn raw scores ``[B, C]`` into probabilities with a resolved activation.

    Parameters
    ----------
    raw : numpy.ndarray
        Raw scores ``[B, C]``.
    activation : str
        ``"softmax"``, ``"sigmoid"`` or ``"none"`` (``"auto"`` must be resolved first, see
        :meth:`Model.resolve_activation`).

    Examples
    --------
    >>> apply_activation(np.array([[0.0, 0.0]]), "softmax")
    array([[0.5, 0.5]])
    """
    raw = np.asarray(raw, dtype=np.float64)
    if raw.size == 0:
        return raw.copy()  # an empty batch needs no activation (and cannot resolve one)
    if activation == "softmax":
        return softmax(raw)
    if activation == "sigmoid":
        return sigmoid(raw)
    if activation == "none":
        return raw.copy()
    raise InputError(f"activation {activation!r} is not resolved; score a batch first")


def softmax(raw: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for large logits (the row maximum is subtracted first).

    Examples
    --------
    >>> softmax(np.array([[1000.0, 1000.0]]))
    array([[0.5, 0.5]])
    """
    shifted = raw - raw.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid(raw: np.ndarray) -> np.ndarray:
    """Element-wise logistic function, without overflow for large negative scores.

    Examples
    --------
    >>> sigmoid(np.array([0.0]))
    array([0.5])
    """
    return np.exp(-np.logaddexp(0.0, -raw))
