"""End-to-end explanations on oracle models whose right answer is known.

The band-energy oracle classifies a clip by which frequency band holds most energy, so the
sufficient explanation must lie in the winning band, keep the class, and removing the
necessary set must change the class. Checks recompute reconstructions with plain numpy,
independently of freqrex's kernels.
"""

import json

import numpy as np
import pytest
import soundfile as sf
from oracles import BANDS, SR, N, band_energy_model, callable_band_oracle, make_clip

import freqrex
from freqrex import CallableModel, FreqrexError, OnnxModel


def in_band(bins, band, n=N):
    hz = np.asarray(bins) * SR / n
    return (hz >= band[0]) & (hz < band[1])


def keep(x, bins):
    spectrum = np.fft.rfft(x.astype(np.float64))
    mask = np.zeros(spectrum.shape[0], dtype=bool)
    mask[bins] = True
    return np.fft.irfft(spectrum * mask, x.shape[0]).astype(np.float32)


@pytest.fixture(scope="module")
def oracle_path(tmp_path_factory):
    return band_energy_model(tmp_path_factory.mktemp("oracle") / "bands.onnx", BANDS)


@pytest.fixture(scope="module", params=["uniform", "energy"])
def result(oracle_path, request):
    # every check below holds whether splits cut boxes uniformly or by their energy
    return freqrex.explain(oracle_path, make_clip(), sample_rate=SR, seed=3, iterations=6,
                           search_limit=1500, cuts=request.param)


def test_target_is_the_loudest_band(result):
    assert result.target == 0
    assert result.target_label == "200-600Hz"
    assert 0.5 < result.confidence < 0.9


def test_sufficient_set_lies_in_the_deciding_band_and_passes(result, oracle_path):
    e = result.sufficient
    assert e.found and e.verified and e.size >= 1
    assert in_band(e.bins, BANDS[0]).all()
    assert all(BANDS[0][0] <= lo <= hi < BANDS[0][1] for lo, hi in e.hz_ranges)
    probs = OnnxModel(oracle_path)(keep(result.audio, e.bins)[None])[0]
    assert np.argmax(probs) == 0
    assert probs[0] >= 0.5 * result.confidence
    np.testing.assert_allclose(e.audio, keep(result.audio, e.bins), atol=1e-5)


def test_responsibility_concentrates_in_the_deciding_band(result):
    hz = np.arange(result.n_features) * SR / N
    target = (hz >= BANDS[0][0]) & (hz < BANDS[0][1])
    r = result.responsibility
    assert r[target].sum() > 0.9 * r.sum()
    # every bin of the other bands ranks below the best bins of the deciding band
    assert r[target].max() > r[~target].max()


def test_removing_the_necessary_set_flips_the_class(result, oracle_path):
    e = result.necessary
    assert e.found and e.verified
    assert e.prefix_size >= result.sufficient.prefix_size
    without = result.audio - keep(result.audio, e.bins)
    probs = OnnxModel(oracle_path)(np.stack([without, keep(result.audio, e.bins)]))
    assert np.argmax(probs[0]) != 0   # the default rule: another class is on top
    assert np.argmax(probs[1]) == 0
    assert e.removed is not None and e.removed.class_index == int(np.argmax(probs[0]))


def test_complete_set_recovers_the_confidence(result):
    e = result.complete
    assert e.found and e.verified
    assert e.prefix_size >= result.necessary.prefix_size
    # within the tolerance both ways: a higher confidence is not "the same" either
    assert abs(e.prediction.target_confidence - result.confidence) <= 0.02


def test_explanation_shares_and_stats_add_up(result):
    e = result.sufficient
    assert e.share_bins == pytest.approx(e.size / result.n_features)
    spectrum = np.fft.rfft(result.audio.astype(np.float64))
    energy = np.sum(keep(result.audio, e.bins).astype(np.float64) ** 2)
    assert e.share_energy == pytest.approx(energy / np.sum(result.audio.astype(np.float64) ** 2),
                                           rel=1e-3)
    assert np.abs(spectrum[e.bins]).min() > 0
    s = result.stats
    assert s.search_mutants <= 1500 and s.splits > 6
    assert s.mutants > s.search_mutants and s.model_calls >= s.splits // 3
    assert 0 < s.seconds_model < s.seconds_total


def test_same_seed_same_map_bit_for_bit_whatever_the_batch_size(oracle_path):
    x = make_clip(seed=1)
    runs = [freqrex.explain(oracle_path, x, sample_rate=SR, seed=11, iterations=3,
                            search_limit=400, batch_size=b) for b in (1, 7, 32, 32)]
    for run in runs[1:]:
        assert run.responsibility.tobytes() == runs[0].responsibility.tobytes()
        assert run.stats.mutants == runs[0].stats.mutants   # the same work, batched otherwise
        for kind, e in run.explanations.items():
            first = runs[0].explanations[kind]
            assert (e.found, e.prefix_size, e.minimal) == (first.found, first.prefix_size,
                                                           first.minimal), kind
            assert e.bins.tobytes() == first.bins.tobytes(), kind
    other = freqrex.explain(oracle_path, x, sample_rate=SR, seed=12, iterations=3,
                            search_limit=400)
    assert other.responsibility.tobytes() != runs[0].responsibility.tobytes()


