"""Model evaluations per explanation: the defaults, and a fast setting, against the search
the issue measured.

One run measures all three on the same clips and seeds, so the ratios hold on a noisy
machine: the default explanation (the search stops once ``stable_rounds`` iterations no
longer shrink the smallest sufficient prefix; the necessary predicate scored half by
half; every mutant asked for twice answered once), ``FAST`` (30 iterations of 100
mutants, stopping after the first that does not improve) and the search as it was when
issue 8 was filed (every iteration run: ``stable_rounds=0``), all with today's
definitions and minimal sets. Target: at most 1/3 of the waveforms, sets no larger.

Run: ``.venv/bin/python -m pytest bench/test_bench_evaluations.py --benchmark-disable -s``
(about 8 minutes on the 2-core dev box).
"""

from __future__ import annotations

import math
import statistics

import pytest

import freqrex
from freqrex.examples import example_clips, reference_model

SEEDS = (0, 1, 2)
THEN = {"iterations": 10, "search_limit": 3000, "stable_rounds": 0}
FAST = {"iterations": 30, "search_limit": 3000, "stable_rounds": 1}
KINDS = ("sufficient", "necessary")
_rows: list[dict] = []


@pytest.fixture(scope="module")
def model():
    return freqrex.OnnxModel(reference_model())


def _clips() -> dict[str, object]:
    clips = {p.name: p for p in example_clips()}
    clips["long_30s.flac"] = reference_model().parent / "examples" / "long_30s.flac"
    return clips


def _sizes(result) -> dict[str, int | None]:
    return {kind: (result.explanations[kind].size if result.explanations[kind].found
                   else None) for kind in KINDS}


CASES = [(name, seed) for name in _clips() for seed in
         (SEEDS if name != "long_30s.flac" else SEEDS[:1])]


@pytest.mark.parametrize(("name", "seed"), CASES)
def test_defaults_against_the_search_of_the_issue(name, seed, model, benchmark):
    clip = _clips()[name]
    then = freqrex.explain(model, clip, seed=seed, **THEN)
    fast = freqrex.explain(model, clip, seed=seed, **FAST)
    now = benchmark.pedantic(lambda: freqrex.explain(model, clip, seed=seed),
                             rounds=1, iterations=1)
    row = {"clip": name, "seed": seed, "then": then.stats.mutants, "now": now.stats.mutants,
           "fast": fast.stats.mutants, "iterations": (now.stats.iterations,
                                                      fast.stats.iterations),
           "sizes_then": _sizes(then), "sizes_now": _sizes(now), "sizes_fast": _sizes(fast)}
    _rows.append(row)
    benchmark.extra_info.update(row, ratio=row["now"] / row["then"],
                                ratio_fast=row["fast"] / row["then"])
    print(f"\n{name} seed {seed}: waveforms then {row['then']}, now {row['now']} "
          f"({row['now'] / row['then']:.2f}x), fast {row['fast']} "
          f"({row['fast'] / row['then']:.2f}x); iterations now/fast {row['iterations']}; "
          f"sizes then {row['sizes_then']} now {row['sizes_now']} fast {row['sizes_fast']}")
    assert now.stats.mutants < then.stats.mutants


def test_summary():
    """Ratios over every clip and seed above (run after them)."""
    if not _rows:
        pytest.skip("run with the cases above")
    for setting in ("now", "fast"):
        ratios = [r[setting] / r["then"] for r in _rows]
        print(f"\n{setting}: waveforms against then: median {statistics.median(ratios):.2f}x, "
              f"max {max(ratios):.2f}x over {len(ratios)} explanations")
        for kind in KINDS:
            pairs = [(r["sizes_then"][kind], r[f"sizes_{setting}"][kind]) for r in _rows
                     if r["sizes_then"][kind] and r[f"sizes_{setting}"][kind]]
            logs = [math.log(b / a) for a, b in pairs]
            smaller = sum(b <= a for a, b in pairs)
            found = (sum(r["sizes_then"][kind] is not None for r in _rows),
                     sum(r[f"sizes_{setting}"][kind] is not None for r in _rows))
            print(f"  {kind}: found then/{setting} {found[0]}/{found[1]}; size against "
                  f"then: geometric mean {math.exp(statistics.fmean(logs)):.2f}x, median "
                  f"{math.exp(statistics.median(logs)):.2f}x; no larger in "
                  f"{smaller}/{len(pairs)}")
