"""Reading, checking, fitting and writing mono waveforms.

Every waveform that reaches the explainer passes through :func:`load_audio` (files) or
:func:`check_waveform` (arrays from Python), so the rest of freqrex can assume a finite,
non-empty, non-silent, C-contiguous float32 1-D array.
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from freqrex.config import positive_int
from freqrex.errors import FreqrexError, FreqrexWarning, InputError, first_line

# Below this peak a clip has no signal to explain: every mutant would look the same to the model.
SILENCE_PEAK = 1e-6

# A 2-D array with at most this many rows (or columns) along its smaller side is read as
# channels; real clips have far more samples than channels, so the two sides never get close.
MAX_CHANNELS = 8

# Sample rates freqrex accepts, from any source (a model's metadata, a file header, an
# option): telephone speech to the fastest audio interfaces. A rate outside this range is a
# corrupt header or a typo, and resampling to or from it would crop a clip to a few samples
# or ask for terabytes (a 1e12 Hz rate makes soxr raise MemoryError).
MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 768_000

__all__ = ["MAX_SAMPLE_RATE", "MIN_SAMPLE_RATE", "SILENCE_PEAK", "check_sample_rate",
           "check_waveform", "clip_info", "fit_length", "load_audio", "long_run_notice",
           "resample", "write_wav"]


def check_sample_rate(rate, name: str = "sample rate") -> int:
    """``rate`` as an int when it is a whole number of Hz in the sane range.

    ``rate`` may be an integral float (``16000.0``); ``name`` is what the error calls it.
    Raises InputError when it is not a positive whole number, or is outside
    [:data:`MIN_SAMPLE_RATE`, :data:`MAX_SAMPLE_RATE`].

    Examples
    --------
    >>> check_sample_rate(16000.0)
    16000
    """
    value = positive_int(rate, name)
    if not MIN_SAMPLE_RATE <= value <= MAX_SAMPLE_RATE:
        raise InputError(
            f"{name} {value} Hz is outside {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz; give the "
            "real rate of the audio (a corrupt file header or model metadata?)")
    return value


# Waveform samples through the model (clip length x waveforms evaluated) above which a run
# is announced as long: ~5e9 is a minute or more even for the small reference model (a 30 s
# clip with the default budget is ~2e9), and its mutants take gigabytes.
LARGE_WORK = 5e9
# Waveforms the extraction adds to the search budget, about (README's benchmarks: 600-1 800
# with a minimisation budget per set).
_EXTRACTION_WAVEFORMS = 1200


def long_run_notice(path: str | os.PathLike, sample_rate: int | None, input_length: int | None,
                    search_limit: int) -> str | None:
    """A sentence saying a run will be long, when clip length x budget exceeds
    :data:`LARGE_WORK`; None otherwise, or when the file's header cannot be read (the run
    itself then says what is wrong)."""
    try:
        frames, rate = clip_info(path)
    except FreqrexError:
        return None
    n = input_length or int(frames * (sample_rate or rate) / rate)
    waveforms = search_limit + _EXTRACTION_WAVEFORMS
    if n * waveforms <= LARGE_WORK:
        return None
    return (f"{path} is {frames / rate:.0f} s ({n} samples at the model's rate) and the "
            f"search may evaluate {waveforms} waveforms of that length (search_limit "
            f"{search_limit} plus extraction): expect a long run and gigabytes of memory; give "
            "a shorter clip or a lower search_limit. Ctrl-C stops cleanly.")


def clip_info(path: str | os.PathLike) -> tuple[int, int]:
    """Frames and sample rate of an audio file, from its header only (nothing decoded).

    Raises
    ------
    FreqrexError
        As :func:`load_audio` does for a missing, empty or unreadable file, or an absurd rate.
    """
    import soundfile as sf

    path = Path(path)
    _check_file(path)
    with _library_chatter() as chatter:
        try:
            info = sf.info(str(path))
        except Exception as exc:  # libsndfile raises several types
            raise _unreadable(path, exc, chatter()) from exc
    return int(info.frames), check_sample_rate(info.samplerate, f"{path} header sample rate")


def load_audio(path: str | os.PathLike, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Read an audio file as a mono float32 waveform.

    Parameters
    ----------
    path : str or path-like
        Any file libsndfile can read (WAV, FLAC, OGG/Vorbis, MP3, AIFF, ...).
    sample_rate : int, optional
        Resample to this rate (soxr, very high quality) when the file has another rate; a
        :class:`~freqrex.errors.FreqrexWarning` says so.

    Returns
    -------
    waveform : numpy.ndarray
        C-contiguous float32 1-D array; channels are mixed down by their mean.
    sample_rate : int
        The rate of ``waveform`` (the requested one, or the file's own).

    Raises
    ------
    FreqrexError
        When the file is missing, a directory, empty, unreadable, holds no samples, holds NaN or
        infinite samples, or is silent.
    """
    path = Path(path)
    _check_file(path)
    data, file_rate = _read(path)
    where = str(path)
    if data.size == 0:
        raise FreqrexError(f"{where} contains no audio samples; give a clip with signal")
    _check_finite(data, where)
    x = data.mean(axis=1, dtype=np.float32)
    _check_not_silent(x, where)
    if sample_rate is not None:
        sample_rate = _check_rate(sample_rate)
        if sample_rate != file_rate:
            x = resample(x, file_rate, sample_rate, name=where)
            file_rate = sample_rate
    return np.ascontiguousarray(x, dtype=np.float32), int(file_rate)