def test_linear_search_finds_a_verified_set_no_smaller_than_bracket(oracle_path):
    x = make_clip(seed=2)
    common = dict(sample_rate=SR, seed=5, iterations=4, search_limit=600)
    bracket = freqrex.explain(oracle_path, x, search="bracket", **common)
    linear = freqrex.explain(oracle_path, x, search="linear", chunk=16, **common)
    assert np.array_equal(bracket.responsibility, linear.responsibility)
    for kind in ("sufficient", "necessary"):
        b, lin = bracket.explanations[kind], linear.explanations[kind]
        assert b.verified and lin.verified
        if b.proven_smallest and kind == "sufficient":  # no smaller prefix holds
            assert lin.prefix_size >= b.prefix_size


def test_a_named_class_that_is_not_the_top_one(oracle_path):
    result = freqrex.explain(oracle_path, make_clip(seed=4), sample_rate=SR, seed=0,
                             iterations=4, search_limit=800, target="1000-2000Hz")
    assert result.target == 1 and result.prediction.class_index == 0
    e = result.sufficient
    assert e.found and e.verified
    assert in_band(e.bins, BANDS[1]).all()


def test_freq_range_limits_the_search(oracle_path):
    result = freqrex.explain(oracle_path, make_clip(seed=5), sample_rate=SR, seed=0,
                             iterations=3, search_limit=600, freq_range=(300, 500))
    for e in result.explanations.values():
        if e.found:
            assert in_band(e.bins, (300, 500.1)).all()
    hz = np.arange(result.n_features) * SR / N
    assert not result.responsibility[(hz < 299) | (hz > 501)].any()


@pytest.mark.parametrize("domain", ["fft", "stft"])
def test_a_restricted_root_keeps_what_lies_outside_it_in_every_mutant(domain):
    from freqrex.domains import make_domain
    from freqrex.extraction import rank_bins

    x = make_clip(seed=5)
    d = make_domain(x, SR, domain, 256, 64, (300.0, 500.0))
    inside = d.candidates()
    assert np.abs(d.fixed).max() > 0.1 * np.abs(x).max()   # most of the clip is outside
    half = inside[::2]
    kept = d.keep([np.empty(0, np.int64), inside, half])
    np.testing.assert_allclose(kept[0], d.fixed, atol=1e-5)
    np.testing.assert_allclose(kept[1], x, atol=1e-4)       # all of it: the clip again
    ranking = rank_bins(np.zeros(d.shape), d.magnitude(), inside)
    np.testing.assert_allclose(d.keep_top(ranking, np.array([0, len(inside)])), kept[:2],
                               atol=1e-4)
    # the clip without what a mutant keeps of the root: the rest of it, and the outside
    rest = d.keep([np.setdiff1d(inside, half)])[0]
    np.testing.assert_allclose(d.remove(kept[2:3])[0], rest, atol=1e-4)


def test_a_python_callable_gives_the_onnx_oracles_answer(oracle_path):
    x = make_clip(seed=6)
    common = dict(sample_rate=SR, seed=2, iterations=3, search_limit=400)
    via_onnx = freqrex.explain(oracle_path, x, **common)
    via_fn = freqrex.explain(callable_band_oracle(BANDS, SR), x, **common)
    np.testing.assert_array_equal(via_onnx.sufficient.bins, via_fn.sufficient.bins)
    assert via_fn.model_info["provider"] == "python"


def test_what_cannot_be_found_is_reported_not_found():
    def stubborn(batch):  # always class 0, whatever it hears: nothing is necessary
        return np.tile([0.9, 0.1], (batch.shape[0], 1))

    result = freqrex.explain(CallableModel(stubborn), make_clip(), sample_rate=SR,
                             iterations=2, search_limit=100)
    assert result.sufficient.found and result.sufficient.verified
    assert not result.necessary.found and not result.necessary.verified
    assert result.necessary.size == 0 and result.necessary.audio is None


def test_save_writes_every_file_and_the_documented_json(result, tmp_path):
    out = result.save(tmp_path / "out")
    names = sorted(p.name for p in out.iterdir())
    assert {"complete.wav", "explanation.json", "explanation.png", "necessary.wav",
            "responsibility.npy", "sufficient.wav"} <= set(names)
    doc = json.loads((out / "explanation.json").read_text())
    assert doc["target"] == {"index": 0, "label": "200-600Hz",
                             "confidence": pytest.approx(result.confidence),
                             "is_top_class": True}
    for kind in ("sufficient", "necessary", "complete"):
        e = doc["explanations"][kind]
        assert e["found"] and e["verified"] and e["size"] == len(e["bins"])
        assert {"share_bins", "share_energy", "hz_ranges", "prediction"} <= set(e)
        audio, rate = sf.read(out / f"{kind}.wav", dtype="float32")
        assert rate == SR and sf.info(out / f"{kind}.wav").subtype == "FLOAT"
        np.testing.assert_array_equal(audio, result.explanations[kind].audio)
    assert {"model_calls", "seconds_total", "seconds_model"} <= set(doc["stats"])
    np.testing.assert_array_equal(np.load(out / "responsibility.npy"), result.responsibility)
    # saving again replaces the folder whole, leaving no temporary siblings
    result.save(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_fixed_length_model_gets_padded_clip_with_a_warning(tmp_path):
    path = band_energy_model(tmp_path / "fixed.onnx", BANDS, fixed_length=N, fixed_batch=1)
    with pytest.warns(freqrex.FreqrexWarning, match="pad"):
        result = freqrex.explain(path, make_clip(n=12_000), sample_rate=SR, iterations=2,
                                 search_limit=150)
    assert result.audio.shape == (N,)
    assert result.sufficient.verified


def test_array_without_sample_rate_is_refused(oracle_path):
    with pytest.raises(FreqrexError, match="sample_rate"):
        freqrex.explain(callable_band_oracle(BANDS), make_clip())
