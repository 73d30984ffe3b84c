"""STFT-domain explanations on a time-localised oracle, and the attacks."""

import json

import numpy as np
import pytest
from oracles import BANDS, SR, band_energy_model, band_noise, tone_clip

import freqrex
from freqrex import FreqrexError
from freqrex.domains import STFTDomain
from freqrex.manipulation import attack, snr_db

N = 16_384
SPAN = (0.35, 0.7)  # seconds in which the time-localised oracle listens
N_FFT, HOP = 256, 64


def span_clip(seed=0):
    """Energy in all three bands throughout; the first band is loudest."""
    rng = np.random.default_rng(seed)
    x = sum(band_noise(rng, lo, hi, a, N) for (lo, hi), a in zip(BANDS, (1.0, 0.8, 0.5)))
    return (0.2 * x + 0.002 * rng.standard_normal(N)).astype(np.float32)


@pytest.fixture(scope="module")
def span_oracle(tmp_path_factory):
    return band_energy_model(tmp_path_factory.mktemp("span") / "span.onnx", BANDS,
                             time_span_s=SPAN)


@pytest.fixture(scope="module", params=["uniform", "energy"])
def stft_result(span_oracle, request):
    # the same checks whether splits cut rectangles uniformly or by their energy
    return freqrex.explain(span_oracle, span_clip(), sample_rate=SR, domain="stft",
                           n_fft=N_FFT, hop=HOP, seed=1, iterations=6, search_limit=1500,
                           cuts=request.param)


def test_stft_explanation_lies_in_the_deciding_band_and_time_span(stft_result):
    r = stft_result
    frames = r.responsibility.shape[1]
    assert r.responsibility.shape == (N_FFT // 2 + 1, N // HOP + 1)
    e = r.sufficient
    assert e.found and e.verified
    rows, cols = np.divmod(e.bins, frames)
    row_hz, frame_s = SR / N_FFT, HOP / SR
    leak_hz, leak_s = 2 * row_hz, (N_FFT / 2) / SR  # window main lobe; half a window
    hz, t = rows * row_hz, cols * frame_s
    assert (hz >= BANDS[0][0] - leak_hz).all() and (hz < BANDS[0][1] + leak_hz).all()
    assert (t >= SPAN[0] - leak_s).all() and (t <= SPAN[1] + leak_s).all()
    assert all(SPAN[0] - leak_s <= a <= b <= SPAN[1] + leak_s for a, b in e.time_ranges)


def test_stft_responsibility_is_inside_the_rectangle(stft_result):
    r = stft_result.responsibility
    hz = np.arange(r.shape[0]) * SR / N_FFT
    t = np.arange(r.shape[1]) * HOP / SR
    leak = (N_FFT / 2) / SR
    inside = ((hz[:, None] >= BANDS[0][0] - 2 * SR / N_FFT)
              & (hz[:, None] < BANDS[0][1] + 2 * SR / N_FFT)
              & (t[None, :] >= SPAN[0] - leak) & (t[None, :] <= SPAN[1] + leak))
    # coarse boxes spread their share over cells outside too: compare densities
    assert r[inside].mean() > 20 * r[~inside].mean()
    assert r[inside].max() > r[~inside].max()


def test_stft_necessary_removal_flips_and_reconstruction_is_exact(stft_result, span_oracle):
    e = stft_result.necessary
    assert e.found and e.verified
    without = stft_result.audio - e.audio
    probs = freqrex.OnnxModel(span_oracle)(without[None])[0]
    assert np.argmax(probs) != 0 or probs[0] < 0.5 * stft_result.confidence
    # keeping every cell gives back the clip: the inverse STFT is exact
    domain = STFTDomain(stft_result.audio, SR, N_FFT, HOP)
    whole = domain.keep([np.arange(domain.n_features)])[0]
    np.testing.assert_allclose(whole, stft_result.audio, atol=1e-5)
    np.testing.assert_allclose(e.audio, domain.keep([e.bins])[0], atol=1e-6)


@pytest.fixture(scope="module")
def band_oracle(tmp_path_factory):
    return band_energy_model(tmp_path_factory.mktemp("bands") / "bands.onnx", BANDS)


def test_one_frequency_flips_a_close_call(band_oracle):
    x = tone_clip()
    result = attack(band_oracle, x, sample_rate=SR, ks=(1, 2, 5), seed=0, iterations=3,
                    search_limit=300)
    first = result.first_flip
    assert first is not None and first.k == 1
    assert first.prediction.label == "1000-2000Hz" and first.touched == 1
    # the removed bin is the 410 Hz tone: what is left is the other tone alone
    expected = (0.3 * 0.9 * np.cos(2 * np.pi * 1536 * np.arange(N) / N)).astype(np.float32)
    np.testing.assert_allclose(first.audio, expected, atol=1e-4)
    assert first.snr_db == pytest.approx(snr_db(x, first.audio))
    assert first.snr_db == pytest.approx(10 * np.log10((1 + 0.81) / 1.0), abs=0.01)
    assert result.flipped_at(5) and result.flipped_at(1)


def test_attenuation_keeps_part_of_the_bins(band_oracle):
    x = tone_clip()
    result = attack(band_oracle, x, sample_rate=SR, ks=(1,), mode="attenuate", factor=0.5,
                    seed=0, iterations=3, search_limit=300)
    step = result.steps[0]
    # a 410 Hz tone at half amplitude: 0.25 < 0.81, still flips
    assert step.flipped
    assert step.snr_db == pytest.approx(10 * np.log10(1.81 / 0.25), abs=0.01)


def test_stft_attack_changes_few_cells_and_reports_them(band_oracle, tmp_path):
    x = tone_clip(amplitudes=(1.0, 0.97))
    result = attack(band_oracle, x, sample_rate=SR, domain="stft", n_fft=N_FFT, hop=HOP,
                    ks=(1, 5, 50, 400), seed=0, iterations=3, search_limit=400)
    assert result.domain == "stft"
    assert [s.k for s in result.steps] == [1, 5, 50, 400]
    assert all(s.touched == s.k for s in result.steps)
    snrs = [s.snr_db for s in result.steps]
    assert snrs == sorted(snrs, reverse=True)  # more cells removed, more change
    assert result.flipped_at(400)
    out = result.save(tmp_path / "att")
    doc = json.loads((out / "attack.json").read_text())
    assert doc["domain"] == "stft" and doc["first_flip_k"] == result.first_flip.k
    wavs = sorted(p.name for p in out.glob("*.wav"))
    assert wavs == sorted(f"stft_k{s.k}.wav" for s in result.steps if s.flipped)


@pytest.mark.parametrize("kwargs, words", [
    ({"mode": "boost"}, "mode"), ({"mode": "attenuate", "factor": 1.5}, "factor"),
    ({"ks": (0, 1)}, "ks"), ({"ks": ()}, "ks"),
])
def test_bad_attack_options_are_errors(band_oracle, kwargs, words):
    with pytest.raises(FreqrexError, match=words):
        attack(band_oracle, tone_clip(), sample_rate=SR, **kwargs)


def test_stft_on_a_clip_shorter_than_a_window_is_an_error(band_oracle):
    with pytest.raises(FreqrexError, match="n_fft"):
        freqrex.explain(band_oracle, tone_clip()[:200], sample_rate=SR, domain="stft",
                        n_fft=512, hop=128)
