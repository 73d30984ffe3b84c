"""End-to-end benchmarks on the bundled reference model.

- a full ``explain`` of a 30 s clip (480 000 samples, 240 001 bins): where the time goes,
  inside model inference or outside it (spectrum, mutant synthesis, search bookkeeping);
- the extraction search, bracketing against ReX's linear scan, on a 4 s clip: model calls.

Run: ``.venv/bin/python -m pytest bench/test_bench_explain.py --benchmark-only``
"""

import pytest

from freqrex import OnnxModel, explain
from freqrex.audio import load_audio
from freqrex.examples import example_clips, long_clip, reference_model

LONG = long_clip()


@pytest.fixture(scope="module")
def model():
    return OnnxModel(reference_model())


@pytest.mark.benchmark(group="explain-30s")
def test_explain_30_second_clip(benchmark, model, record_run):
    x, rate = load_audio(LONG, model.sample_rate)
    assert x.shape[0] == 30 * rate
    explain(model, x[: rate], sample_rate=rate, iterations=1, search_limit=15)  # JIT warm-up
    result = benchmark.pedantic(
        lambda: explain(model, x, sample_rate=rate, seed=0, iterations=4, search_limit=600),
        rounds=1, iterations=1)
    record_run(benchmark, result)
    assert result.sufficient.verified


@pytest.mark.benchmark(group="extraction-search")
@pytest.mark.parametrize("search", ["bracket", "linear"])
def test_extraction_search(benchmark, model, search, record_run):
    x, rate = load_audio(example_clips()[0], model.sample_rate)
    result = benchmark.pedantic(
        lambda: explain(model, x, sample_rate=rate, seed=0, iterations=4, search_limit=600,
                        search=search, chunk=64),
        rounds=1, iterations=1)
    record_run(benchmark, result)
