"""Audio I/O: reading, validation, length fitting and writing."""

import warnings

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import FakeTensor

from freqrex.audio import check_waveform, fit_length, load_audio, resample, write_wav
from freqrex.errors import FreqrexError, FreqrexWarning


def tone(freq, seconds, rate, amplitude=0.5):
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def assert_one_line(exc_info, *fragments):
    message = str(exc_info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


# -- load_audio / write_wav ------------------------------------------------------------------


def test_float_wav_round_trip_is_exact(tmp_path):
    x = np.random.default_rng(0).uniform(-3, 3, 12345).astype(np.float32)  # beyond [-1, 1] too
    path = tmp_path / "x.wav"
    write_wav(path, x, 22050)
    assert sf.info(str(path)).subtype == "FLOAT"
    assert sf.info(str(path)).channels == 1
    y, rate = load_audio(path)
    assert rate == 22050
    assert y.dtype == np.float32 and y.flags.c_contiguous and y.ndim == 1
    np.testing.assert_array_equal(y, x)


def test_write_wav_accepts_silence_and_single_channel_2d(tmp_path):
    write_wav(tmp_path / "s.wav", np.zeros(100), 8000)  # explanations may be silent
    write_wav(tmp_path / "c.wav", np.ones((1, 50)) * 0.1, 8000)
    assert sf.info(str(tmp_path / "c.wav")).frames == 50


@pytest.mark.parametrize(
    "x, rate, fragment",
    [
        (np.ones((2, 100)) * 0.1, 8000, "shape (2, 100)"),
        (np.array([0.1, np.nan]), 8000, "NaN or infinite"),
        (np.zeros(0), 8000, "empty"),
        (np.ones(10) * 0.1, 0, "sample rate"),
    ],
)
def test_write_wav_rejects_bad_input(tmp_path, x, rate, fragment):
    with pytest.raises(FreqrexError) as info:
        write_wav(tmp_path / "x.wav", x, rate)
    assert_one_line(info, fragment)


def test_write_wav_into_missing_directory_is_a_freqrex_error(tmp_path):
    with pytest.raises(FreqrexError) as info:
        write_wav(tmp_path / "nope" / "x.wav", np.ones(10) * 0.1, 8000)
    assert_one_line(info, "could not write", "nope")


def test_stereo_is_mixed_to_mono_by_mean(tmp_path):
    rng = np.random.default_rng(1)
    stereo = rng.uniform(-1, 1, (1000, 2)).astype(np.float32)
    path = tmp_path / "st.wav"
    sf.write(str(path), stereo, 16000, subtype="FLOAT")
    y, rate = load_audio(path)
    assert y.shape == (1000,) and rate == 16000
    np.testing.assert_allclose(y, stereo.mean(axis=1), rtol=0, atol=1e-7)


def test_flac_is_read(tmp_path):
    x = tone(1000, 0.1, 16000)
    path = tmp_path / "x.flac"
    sf.write(str(path), x, 16000, subtype="PCM_24")
    y, rate = load_audio(path)
    assert rate == 16000
    np.testing.assert_allclose(y, x, atol=1e-6)


@pytest.mark.parametrize("fmt", ["OGG", "MP3"])
def test_compressed_formats_are_read(tmp_path, fmt):
    path = tmp_path / f"x.{fmt.lower()}"
    sf.write(str(path), tone(1000, 0.5, 16000), 16000, format=fmt)
    y, rate = load_audio(path)
    assert rate == 16000 and y.dtype == np.float32
    peak_hz = np.argmax(np.abs(np.fft.rfft(y))) * rate / len(y)
    assert abs(peak_hz - 1000) <= 5


def test_resampling_keeps_a_tone_at_its_frequency(tmp_path):
    path = tmp_path / "a.wav"
    write_wav(path, tone(440, 1.0, 44100), 44100)
    with pytest.warns(FreqrexWarning, match="resampled from 44100 Hz to 16000 Hz"):
        y, rate = load_audio(path, sample_rate=16000)
    assert rate == 16000 and y.dtype == np.float32
    assert abs(len(y) - 16000) <= 1
    spectrum = np.abs(np.fft.rfft(y))
    peak_hz = np.argmax(spectrum) * rate / len(y)
    assert abs(peak_hz - 440) <= 1.0
    assert 0.45 < np.max(np.abs(y[100:-100])) < 0.55  # amplitude kept


def test_resample_an_array():
    x = tone(1000, 0.5, 48000)
    with pytest.warns(FreqrexWarning, match="clip: resampled from 48000 Hz to 16000 Hz"):
        y = resample(x, 48000, 16000, name="clip")
    assert y.dtype == np.float32 and y.shape == (8000,)
    assert abs(np.argmax(np.abs(np.fft.rfft(y))) * 16000 / len(y) - 1000) <= 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resample(x, 16000, 16000) is x
    with pytest.raises(FreqrexError, match="too short"):
        resample(np.ones(1, np.float32), 48000, 8000)
    with pytest.raises(FreqrexError, match="1-D"):
        resample(np.ones((2, 10)), 48000, 8000)


def test_no_resampling_and_no_warning_at_the_same_rate(tmp_path):
    path = tmp_path / "a.wav"
    x = tone(440, 0.1, 16000)
    write_wav(path, x, 16000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y, _ = load_audio(path, sample_rate=16000)
    np.testing.assert_array_equal(y, x)


def _write_bytes(path, data):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda d: d / "missing.wav", "does not exist"),
        (lambda d: d, "is a directory"),
        (lambda d: _write_bytes(d / "empty.wav", b""), "is empty (0 bytes)"),
        (lambda d: _write_bytes(d / "junk.wav", b"RIFF\x00\x01junkjunk" * 20), "could not be read"),
        (lambda d: _write_bytes(d / "text.mp3", b"hello, text\n" * 50), "could not be read"),
    ],
    ids=["missing", "directory", "empty", "corrupt", "not-audio"],
)
def test_bad_files_raise_freqrex_error(tmp_path, make, fragment):
    path = make(tmp_path)
    with pytest.raises(FreqrexError) as info:
        load_audio(path)
    assert_one_line(info, fragment, str(path))