def check_waveform(x, name: str = "audio") -> np.ndarray:
    """Validate a waveform given from Python and return it as mono float32.

    Layouts accepted:

    * 1-D ``[n]``: a mono waveform.
    * 2-D ``[channels, n]`` when the first dimension is 1, or is the smaller one and at most 8
      (e.g. ``[1, n]``, ``[2, n]``, the torchaudio layout).
    * 2-D ``[n, channels]`` when the second dimension is 1, or is the smaller one and at most 8
      (e.g. ``[n, 2]``, the soundfile layout).

    Any other 2-D shape is ambiguous and rejected. Channels are mixed down by their mean.

    Parameters
    ----------
    x : array-like
        Numbers (any real dtype); torch tensors are converted by duck typing.
    name : str
        What to call the waveform in error messages.

    Returns
    -------
    numpy.ndarray
        A new C-contiguous float32 1-D array (never a view of ``x``).

    Raises
    ------
    FreqrexError
        For a non-numeric or complex array, an unsupported shape, no samples, NaN or infinite
        samples, or silence.
    """
    arr = _as_real_array(x, name)
    if arr.ndim == 2:
        arr = _mix_2d(arr, name)
    elif arr.ndim != 1:
        raise FreqrexError(
            f"{name} has shape {arr.shape}; give a 1-D waveform [n] or a 2-D [channels, n] "
            "or [n, channels] array"
        )
    if arr.size == 0:
        raise FreqrexError(f"{name} contains no samples; give a clip with signal")
    with np.errstate(over="ignore"):  # overflow becomes inf, reported just below
        out = np.array(arr, dtype=np.float32, order="C", copy=True)
    # Check after the cast: float64 values beyond the float32 range become inf here.
    _check_finite(out, name)
    _check_not_silent(out, name)
    return out


