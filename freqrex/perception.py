"""A perceptual proxy: would a listener notice the change from ``x`` to ``x'``?

Two numbers, both computed from the waveforms alone:

* **Segmental SNR**: the clip cut into ``SEGMENT_S`` (20 ms) frames; per frame
  ``10 log10(|x|^2 / |x - x'|^2)``, clamped to ``SEGMENT_CLAMP_DB`` ([-10, 35] dB, so that
  a silent or untouched frame does not dominate), averaged over the frames that hold
  signal (energy at least ``SILENT_DB`` below the loudest frame's).
* **Masking check**: an STFT of about 32 ms Hann frames (half overlap, all inside the
  clip); per frame and
  critical band (Bark, Zwicker's formula, one band per Bark) the perturbation's power
  ``|X' - X|^2`` is compared with a masking threshold, the clip's own power in that band
  and frame lowered by ``offset_db`` (and never below the loudest band-frame's power
  lowered by ``QUIET_DB``, a stand-in for the threshold in quiet: without it a band of
  exact silence would call any rounding error audible). Reported: the worst
  perturbation-to-mask ratio in dB, and the share of band-frames above their mask;
  ``inaudible`` means the worst ratio is at most 0 dB.

Limits: this is a proxy, not a listening test. Masking here stays within one band and one
frame (no spread to neighbouring bands, no forward or backward masking in time), the offset
is one number for tonal and noisy maskers alike (real offsets run from about 5 dB, noise
masking a tone, to 15-25 dB, a tone masking noise), the playback level is unknown (hence the
relative threshold in quiet), and the clip's own power is taken as the masker even where the
perturbation removes it. A positive verdict is evidence, not proof, of inaudibility.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SEGMENT_S = 0.02                 # segmental SNR frame length
SEGMENT_CLAMP_DB = (-10.0, 35.0)  # per-frame clamp of the segmental SNR
SILENT_DB = 60.0                 # frames this far below the loudest are left out
MASK_FRAME_S = 0.032             # masking STFT frame length (rounded to a power of two)
QUIET_DB = 90.0                  # threshold in quiet, below the loudest band-frame

__all__ = ["Judge", "Perception", "bark", "segmental_snr"]


@dataclass(frozen=True)
class Perception:
    """What the proxy says of one change.

    Attributes
    ----------
    seg_snr_db : float
        Segmental SNR in dB (nan for a silent clip).
    mask_ratio_db : float
        Worst perturbation-to-mask ratio over band-frames, dB (-inf: nothing changed).
    above_mask : float
        Share of band-frames whose perturbation is above their mask.
    """

    seg_snr_db: float
    mask_ratio_db: float
    above_mask: float

    @property
    def inaudible(self) -> bool:
        """The worst perturbation-to-mask ratio is at most 0 dB."""
        return bool(self.mask_ratio_db <= 0.0)


def bark(hz: np.ndarray) -> np.ndarray:
    """Critical-band rate in Bark (Zwicker & Terhardt 1980)."""
    f = np.asarray(hz, dtype=np.float64)
    return 13.0 * np.arctan(0.00076 * f) + 3.5 * np.arctan((f / 7500.0) ** 2)


def segmental_snr(x: np.ndarray, changed: np.ndarray, sample_rate: int) -> float:
    """Mean per-frame SNR in dB over the frames with signal, each clamped (see the module)."""
    frame = max(1, round(SEGMENT_S * sample_rate))
    signal, noise = (_frame_energy(v, frame) for v in (x, np.asarray(x, np.float64) - changed))
    keep = signal > 0
    if not keep.any():
        return math.nan
    keep &= signal >= signal.max() * 10 ** (-SILENT_DB / 10)
    with np.errstate(divide="ignore"):
        snr = 10 * np.log10(signal[keep] / noise[keep])
    return float(np.mean(np.clip(snr, *SEGMENT_CLAMP_DB)))


class Judge:
    """The proxy for one clip: its frames and band powers computed once, then applied to
    each changed version (:meth:`__call__`).

    Parameters
    ----------
    x : np.ndarray
        The original waveform.
    sample_rate : int
        Its rate in Hz.
    offset_db : float
        How far below the clip's own band power the masking threshold lies.
    """

    def __init__(self, x: np.ndarray, sample_rate: int, offset_db: float = 12.0) -> None:
        self.x = np.asarray(x, dtype=np.float64)
        self.sample_rate = int(sample_rate)
        self.offset_db = float(offset_db)
        self.n_fft = min(1 << max(4, round(math.log2(MASK_FRAME_S * sample_rate))),
                         1 << max(4, int(math.log2(max(self.x.size, 16)))))
        freqs = np.fft.rfftfreq(self.n_fft, 1.0 / self.sample_rate)
        self.bands = np.floor(bark(freqs)).astype(np.int64)
        power = self._band_power(self.x)
        floor = power.max() * 10 ** (-QUIET_DB / 10) if power.size else 0.0
        self.mask = np.maximum(power * 10 ** (-self.offset_db / 10), floor)

    def __call__(self, changed: np.ndarray) -> Perception:
        """The proxy's verdict on ``changed`` (same length as the clip)."""
        diff = np.asarray(changed, dtype=np.float64) - self.x
        power = self._band_power(diff)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(power > 0, power / self.mask, 0.0)
        worst = float(ratio.max()) if ratio.size else 0.0
        return Perception(
            seg_snr_db=segmental_snr(self.x, np.asarray(changed, np.float64), self.sample_rate),
            mask_ratio_db=10 * math.log10(worst) if worst > 0 else -math.inf,
            above_mask=float(np.mean(ratio > 1.0)) if ratio.size else 0.0)

    def _band_power(self, v: np.ndarray) -> np.ndarray:
        """Power per Bark band and STFT frame, ``[bands, frames]``.

        Frames lie wholly inside the clip (a frame cut by the clip's edge would add the
        edge's own splatter to every band); one more frame ends at the last sample.
        """
        from scipy.signal import stft

        def frames(part: np.ndarray) -> np.ndarray:
            return stft(part, fs=self.sample_rate, window="hann", nperseg=self.n_fft,
                        noverlap=self.n_fft // 2, boundary=None, padded=False)[2]

        p = np.abs(np.concatenate([frames(v), frames(v[-self.n_fft:])], axis=1)) ** 2
        out = np.zeros((int(self.bands.max()) + 1, p.shape[1]))
        np.add.at(out, self.bands, p)
        return out


def _frame_energy(v: np.ndarray, frame: int) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    frames = -(-v.size // frame)
    padded = np.zeros(frames * frame)
    padded[:v.size] = v
    return np.sum(padded.reshape(frames, frame) ** 2, axis=1)
