"""Peak memory over clip length: each run in a fresh process, its peak RSS read back.

``explain`` of the bundled model on clips of 1 s to 10 min (the bundled 30 s clip, tiled),
``iterations=2, search_limit=300``, as the issue measures it: the peak should stop growing
with the clip once the memory budget (``max_memory``, default min(2 GiB, 25% of RAM))
sizes the model's passes, and stay under 3 GiB at 10 min. The child reports its peak RSS
(``ru_maxrss``), the model's measured bytes per sample and the rows per pass it chose.
The issue's second target, a 30 s clip through a mel+CNN tagger under 3 GiB, runs the
bundled ``musicnn-mtt`` on the bundled 30 s clip with the same search
(``test_tagger_30s_peak_memory``, ~5 minutes here).

Run: ``.venv/bin/python -m pytest bench/test_bench_memory.py --benchmark-disable -s``
(``FREQREX_BENCH_SECONDS=1,30,600`` for a subset; ``FREQREX_BENCH_MAX_MEMORY=1GiB`` to
set the budget).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

SECONDS = tuple(float(s) for s in
                os.environ.get("FREQREX_BENCH_SECONDS", "1,10,30,120,600").split(","))
MAX_MEMORY = os.environ.get("FREQREX_BENCH_MAX_MEMORY")

_RUN = """
import json, resource, sys, numpy as np, freqrex
from freqrex.audio import load_audio
from freqrex.config import parse_memory
from freqrex.examples import bundled_model, reference_model
budget, name = sys.argv[2], sys.argv[3]
model = freqrex.OnnxModel(bundled_model(name) if name else reference_model(),
                          max_memory=parse_memory(budget) if budget else None)
x, rate = load_audio(reference_model().parent / "examples" / "long_30s.flac", model.sample_rate)
n = int(float(sys.argv[1]) * rate)
clip = np.resize(x, n).astype(np.float32)
r = freqrex.explain(model, clip, sample_rate=rate, iterations=2, search_limit=300, seed=0)
print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "mutants": r.stats.mutants, "model_calls": r.stats.model_calls,
                  "seconds": r.stats.seconds_total, "max_memory_mb": model.max_memory / 2**20,
                  "bytes_per_sample": model.memory_per_sample,
                  "rows_per_pass": model.waveforms_per_batch(n)}))
"""


def peak(seconds: float, model: str = "") -> dict:
    """The child's report for a clip of ``seconds`` through the bundled model ``model``
    (the reference model when empty)."""
    out = subprocess.run([sys.executable, "-c", _RUN, str(seconds), MAX_MEMORY or "", model],
                         capture_output=True, text=True, check=True, timeout=3600)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("seconds", SECONDS)
def test_peak_memory_over_clip_length(seconds, benchmark):
    info = peak(seconds)
    benchmark.extra_info.update(info)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)  # the numbers are in extra_info
    print(f"\n{seconds:>5g} s clip: peak {info['peak_mb']:.0f} MB (budget "
          f"{info['max_memory_mb']:.0f} MB), {info['mutants']} waveforms in "
          f"{info['model_calls']} calls, {info['seconds']:.1f} s, model "
          f"{info['bytes_per_sample']:.1f} B/sample, {info['rows_per_pass']} rows/pass")
    assert info["mutants"] > 0
    if seconds >= 600:
        assert info["peak_mb"] < 3 * 1024, "the issue's target: a 10-minute clip under 3 GiB"


def test_tagger_30s_peak_memory(benchmark):
    info = peak(30, "musicnn-mtt")
    benchmark.extra_info.update(info)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    print(f"\nmusicnn-mtt, 30 s clip: peak {info['peak_mb']:.0f} MB (budget "
          f"{info['max_memory_mb']:.0f} MB), {info['mutants']} waveforms in "
          f"{info['model_calls']} calls, {info['seconds']:.1f} s, model "
          f"{info['bytes_per_sample']:.1f} B/sample, {info['rows_per_pass']} rows/pass")
    assert info["peak_mb"] < 3 * 1024, "the issue's target: a 30 s clip of a tagger under 3 GiB"