@pytest.mark.parametrize(
    "samples, fragment",
    [
        (np.zeros(0, dtype=np.float32), "no audio samples"),
        (np.array([0.1, np.nan, 0.2], dtype=np.float32), "NaN or infinite"),
        (np.array([0.1, np.inf, 0.2], dtype=np.float32), "NaN or infinite"),
        (np.zeros(1000, dtype=np.float32), "is silent (peak 0)"),
        (np.full(1000, 5e-7, dtype=np.float32), "is silent"),
    ],
    ids=["zero-samples", "nan", "inf", "zeros", "near-silent"],
)
def test_bad_contents_raise_freqrex_error(tmp_path, samples, fragment):
    path = tmp_path / "bad.wav"
    sf.write(str(path), samples, 16000, subtype="FLOAT")  # soundfile: no freqrex validation
    with pytest.raises(FreqrexError) as info:
        load_audio(path)
    assert_one_line(info, fragment, str(path))


def test_silence_is_judged_after_mixdown(tmp_path):
    x = tone(300, 0.1, 16000)
    path = tmp_path / "cancel.wav"
    sf.write(str(path), np.stack([x, -x], axis=1), 16000, subtype="FLOAT")
    with pytest.raises(FreqrexError, match="silent"):
        load_audio(path)


def test_bad_target_rate_is_a_freqrex_error(tmp_path):
    path = tmp_path / "a.wav"
    write_wav(path, tone(440, 0.1, 16000), 16000)
    with pytest.raises(FreqrexError, match="sample rate"):
        load_audio(path, sample_rate=-5)


# -- check_waveform --------------------------------------------------------------------------


def test_check_waveform_returns_a_contiguous_float32_copy():
    x = np.asfortranarray(np.linspace(-1, 1, 200).reshape(1, 200))
    y = check_waveform(x)
    assert y.dtype == np.float32 and y.ndim == 1 and y.flags.c_contiguous
    assert not np.shares_memory(y, x)
    z = np.linspace(-1, 1, 50, dtype=np.float32)
    out = check_waveform(z)
    out[0] = 7
    assert z[0] == -1  # never a view


