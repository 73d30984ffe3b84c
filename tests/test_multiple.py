"""Several disjoint sufficient sets (freqrex.multiple) on oracles whose answer is known."""

from __future__ import annotations

import json

import numpy as np
import pytest

import freqrex
from freqrex.config import Config
from freqrex.errors import InputError
from tests.oracles import BAND_A, BAND_B, SR, two_band_clip, two_band_model


def _explain(rule: str, **params):
    x = two_band_clip()
    defaults = dict(multiple=4, iterations=3, search_limit=400, multiple_budget=1500,
                    output_activation="softmax", seed=1, minimal_budget=4000)
    defaults.update(params)
    return freqrex.explain(two_band_model(rule, x), x, sample_rate=SR, **defaults)


def _band_of(e) -> set[int]:
    """Which oracle bands a set's Hz ranges touch (0: A, 1: B)."""
    out = set()
    for lo, hi in e.hz_ranges:
        for i, (blo, bhi) in enumerate((BAND_A, BAND_B)):
            if lo < bhi and hi >= blo:
                out.add(i)
    return out


def _check_sets(result) -> None:
    """Every set is verified, subset-minimal, sufficient on its own, pairwise disjoint."""
    sets = result.explanations_multi
    assert sets[0].bins.tolist() == result.sufficient.bins.tolist()
    for e in sets:
        assert e.found and e.verified and e.minimal
        assert e.prediction is not None and e.prediction.class_index == result.target
        assert e.audio is not None and e.audio.shape == result.audio.shape
    for i, a in enumerate(sets):
        for b in sets[i + 1:]:
            assert not np.intersect1d(a.bins, b.bins).size


@pytest.mark.parametrize("domain", ["fft", "stft"])
def test_either_band_gives_two_disjoint_sets_one_per_band(domain: str) -> None:
    # Cells come in hundreds per band: proving each set minimal takes more mutants.
    budgets = {"multiple_budget": 6000, "minimal_budget": 6000} if domain == "stft" else {}
    result = _explain("either", domain=domain, n_fft=256, hop=128, **budgets)
    _check_sets(result)
    red = result.redundancy
    assert red is not None and red["sets"] == 2, red
    assert red["disjoint"] and red["stopped"] == "none_left"
    bands = [_band_of(e) for e in result.explanations_multi]
    if domain == "fft":   # exact bins: each set lies inside its band
        assert sorted(map(sorted, bands)) == [[0], [1]]
    else:                 # cells leak a little in frequency: each set is mostly one band
        centres = [np.median(np.asarray(e.hz_ranges).mean(axis=1))
                   for e in result.explanations_multi]
        assert sorted(BAND_A[0] <= c < BAND_A[1] for c in centres) == [False, True]
        assert any(BAND_B[0] <= c < BAND_B[1] for c in centres)
    assert 0 < red["union_share_features"] < 1 and 0 < red["union_share_energy"] < 1
    doc = json.loads(result.to_json())
    assert doc["redundancy"]["sets"] == 2 and len(doc["explanations_multi"]) == 2
    text = str(result)
    assert "2 disjoint sufficient set(s)" in text and "stopped: no sufficient set" in text


def test_both_bands_give_one_set_and_say_no_second_exists() -> None:
    result = _explain("both")
    _check_sets(result)
    red = result.redundancy
    assert red is not None and red["sets"] == 1, red
    assert _band_of(result.explanations_multi[0]) == {0, 1}
    assert red["stopped"] == "none_left" and red["fresh_searches"] == 1
    assert "no sufficient set" in red["reason"]


def test_overlap_allows_sharing_at_most_its_share() -> None:
    # Two sets each holding 60% of band A's energy must share some of it: only an overlap
    # lets a band host a second set, so more than the two disjoint ones are found.
    result = _explain("either", max_overlap=0.5)
    _check_sets_overlap(result, 0.5)
    red = result.redundancy
    assert red is not None and red["sets"] > 2 and not red["disjoint"]
    assert 0 < red["max_pairwise_overlap"] <= 0.5


def _check_sets_overlap(result, share: float) -> None:
    sets = result.explanations_multi
    for i, a in enumerate(sets):
        assert a.verified
        for b in sets[i + 1:]:
            assert len(np.intersect1d(a.bins, b.bins)) <= share * a.size


def test_same_seed_same_sets_any_batch_size() -> None:
    a, b = _explain("either", batch_size=7), _explain("either", batch_size=64)
    assert [e.bins.tolist() for e in a.explanations_multi] == [
        e.bins.tolist() for e in b.explanations_multi]
    assert a.redundancy == b.redundancy


def test_default_searches_one_set_only() -> None:
    result = _explain("either", multiple=1)
    assert result.redundancy is None and result.explanations_multi == []
    assert "redundancy" not in result.to_dict()


@pytest.mark.parametrize("params", [{"multiple": 0}, {"max_overlap": 1.0},
                                    {"max_overlap": -0.1}, {"multiple_budget": 0}])
def test_bad_parameters_are_input_errors(params: dict) -> None:
    with pytest.raises(InputError, match=next(iter(params))):
        Config(**params)


@pytest.mark.parametrize("domain", ["fft", "stft"])
def test_restricted_mutants_never_keep_a_used_feature(domain: str) -> None:
    """The restricted search's mutants equal the clip's mutants keeping the same boxes
    minus the used features (an independent reference through ``Domain.keep``)."""
    from freqrex.boxes import flat_features, split
    from freqrex.domains import make_domain
    from freqrex.multiple import _Restricted

    d = make_domain(two_band_clip(), SR, domain, 256, 128, (100.0, 6000.0))
    rng = np.random.default_rng(2)
    used = rng.choice(d.candidates(), size=200, replace=False)
    r = _Restricted(d, used)
    a, *rest = split(d.root, rng, 1)
    children = split(a, rng, 1)
    masks = np.arange(16, dtype=np.int64)
    got = r.mutants(rest[:2], children, masks)
    for mask, row in zip(masks.tolist(), got):
        boxes = rest[:2] + [c for i, c in enumerate(children) if mask >> i & 1]
        kept = flat_features(boxes, d.shape)
        want = d.keep([kept[~np.isin(kept, used)]])[0]
        np.testing.assert_allclose(row, want, atol=1e-5)


def test_saved_json_has_the_sets_and_redundancy(tmp_path) -> None:
    result = _explain("both", multiple=2)
    out = result.save(tmp_path / "run", figure=False)
    doc = json.loads((out / "explanation.json").read_text())
    red = doc["redundancy"]
    assert red["sets"] == 1 and red["sizes"] == [result.sufficient.size]
    assert red["union_share_features"] == pytest.approx(result.sufficient.share_bins)
    assert doc["config"]["multiple"] == 2 and doc["config"]["max_overlap"] == 0.0


def test_each_extra_set_is_written_as_a_wav(tmp_path):
    import soundfile as sf

    import freqrex
    from freqrex.examples import example_clips, reference_model

    clip = next(p for p in example_clips() if p.name == "flute.wav")
    result = freqrex.explain(reference_model(), clip, multiple=2, iterations=2,
                             search_limit=200, minimal_budget=200, seed=0)
    out = result.save(tmp_path / "out", figure=False)
    extra = result.explanations_multi[1:]
    assert extra and all(e.found for e in extra)
    for i, e in enumerate(extra, start=2):
        audio, rate = sf.read(out / f"sufficient_{i}.wav", dtype="float32")
        assert rate == result.sample_rate
        assert audio.tolist() == e.audio.tolist()