def fit_length(
    x: np.ndarray, n: int, sample_rate: int | None = None, name: str = "audio"
) -> np.ndarray:
    """Zero-pad at the end or crop to exactly ``n`` samples.

    Parameters
    ----------
    x : numpy.ndarray
        1-D waveform.
    n : int
        Wanted length in samples (a model's fixed input length).
    sample_rate : int, optional
        Used to state the lengths in seconds in the warning; samples only when omitted.
    name : str
        What to call the waveform in the warning.

    Returns
    -------
    numpy.ndarray
        ``x`` itself when it already has ``n`` samples, otherwise a new float32 array.

    Warns
    -----
    FreqrexWarning
        When the length changes, with the lengths before and after.
    """
    n = positive_int(n, "length")
    x = np.asarray(x)
    if x.ndim != 1:
        raise FreqrexError(f"{name} has shape {x.shape}; fit_length needs a 1-D waveform")
    if x.shape[0] == n:
        return x
    before = _describe_length(x.shape[0], sample_rate)
    after = _describe_length(n, sample_rate)
    if x.shape[0] > n:
        out = np.ascontiguousarray(x[:n], dtype=np.float32)
        action = f"cropped to the first {after}"
    else:
        out = np.zeros(n, dtype=np.float32)
        out[: x.shape[0]] = x
        action = f"zero-padded at the end to {after}"
    warnings.warn(
        f"{name} is {before} but the model takes {after}: {action}", FreqrexWarning, stacklevel=2
    )
    return out


def resample(x: np.ndarray, rate_in: int, rate_out: int, name: str = "audio") -> np.ndarray:
    """Resample a mono waveform with soxr (very high quality), warning that it did.

    Parameters
    ----------
    x : numpy.ndarray
        1-D waveform.
    rate_in, rate_out : int
        Its rate and the wanted rate, in Hz.
    name : str
        What to call the waveform in the warning and errors.

    Returns
    -------
    numpy.ndarray
        C-contiguous float32 1-D array; ``x`` itself when the rates are equal.

    Warns
    -----
    FreqrexWarning
        ``"<name>: resampled from X Hz to Y Hz"`` when the rates differ.
    """
    import soxr

    rate_in, rate_out = _check_rate(rate_in), _check_rate(rate_out)
    x = np.asarray(x)
    if x.ndim != 1:
        raise FreqrexError(f"{name} has shape {x.shape}; resample needs a 1-D waveform")
    if rate_in == rate_out:
        return x
    y = soxr.resample(np.ascontiguousarray(x, dtype=np.float32), rate_in, rate_out, quality="VHQ")
    if y.size == 0:
        raise FreqrexError(
            f"{name} is too short to resample from {rate_in} Hz to {rate_out} Hz; give a "
            "longer clip"
        )
    warnings.warn(
        f"{name}: resampled from {rate_in} Hz to {rate_out} Hz", FreqrexWarning, stacklevel=2
    )
    return np.ascontiguousarray(y, dtype=np.float32)


def write_wav(path: str | os.PathLike, x: np.ndarray, sample_rate: int) -> None:
    """Write a mono 32-bit float WAV file (read back bit-exactly by :func:`load_audio`).

    Parameters
    ----------
    path : str or path-like
        Destination; the format is WAV whatever the extension. The directory must exist.
    x : numpy.ndarray
        1-D waveform (or 2-D with one channel). Silence is allowed: explanations can be silent.
    sample_rate : int
        Sample rate in Hz.

    Raises
    ------
    FreqrexError
        For a multi-channel, empty or non-finite waveform, a bad rate, or a file that cannot be
        written.
    """
    import soundfile as sf

    sample_rate = _check_rate(sample_rate)
    arr = _as_real_array(x, "waveform")
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise FreqrexError(f"cannot write a waveform of shape {arr.shape} to {path}; give 1-D")
    if arr.size == 0:
        raise FreqrexError(f"cannot write an empty waveform to {path}")
    with np.errstate(over="ignore"):  # overflow becomes inf, reported just below
        out = np.ascontiguousarray(arr, dtype=np.float32)
    _check_finite(out, f"waveform for {path}")
    try:
        sf.write(str(path), out, sample_rate, format="WAV", subtype="FLOAT")
    except Exception as exc:  # libsndfile raises several types; the user needs one line
        raise FreqrexError(
            f"could not write {path} ({first_line(exc)}); check the directory exists and is "
            "writable"
        ) from exc