@pytest.mark.parametrize(
    "shape, axis",
    [((2, 500), 0), ((500, 2), 1), ((1, 500), 0), ((500, 1), 1), ((6, 40), 0), ((40, 6), 1)],
)
def test_check_waveform_reads_channel_layouts(shape, axis):
    x = np.random.default_rng(2).uniform(-1, 1, shape)
    np.testing.assert_allclose(check_waveform(x), x.mean(axis=axis), atol=1e-6)


def test_check_waveform_accepts_lists_and_ints():
    np.testing.assert_array_equal(check_waveform([0, 1, -1]), np.array([0, 1, -1], np.float32))
    np.testing.assert_array_equal(
        check_waveform(np.array([0, 100], dtype=np.int16)), np.array([0, 100], np.float32)
    )


def test_check_waveform_converts_tensor_like_objects():
    np.testing.assert_array_equal(check_waveform(FakeTensor(np.ones(4))), np.ones(4, np.float32))


@pytest.mark.parametrize(
    "x, fragment",
    [
        (np.ones((100, 100)), "ambiguous shape"),
        (np.ones((9, 20)), "ambiguous shape"),  # more than 8 channels
        (np.ones((2, 3, 4)), "shape (2, 3, 4)"),
        (np.float32(0.5), "shape ()"),
        (np.zeros(0), "no samples"),
        (np.array([0.5, np.nan]), "NaN or infinite"),
        (np.array([0.5, 1e300]), "NaN or infinite"),  # inf once cast to float32
        (np.zeros(10), "is silent"),
        (np.ones(4, dtype=complex), "dtype complex128"),
        (np.array([True, False]), "dtype bool"),
        (["a", "b"], "dtype <U1"),
        ([[1.0], [1.0, 2.0]], "not an array of numbers"),
    ],
)
def test_check_waveform_rejects_bad_arrays(x, fragment):
    with pytest.raises(FreqrexError) as info:
        check_waveform(x, name="clip")
    assert_one_line(info, "clip", fragment)


# -- fit_length ------------------------------------------------------------------------------


def test_fit_length_pads_with_zeros_at_the_end_and_warns_in_seconds():
    x = np.ones(12800, dtype=np.float32)
    with pytest.warns(FreqrexWarning, match=r"0\.800 s.*1\.000 s.*zero-padded"):
        y = fit_length(x, 16000, sample_rate=16000)
    assert y.shape == (16000,) and y.dtype == np.float32
    np.testing.assert_array_equal(y[:12800], 1)
    np.testing.assert_array_equal(y[12800:], 0)


def test_fit_length_crops_the_end_and_warns():
    x = np.arange(20000, dtype=np.float32)
    with pytest.warns(FreqrexWarning, match=r"1\.250 s.*cropped to the first 1\.000 s"):
        y = fit_length(x, 16000, sample_rate=16000)
    np.testing.assert_array_equal(y, x[:16000])


def test_fit_length_without_rate_states_samples():
    with pytest.warns(FreqrexWarning, match="10 samples.*20 samples"):
        fit_length(np.ones(10), 20)


def test_fit_length_is_silent_when_the_length_is_right():
    x = np.ones(100, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fit_length(x, 100, sample_rate=16000) is x


@pytest.mark.parametrize("n", [0, -3, 2.5, "10"])
def test_fit_length_rejects_bad_lengths(n):
    with pytest.raises(FreqrexError, match="length"):
        fit_length(np.ones(10), n)


@given(length=st.integers(1, 300), n=st.integers(1, 300))
@settings(max_examples=60, deadline=None)
def test_fit_length_always_gives_n_samples_keeping_the_overlap(length, n):
    x = np.arange(1, length + 1, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FreqrexWarning)
        y = fit_length(x, n)
    keep = min(length, n)
    assert y.shape == (n,)
    np.testing.assert_array_equal(y[:keep], x[:keep])
    assert not y[keep:].any()
