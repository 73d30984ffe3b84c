"""Tests that pin the exact rules: the pass threshold, the depth limit, the verification.

Each would catch a one-character change that the end-to-end tests let through: ``>=``
turned into ``>`` in the pass criterion, an off-by-one in ``max_depth``, a final check
whose verdict is ignored.
"""

from __future__ import annotations

import numpy as np
from oracles import callable_band_oracle

from freqrex.config import Config
from freqrex.criterion import Criterion
from freqrex.domains import FFTDomain
from freqrex.extraction import extract
from freqrex.responsibility import responsibility_map

SR = 8000


def _criterion(model, target=0, p0=0.8, confidence_filter=0.5):
    return Criterion(model, target, p0, confidence_filter)


def test_a_mutant_exactly_at_the_threshold_passes():
    c = _criterion(lambda x: x)
    assert c.threshold == 0.4  # 0.5 * 0.8 is exact in binary
    probs = np.array([[0.4, 0.3, 0.3], [0.3999999, 0.3, 0.3], [0.4, 0.6, 0.0]])
    assert c.passes(probs).tolist() == [True, False, False]


def test_the_original_passes_at_confidence_filter_one():
    c = _criterion(lambda x: x, p0=0.7, confidence_filter=1.0)
    assert c.passes(np.array([[0.7, 0.3]])).tolist() == [True]


def _tone_domain(n=4096):
    t = np.arange(n) / SR
    x = (np.sin(2 * np.pi * 1000 * t) + 0.5 * np.sin(2 * np.pi * 3000 * t)).astype(np.float32)
    return FFTDomain(x, SR)


def _band_criterion(domain):
    logits = callable_band_oracle([(900, 1100), (2900, 3100)], SR)

    def model(x):
        z = np.asarray(logits(x), dtype=np.float64)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    return _criterion(model, 0, float(model(domain.x[None])[0, 0]), 0.5)


def _splits(max_depth, iterations=1):
    domain = _tone_domain()
    config = Config(max_depth=max_depth, iterations=iterations, search_limit=10_000, seed=0)
    _, stats = responsibility_map(domain, _band_criterion(domain), config)
    return stats.splits


def test_max_depth_one_splits_only_the_root():
    # Depth 1: the root is split (its children sit at depth 1) and no child is split again.
    assert _splits(1) == 1
    assert _splits(1, iterations=3) == 3


def test_each_level_of_max_depth_splits_once_more_per_responsible_child():
    one, two, three = _splits(1), _splits(2), _splits(3)
    assert one < two < three


def test_verification_reports_a_set_the_model_rejects_at_the_final_call():
    """A model that changes its mind on the final check: verified must say so."""
    domain = _tone_domain()
    criterion = _band_criterion(domain)
    config = Config(iterations=2, search_limit=400, seed=0)
    responsibility, _ = responsibility_map(domain, criterion, config)
    ranking = np.argsort(-responsibility.ravel(), kind="stable")
    honest = extract(domain, criterion, ranking, config)
    assert all(e.verified for e in honest.values() if e.k is not None)

    calls = {"n": 0, "last": None}

    def fickle(x):
        calls["n"] += 1
        p = criterion.model(x)
        if calls["last"] is not None and calls["n"] > calls["last"]:
            p = p[:, ::-1].copy()  # the verifying call: every class swapped
        return p

    counting = Criterion(fickle, criterion.target, criterion.original_confidence,
                         criterion.confidence_filter)
    extract(domain, counting, ranking, config)
    calls["last"], calls["n"] = calls["n"] - 1, 0   # every call but the final one is honest
    fooled = extract(domain, counting, ranking, config)
    found = [e for e in fooled.values() if e.k is not None]
    assert found and not any(e.verified for e in found)
    assert all(e.k == honest[e.kind].k for e in found)  # same search, only the check differs
