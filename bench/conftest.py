"""pytest-benchmark helpers: record mutants/s and print a per-length summary table."""

from __future__ import annotations

from collections.abc import Callable

import pytest

_RESULTS = pytest.StashKey[dict]()
_RUNS = pytest.StashKey[dict]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_RESULTS] = {}
    config.stash[_RUNS] = {}


@pytest.fixture
def record_run(request: pytest.FixtureRequest) -> Callable[..., None]:
    """Store an end-to-end run's statistics in extra_info and for the summary."""

    def record(benchmark, result) -> None:
        s = result.stats
        info = {"model_calls": s.model_calls, "mutants": s.mutants,
                "seconds_total": s.seconds_total, "seconds_model": s.seconds_model,
                "share_outside_model": (s.seconds_total - s.seconds_model) / s.seconds_total,
                "sizes": [e.size for e in result.explanations.values()]}
        benchmark.extra_info.update(info)
        request.config.stash[_RUNS][request.node.name] = info

    return record


@pytest.fixture
def record_synth(request: pytest.FixtureRequest) -> Callable[..., None]:
    """Store mutants/s (from the median round) in extra_info and for the summary."""

    def record(benchmark, n: int, method: str, mutants: int) -> None:
        stats = getattr(benchmark, "stats", None)
        if stats is None:  # --benchmark-disable: ran once, nothing timed
            return
        rate = mutants / stats.stats.median
        benchmark.extra_info["mutants_per_s"] = rate
        request.config.stash[_RESULTS][(n, method)] = rate

    return record


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    _print_runs(terminalreporter, config.stash.get(_RUNS, {}))
    results = config.stash.get(_RESULTS, {})
    if not results:
        return
    tr = terminalreporter
    tr.section("mutant synthesis throughput (median round)")
    tr.write_line(f"{'n':>8}  {'method':<9} {'mutants/s':>11}  {'x naive':>8}")
    for n in sorted({n for n, _ in results}):
        naive = results.get((n, "naive"))
        for (m_n, method), rate in results.items():
            if m_n != n:
                continue
            ratio = f"{rate / naive:8.1f}" if naive else f"{'-':>8}"
            tr.write_line(f"{n:>8}  {method:<9} {rate:>11,.0f}  {ratio}")


def _print_runs(tr, runs: dict) -> None:
    if not runs:
        return
    tr.section("end-to-end explain runs")
    tr.write_line(f"{'test':<36} {'calls':>6} {'waveforms':>9} {'total s':>8} {'model s':>8} "
                  f"{'outside':>8}  sizes (suff/nec/comp)")
    for name, r in runs.items():
        tr.write_line(f"{name:<36} {r['model_calls']:>6} {r['mutants']:>9} "
                      f"{r['seconds_total']:>8.2f} {r['seconds_model']:>8.2f} "
                      f"{r['share_outside_model']:>8.1%}  {'/'.join(map(str, r['sizes']))}")
