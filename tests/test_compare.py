"""compare(): every ranking judged by the same predicates, within the same budget."""

from __future__ import annotations

import json

import numpy as np
import pytest
from oracles import BANDS, SR, callable_band_oracle, make_clip

import freqrex
from freqrex.baselines import area, curve_points
from freqrex.comparison import RANKINGS


@pytest.fixture(scope="module")
def comparison():
    return freqrex.compare(callable_band_oracle(BANDS, SR), make_clip(n=4096), sample_rate=SR,
                           seed=0, iterations=3, search_limit=300)


def test_every_ranking_is_a_permutation_within_the_budget(comparison):
    assert [r.name for r in comparison.rankings] == list(RANKINGS)
    for r in comparison.rankings:
        assert r.mutants <= comparison.budget
        assert r.ks[0] == 0 and r.ks[-1] == comparison.n_features


def test_curves_start_and_end_where_they_must(comparison):
    for r in comparison.rankings:
        # nothing removed: the clip itself; everything kept: the clip itself
        assert r.deletion[0] == pytest.approx(comparison.confidence, abs=1e-5)
        assert r.insertion[-1] == pytest.approx(comparison.confidence, abs=1e-5)
        assert 0 <= r.deletion_area <= 1 and 0 <= r.insertion_area <= 1


def test_the_band_oracle_is_found_by_responsibility_and_occlusion_not_by_chance(comparison):
    sizes = {r.name: r.sizes["sufficient"] for r in comparison.rankings}
    assert sizes["responsibility"] is not None
    assert sizes["responsibility"] <= sizes["random"]
    insertion = {r.name: r.insertion_area for r in comparison.rankings}
    assert insertion["responsibility"] > insertion["random"]


def test_sizes_agree_with_an_exhaustive_scan_of_each_ranking(comparison):
    """Prefix sizes below the dense limit are exact: check them against the model."""
    from freqrex.criterion import Criterion
    from freqrex.domains import FFTDomain
    from freqrex.extraction import Prefixes

    x = make_clip(n=4096)
    model = freqrex.CallableModel(callable_band_oracle(BANDS, SR), sample_rate=SR)
    domain = FFTDomain(x, SR)
    c = Criterion(model, comparison.target, comparison.confidence, 0.5)
    order = np.argsort(-domain.magnitude(), kind="stable")
    r = comparison.score("magnitude")
    if r.sizes["sufficient"] is not None and r.proven["sufficient"]:
        ks = np.arange(1, r.sizes["sufficient"] + 1)
        holds = Prefixes(domain, c, order).holds("sufficient", ks)
        assert holds[-1] and not holds[:-1].any()


def test_area_is_the_trapezoid_rule():
    assert area(np.array([0, 5, 10]), np.array([1.0, 1.0, 0.0]), 10) == pytest.approx(0.75)
    assert set(curve_points(100, 5)) >= {0, 1, 2, 4, 25, 50, 100}


def test_the_document_is_strict_json_and_saved_whole(comparison, tmp_path):
    from freqrex.output.files import to_json

    doc = json.loads(to_json(comparison.to_dict()))
    assert doc["criterion"]["necessary_rule"] == "class"
    assert {r["name"] for r in doc["rankings"]} == set(RANKINGS)
    out = comparison.save(tmp_path / "cmp")
    assert sorted(p.name for p in out.iterdir()) == ["compare.json", "compare.png"]


def test_unknown_rankings_are_refused():
    with pytest.raises(freqrex.FreqrexError, match="rankings"):
        freqrex.compare(callable_band_oracle(BANDS, SR), make_clip(n=4096), sample_rate=SR,
                        rankings=("astrology",))
