"""Same seed, same output: the bundled clips give the results pinned in ``data/golden.json``.

The pins were taken before a refactoring and must survive every change that is meant
to keep behaviour: the responsibility map (bit for bit, as a SHA-256 of its float64
bytes), every explanation's bins, and the model's confidences on the reconstructions.
A change that is meant to alter results regenerates them with
``python tests/test_golden.py --update`` and says why in its commit.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import freqrex
from freqrex import examples

GOLDEN = Path(__file__).parent / "data" / "golden.json"
CASES = {
    "guitar-fft": ("guitar.wav", {"domain": "fft", "iterations": 4, "search_limit": 800}),
    "piano-stft": ("piano.wav", {"domain": "stft", "iterations": 3, "search_limit": 600}),
}


def fingerprint(name: str) -> dict:
    clip, params = CASES[name]
    path = next(p for p in examples.example_clips() if p.name == clip)
    result = freqrex.explain(examples.reference_model(), path, seed=3, **params)
    out = {"responsibility_sha256": hashlib.sha256(
        np.ascontiguousarray(result.responsibility, dtype=np.float64).tobytes()).hexdigest(),
        "ranking_head": result.ranking[:50].tolist(), "target": result.target}
    for kind, e in result.explanations.items():
        out[kind] = {"found": e.found, "verified": e.verified, "bins": e.bins.tolist(),
                     "confidence": (round(e.prediction.target_confidence, 6)
                                    if e.prediction else None)}
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_seed_same_result_as_pinned(name: str) -> None:
    pinned = json.loads(GOLDEN.read_text())[name]
    got = fingerprint(name)
    assert got["responsibility_sha256"] == pinned["responsibility_sha256"]
    assert got["ranking_head"] == pinned["ranking_head"]
    assert got["target"] == pinned["target"]
    for kind in ("sufficient", "necessary", "complete"):
        assert got[kind]["found"] == pinned[kind]["found"], kind
        assert got[kind]["verified"] == pinned[kind]["verified"], kind
        assert got[kind]["bins"] == pinned[kind]["bins"], kind
        if pinned[kind]["confidence"] is not None:
            assert got[kind]["confidence"] == pytest.approx(pinned[kind]["confidence"],
                                                            abs=1e-5), kind


if __name__ == "__main__" and "--update" in sys.argv:
    GOLDEN.write_text(json.dumps({name: fingerprint(name) for name in sorted(CASES)},
                                 indent=1) + "\n")
    print(f"wrote {GOLDEN}")
