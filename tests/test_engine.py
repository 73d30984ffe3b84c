"""The warm engine gives exactly what ``explain`` gives, and pays its set-up once."""

from __future__ import annotations

import numpy as np
from oracles import BANDS, SR, band_energy_model, make_clip

import freqrex

FAST = {"iterations": 2, "search_limit": 120, "seed": 1, "minimal_budget": 60}


def test_explainer_results_equal_explain_and_the_model_is_opened_once(tmp_path):
    path = band_energy_model(tmp_path / "bands.onnx", BANDS)
    clips = [make_clip(seed=s) for s in (0, 1)]
    explainer = freqrex.Explainer(path, sample_rate=SR, **FAST)
    warm = explainer.explain_many(clips)
    for clip, got in zip(clips, warm):
        alone = freqrex.explain(path, clip, sample_rate=SR, **FAST)
        np.testing.assert_array_equal(got.responsibility, alone.responsibility)
        for kind in got.explanations:
            np.testing.assert_array_equal(got.explanations[kind].bins,
                                          alone.explanations[kind].bins)
    # one model for both clips: its call count covers both explanations
    assert explainer.model.stats.calls == sum(r.stats.model_calls for r in warm)


def test_explainer_attacks_an_explanation_in_its_own_domain(tmp_path):
    path = band_energy_model(tmp_path / "bands.onnx", BANDS)
    explainer = freqrex.Explainer(path, sample_rate=SR, **FAST)
    result = explainer.explain(make_clip(seed=2), domain="stft")
    calls = explainer.model.stats.calls
    attacked = explainer.attack(result=result, ks=(1, 2))
    assert attacked.domain == "stft" and [s.k for s in attacked.steps] == [1, 2]
    assert explainer.model.stats.calls == calls + 1   # no second explanation
