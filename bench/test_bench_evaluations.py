"""Model evaluations per explanation: the adaptive search against the fixed budget.

One run measures both on the same clips, so the ratio holds on a noisy machine: the
default explanation (the search stops once more iterations no longer shrink the smallest
sufficient prefix; every mutant asked for twice is answered once) against the same
explanation with ``stable_rounds=0`` (all ``iterations`` run, the fixed budget).
Run: ``.venv/bin/python -m pytest bench/test_bench_evaluations.py --benchmark-disable -s``.
"""

from __future__ import annotations

import pytest

import freqrex
from freqrex.examples import example_clips, reference_model

CLIPS = ["guitar.wav", "piano.wav", "long_30s.flac"]


@pytest.fixture(scope="module")
def model():
    return freqrex.OnnxModel(reference_model())


def _clip(name: str):
    return next(p for p in [*example_clips(), reference_model().parent / "examples" / name]
                if p.name == name)


@pytest.mark.parametrize("name", CLIPS)
def test_adaptive_search_against_the_fixed_budget(name, model, benchmark):
    fixed = freqrex.explain(model, _clip(name), seed=0, stable_rounds=0)
    adaptive = benchmark.pedantic(lambda: freqrex.explain(model, _clip(name), seed=0),
                                  rounds=1, iterations=1)
    ratio = adaptive.stats.mutants / fixed.stats.mutants
    sizes = {kind: (fixed.explanations[kind].size, adaptive.explanations[kind].size)
             for kind in fixed.explanations}
    benchmark.extra_info.update(
        fixed_waveforms=fixed.stats.mutants, adaptive_waveforms=adaptive.stats.mutants,
        ratio=ratio, iterations=adaptive.stats.iterations, stopped=adaptive.stats.stopped,
        reused=adaptive.stats.reused, sizes=sizes)
    print(f"\n{name}: fixed {fixed.stats.mutants} waveforms, adaptive "
          f"{adaptive.stats.mutants} ({ratio:.2f}x, {adaptive.stats.iterations} iterations, "
          f"{adaptive.stats.stopped}; {adaptive.stats.reused} answered without the model); "
          f"sizes fixed/adaptive {sizes}")
    assert adaptive.stats.mutants <= fixed.stats.mutants