# -- helpers ---------------------------------------------------------------------------------


def _check_file(path: Path) -> None:
    if not path.exists():
        raise FreqrexError(f"{path} does not exist; give the path of an audio file")
    if path.is_dir():
        raise FreqrexError(f"{path} is a directory; give the path of an audio file")
    if path.stat().st_size == 0:
        raise FreqrexError(f"{path} is empty (0 bytes); give an audio file with signal")


def _read(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    with _library_chatter() as chatter:
        try:
            # the header's rate first: an absurd one is refused before anything is decoded
            check_sample_rate(sf.info(str(path)).samplerate, f"{path} header sample rate")
            data, rate = sf.read(str(path), dtype="float32", always_2d=True)
        except FreqrexError:
            raise
        except Exception as exc:  # corrupt or unsupported files raise various libsndfile errors
            raise _unreadable(path, exc, chatter()) from exc
    return data, int(rate)


def _unreadable(path: Path, exc: BaseException, chatter: str) -> FreqrexError:
    """The real reason a file that exists could not be read, in one line."""
    reason = first_line(exc)
    if "does not exist" in reason or "System error" in reason:
        # libsndfile says "does not exist" for any file whose format it cannot recognise; the
        # decoder's own note (libmpg123: "Illegal Audio-MPEG-Header ...") says more
        note = next((line.removeprefix("Note:").strip() for line in chatter.splitlines()
                     if line.strip()), "")
        reason = "not a recognised audio format" + (f": {note}" if note else "")
    return FreqrexError(
        f"{path} could not be read as audio ({reason}); give a WAV, FLAC, OGG or MP3 file")


@contextmanager
def _library_chatter() -> Iterator[Any]:
    """Capture what C libraries print on file descriptor 2 meanwhile (libmpg123's "Note: ..."
    lines on corrupt MP3s), so freqrex alone speaks; yields a function giving that text."""
    captured = ""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no file descriptor 2 (embedded interpreters)
        yield lambda: captured
        return
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            def text() -> str:
                sink.flush()
                sink.seek(0)
                return sink.read(4096).decode("utf-8", "replace")

            yield text
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _as_real_array(x, name: str) -> np.ndarray:
    # torch tensors (and look-alikes) without importing torch
    if hasattr(x, "detach") and hasattr(x, "cpu") and hasattr(x, "numpy"):
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and odd objects
        raise FreqrexError(f"{name} is not an array of numbers ({first_line(exc)})") from exc
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise FreqrexError(f"{name} has dtype {arr.dtype}; give real-valued samples (float or int)")
    return arr


def _mix_2d(arr: np.ndarray, name: str) -> np.ndarray:
    rows, cols = arr.shape
    if rows == 1 or (rows < cols and rows <= MAX_CHANNELS):
        return arr.mean(axis=0, dtype=np.float64)
    if cols == 1 or (cols < rows and cols <= MAX_CHANNELS):
        return arr.mean(axis=1, dtype=np.float64)
    raise FreqrexError(
        f"{name} has ambiguous shape {arr.shape}; give 1-D [n], [channels, n] or [n, channels] "
        f"with at most {MAX_CHANNELS} channels"
    )


def _check_finite(x: np.ndarray, where: str) -> None:
    if not np.all(np.isfinite(x)):
        bad = int(np.count_nonzero(~np.isfinite(x)))
        raise FreqrexError(
            f"{where} contains {bad} NaN or infinite samples; give a clip of finite samples"
        )


def _check_not_silent(x: np.ndarray, where: str) -> None:
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak < SILENCE_PEAK:
        raise FreqrexError(f"{where} is silent (peak {peak:.3g}); freqrex needs a clip with signal")


def _check_rate(rate) -> int:
    return check_sample_rate(rate, "sample rate")


def _describe_length(n: int, sample_rate: int | None) -> str:
    if sample_rate:
        return f"{n / sample_rate:.3f} s ({n} samples)"
    return f"{n} samples"
