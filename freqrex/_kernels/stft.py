"""STFT analysis and batched inverse STFT of masked coefficient sets.

Convention: periodic Hann window, ``n_fft // 2`` zeros padded on both sides (frames are
centred on samples ``t * hop``), ``T = n // hop + 1`` frames, coefficients ``[F, T]`` with
``F = n_fft // 2 + 1``. The inverse is the weighted overlap-add with window-sum-square
normalisation, exact (to rounding) for ``hop <= n_fft / 2``. Both directions are linear,
so the inverse of a masked coefficient set is the sum of the inverses of its parts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["istft_boxes", "istft_prefix", "istft_sets", "n_frames", "stft", "window"]


def window(n_fft: int) -> np.ndarray:
    """Periodic Hann window of length ``n_fft`` (float64)."""
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)


def n_frames(n: int, hop: int) -> int:
    return n // hop + 1


def _padded_length(n: int, n_fft: int, hop: int) -> int:
    return (n_frames(n, hop) - 1) * hop + n_fft


def stft(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """STFT of a mono waveform: complex128 ``[n_fft // 2 + 1, n // hop + 1]``."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    pad = n_fft // 2
    padded = np.zeros(_padded_length(n, n_fft, hop))
    padded[pad:pad + n] = x
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    return np.fft.rfft(frames * window(n_fft), axis=1).T.copy()


def _wss(n: int, n_fft: int, hop: int) -> np.ndarray:
    """Window-sum-square over the unpadded signal: the overlap-add normaliser."""
    w2 = window(n_fft) ** 2
    total = np.zeros(_padded_length(n, n_fft, hop))
    for t in range(n_frames(n, hop)):
        total[t * hop:t * hop + n_fft] += w2
    pad = n_fft // 2
    return total[pad:pad + n]


def _istft_batch(coefficients: np.ndarray, n_fft: int, hop: int, n: int) -> np.ndarray:
    """Inverse STFT of a batch ``[P, F, T]`` -> float32 ``[P, n]``."""
    p, _, t = coefficients.shape
    frames = np.fft.irfft(coefficients, n_fft, axis=1) * window(n_fft)[None, :, None]
    out = np.zeros((p, _padded_length(n, n_fft, hop)))
    for i in range(t):
        out[:, i * hop:i * hop + n_fft] += frames[:, :, i]
    pad = n_fft // 2
    return (out[:, pad:pad + n] / _wss(n, n_fft, hop)).astype(np.float32)


def istft_sets(coefficients: np.ndarray, sets: Sequence[np.ndarray], n_fft: int, hop: int,
               n: int) -> np.ndarray:
    """Row ``p``: the inverse STFT of the coefficients at flat indices ``sets[p]``."""
    masked = np.zeros((len(sets),) + coefficients.shape, dtype=np.complex128)
    flat = masked.reshape(len(sets), -1)
    source = coefficients.ravel()
    for row, idx in enumerate(sets):
        flat[row, idx] = source[idx]
    return _istft_batch(masked, n_fft, hop, n)


def istft_boxes(coefficients: np.ndarray, bounds: np.ndarray, n_fft: int, hop: int,
                n: int) -> np.ndarray:
    """Row ``p``: the inverse STFT of the rectangle ``bounds[p] = (f0, f1, t0, t1)``."""
    masked = np.zeros((len(bounds),) + coefficients.shape, dtype=np.complex128)
    for row, (f0, f1, t0, t1) in enumerate(bounds):
        masked[row, f0:f1, t0:t1] = coefficients[f0:f1, t0:t1]
    return _istft_batch(masked, n_fft, hop, n)


def istft_prefix(coefficients: np.ndarray, ranking: np.ndarray, ks: np.ndarray, n_fft: int,
                 hop: int, n: int) -> np.ndarray:
    """Row ``i``: the inverse STFT of the first ``ks[i]`` coefficients of ``ranking``."""
    return istft_sets(coefficients, [ranking[:k] for k in ks], n_fft, hop, n)
