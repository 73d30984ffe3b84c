"""Every core busy and bounded memory: concurrent sessions, the memory budget, IO binding.

The way forward passes are run (one session or concurrent runs, how many rows per pass, IO
binding) must never change a score: every test here compares bit for bit.
"""

import numpy as np
import onnxruntime as ort
import pytest
from oracles import BANDS, SR, band_energy_model, make_clip, two_band_clip, two_band_model

import freqrex
from freqrex.config import ModelConfig, parse_memory
from freqrex.errors import InputError
from freqrex.examples import reference_model
from freqrex.model import CallableModel, OnnxModel, load_model
from freqrex.model.memory import default_budget, rss_bytes
from freqrex.model.sessions import ROUNDS, SessionRunner

N = 8192


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    d = tmp_path_factory.mktemp("throughput")
    return {"f64": band_energy_model(d / "f64.onnx", BANDS, SR),
            "f32": band_energy_model(d / "f32.onnx", BANDS, SR, compute_dtype="float32"),
            "batch2": band_energy_model(d / "b2.onnx", BANDS, SR, fixed_batch=2)}


def rows(n_rows, n=N, seed=0):
    return np.random.default_rng(seed).standard_normal((n_rows, n)).astype(np.float32)


# -- sessions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["f64", "f32"])
def test_concurrent_sessions_give_the_single_session_scores_bit_for_bit(oracle, name):
    single = OnnxModel(oracle[name], sessions=1)
    pooled = OnnxModel(oracle[name], sessions=2)
    for b in (4, 5, 7, 16):
        x = rows(b, seed=b)
        assert pooled.scores(x).tobytes() == single.scores(x).tobytes(), b
    assert single.throughput.choice == "single" and single.throughput.reason == "requested"
    if name == "f64":
        assert pooled.throughput.choice == "sessions" and pooled.throughput.sessions == 2
    else:  # float32 DFT: one thread or two may round differently, and the check sees it
        assert pooled.throughput.choice == "sessions" or pooled.throughput.reason == (
            "scores differ between sessions")
    assert pooled.stats.samples == single.stats.samples == 32  # the check is not counted


@pytest.mark.parametrize("path", ["reference", "musicnn"])
def test_bundled_models_score_alike_in_any_session_and_any_batch(path):
    model_path = (reference_model() if path == "reference"
                  else freqrex.examples.bundled_model("musicnn-mtt"))
    single = OnnxModel(model_path, sessions=1)
    pooled = OnnxModel(model_path, sessions=2, max_memory=10**9)
    n = 16000 * 3 if path == "reference" else single.input_length or 16000 * 3
    x = rows(5, n=n)
    first = single.scores(x)
    assert pooled.scores(x).tobytes() == first.tobytes()
    assert pooled.throughput.choice == "sessions"
    for b in (3, 4):  # passes of 3+2 for both: never a one-row pass
        by_b = OnnxModel(model_path, sessions=1, batch_size=b)
        assert by_b.scores(x).tobytes() == first.tobytes(), b


def test_measuring_picks_a_way_reports_rates_and_never_changes_scores(oracle, monkeypatch):
    monkeypatch.setattr("freqrex.model.sessions.usable_cores", lambda: 2)
    auto = OnnxModel(oracle["f64"])
    single = OnnxModel(oracle["f64"], sessions=1)
    assert auto.throughput.choice == "measuring"
    for i in range(2 * ROUNDS + 3):
        x = rows(4 + i % 4, seed=i)
        assert auto.scores(x).tobytes() == single.scores(x).tobytes()
    t = auto.throughput
    assert t.choice in ("single", "sessions") and t.reason == "measured"
    assert set(t.rates) == {"single", "sessions"} and min(t.rates.values()) > 0
    assert auto.describe()["throughput"]["choice"] == t.choice


def test_the_pool_is_dropped_when_its_scores_differ():
    def run(session, x):  # the "narrow" session adds a last-bit error
        return x[:, :2].astype(np.float64) + (1e-12 if session == "narrow" else 0.0)

    runner = SessionRunner(run, "wide", lambda: "narrow", sessions=2)
    x = rows(4)
    assert runner(x).tobytes() == run("wide", x).tobytes()
    assert (runner.throughput.choice, runner.throughput.reason) == (
        "single", "scores differ between sessions")
    assert runner(x).tobytes() == run("wide", x).tobytes()


def test_when_the_pool_is_off(oracle, monkeypatch):
    monkeypatch.setattr("freqrex.model.sessions.usable_cores", lambda: 2)
    assert OnnxModel(oracle["f64"], threads=1).throughput.reason == "one thread per call"
    assert OnnxModel(oracle["batch2"]).throughput.reason == "fixed batch"
    session = ort.InferenceSession(str(oracle["f64"]), providers=["CPUExecutionProvider"])
    assert OnnxModel(session).throughput.reason == "given a session"
    monkeypatch.setattr("freqrex.model.sessions.usable_cores", lambda: 1)
    assert OnnxModel(oracle["f64"]).throughput.reason == "one core"


def test_one_row_passes_always_use_the_single_session(oracle):
    pooled = OnnxModel(oracle["f32"], sessions=2)
    pooled.scores(rows(1))
    pooled.scores(rows(3))
    assert pooled._runner._narrow is None  # never opened: parts would have one row


def test_io_binding_gives_the_same_scores(oracle):
    # the CUDA path binds inputs and outputs; on the CPU provider it must agree exactly
    plain = OnnxModel(oracle["f64"], sessions=1)
    bound = OnnxModel(oracle["f64"], sessions=1)
    bound._bind = True
    runs = []
    runner = bound._runner
    bound._runner = lambda chunk: runs.append(len(chunk)) or runner(chunk)
    x = rows(3)
    assert bound.scores(x).tobytes() == plain.scores(x).tobytes()
    # a GPU provider's first run sets up the device before memory is measured: run twice,
    # counted once
    assert runs == [3, 3] and bound.stats.calls == plain.stats.calls == 1
    assert bound.scores(x).tobytes() == plain.scores(x).tobytes() and runs == [3, 3, 3]


@pytest.mark.skipif("CUDAExecutionProvider" not in ort.get_available_providers()
                    or not ort.get_device().startswith("GPU"), reason="no CUDA here")
def test_cuda_with_io_binding_agrees_with_the_cpu(oracle):
    try:
        gpu = OnnxModel(oracle["f32"], providers="cuda")
    except freqrex.ModelError:
        pytest.skip("CUDA does not start here")
    cpu = OnnxModel(oracle["f32"], providers="cpu")
    assert gpu._bind and gpu.throughput.reason == "provider"
    x = rows(8)
    np.testing.assert_allclose(gpu.scores(x), cpu.scores(x), rtol=1e-4)


# -- memory budget ----------------------------------------------------------------------------


def test_memory_sizes_and_their_errors():
    assert parse_memory("4GiB") == 4 * 1024**3 and parse_memory("1.5 GB") == 1_500_000_000
    assert ModelConfig(max_memory="500MB").max_memory == 500_000_000
    for bad in ("lots", "0", "-1GB", "4XB", 0, True):
        with pytest.raises(InputError, match="max_memory"):
            ModelConfig(max_memory=bad)
    assert 0 < default_budget() <= 4 * 1024**3


_PEAK_CHILD = """
import time
import numpy as np
from freqrex.model.memory import PeakMeter
with PeakMeter() as meter:
    block = np.ones(50_000_000 // 8)
    time.sleep(0.1)  # held long enough for the sampler (every 0.5 ms) to see it whole
    del block
print(meter.peak)
"""


def test_peak_meter_sees_an_allocation():
    # In a fresh process: after a long test session the allocator's cached pages and a
    # process peak already set can hide a 50 MB block from RSS (seen once in CI's run).
    import subprocess
    import sys

    if rss_bytes() is None:
        pytest.skip("no /proc here")
    out = subprocess.run([sys.executable, "-c", _PEAK_CHILD], capture_output=True, text=True,
                         check=True, timeout=120)
    peak = int(out.stdout.strip().splitlines()[-1])
    assert 40_000_000 < peak < 200_000_000


def test_waveforms_per_batch_follows_the_budget_and_the_measurement(oracle):
    model = OnnxModel(oracle["f64"], batch_size=32, max_memory=10**7)
    assert model.memory_per_sample is None
    prior = model.waveforms_per_batch(N)
    model.scores(rows(1))
    assert model.memory_per_sample is not None and model.memory_per_sample >= 0
    per = (4 + model.held_factor * model.memory_per_sample) * N
    assert model.waveforms_per_batch(N) == max(1, min(32, int(10**7 // per)))
    assert model.waveforms_per_batch(10**9) == 1  # one waveform is still scored
    assert model.waveforms_per_batch(1) == 32
    assert model.waveforms_per_batch(N, extra_bytes_per_waveform=10**7) == 1
    assert 1 <= prior <= 32
    with pytest.raises(InputError, match="n_samples"):
        model.waveforms_per_batch(0)


def test_a_small_budget_splits_calls_but_keeps_every_score(oracle):
    big = OnnxModel(oracle["f64"], max_memory=10**10, sessions=1)
    small = OnnxModel(oracle["f64"], max_memory=(4 + 8) * N * 3, sessions=1)
    x = rows(20)
    small.scores(x[:1])
    small.memory_per_sample = 8.0 / small.held_factor  # pretend: 3 rows a pass
    assert small.scores(x).tobytes() == big.scores(x).tobytes()
    assert small.stats.calls == 1 + 7 and big.stats.calls == 1  # 3,3,3,3,3,2,3: no 1-row pass


def test_callables_get_the_budget_too():
    model = CallableModel(lambda x: x[:, :2] ** 2, sample_rate=SR, max_memory=10**6)
    model.scores(np.ones((1, 1000), np.float32))
    assert model.memory_per_sample is not None


def test_load_model_passes_sessions_and_max_memory(oracle):
    model = load_model(oracle["f64"], ModelConfig(sessions=2, max_memory="1GiB"))
    assert model.throughput.sessions == 2 and model.max_memory == 1024**3


def test_same_seed_same_explanation_for_any_sessions_and_any_budget(oracle):
    x = make_clip(seed=4)
    common = dict(sample_rate=SR, seed=7, iterations=2, search_limit=150, minimal_budget=200)
    runs = [freqrex.explain(OnnxModel(oracle["f64"], sessions=s, max_memory=m), x, **common)
            for s, m in ((1, None), (2, None), (2, 400_000), (1, 400_000))]  # <= 6 rows a pass
    for run in runs[1:]:
        assert run.responsibility.tobytes() == runs[0].responsibility.tobytes()
        assert run.stats.mutants == runs[0].stats.mutants
        for kind, e in run.explanations.items():
            assert e.bins.tobytes() == runs[0].explanations[kind].bins.tobytes(), kind
    assert runs[2].stats.model_calls > runs[0].stats.model_calls  # the budget did split


# -- bounded memory on long clips ----------------------------------------------------------


def test_pieces_hold_at_most_step_rows_and_never_leave_one_alone():
    from freqrex.mutants import RAMP, pieces

    for total in range(0, 40):
        for step in range(0, 12):
            for first in (None, 2):
                bounds = pieces(total, step, first)
                sizes = [b - a for a, b in bounds]
                assert sum(sizes) == total and all(b == a2 for (_, b), (a2, _) in
                                                   zip(bounds, bounds[1:]))
                assert all(s <= max(3 if total % 2 else 2, step) for s in sizes)
                if total >= 2:  # a step of 2 (or less) takes three rows once instead
                    assert 1 not in sizes, (total, step, sizes)
                if first is None:
                    assert all(s == max(2, step) for s in sizes[:-2]), (total, step, sizes)
                else:  # from two rows up, each piece at most RAMP times the one before
                    assert sizes[:1] in ([], [2], [3]) or sizes == [total], (total, step, sizes)
                    assert all(b <= RAMP * a + 1 for a, b in zip(sizes, sizes[1:])), sizes
                    if total >= 4 and step >= 2:   # something always hides behind the first
                        assert len(sizes) >= 2, (total, step, sizes)


def test_budget_bound_passes_keep_the_arena_warm_within_the_budget(monkeypatch):
    """Passes the budget limits are sized for a warm arena holding ARENA_HOLDS of them,
    and shrink it only while both ways of running are measured or once the process has
    grown past the budget; whichever options a pass runs with, its scores are the same."""
    from freqrex.model import onnx

    n = 16000 * 30
    x = rows(4, n=n)
    free = OnnxModel(reference_model(), sessions=1)
    bound = OnnxModel(reference_model(), sessions=1, max_memory=3 * 80 * n)  # 1-3 rows
    measuring = OnnxModel(reference_model(), max_memory=12 * 80 * n)  # 4 rows or more
    first = free.scores(x)
    assert free._options_for(n) is free._run_options
    assert bound.held_factor == onnx.ARENA_HOLDS
    assert bound.scores(x).tobytes() == first.tobytes()
    assert bound.memory_per_sample is not None
    # the rows are those of a budget that counts the arena's passes, not one pass
    held = 4 * n + onnx.ARENA_HOLDS * bound.memory_per_sample * n
    assert bound.waveforms_per_batch(n) == max(1, int(bound.max_memory // held))
    if measuring.throughput.choice == "measuring":   # two usable cores (as in CI)
        assert measuring._options_for(n) is measuring._shrink_options
    length, resident = bound._resident   # what the process held before its first pass
    assert length == n and resident is not None   # Linux: /proc is there
    # the process's growth is pinned: the test process's own RSS is no meter (see below)
    monkeypatch.setattr(onnx, "rss_bytes", lambda: resident + bound.max_memory)
    assert bound._options_for(n) is bound._run_options            # warm: within the budget
    monkeypatch.setattr(onnx, "rss_bytes", lambda: resident + bound.max_memory + 1)
    assert bound._options_for(n) is bound._shrink_options         # grown past: hand back
    assert bound.scores(x).tobytes() == first.tobytes()
    # What the arena does to the process's peak is measured in a fresh process by
    # bench/test_bench_memory.py: within one test process the allocator's own caching
    # hides it (RSS is not a reliable meter here).


def test_a_session_without_an_arena_runs_under_any_budget():
    options = ort.SessionOptions()
    options.enable_cpu_mem_arena = False
    session = ort.InferenceSession(str(reference_model()), sess_options=options,
                                   providers=["CPUExecutionProvider"])
    model = OnnxModel(session, max_memory=10**6)
    x = rows(3, n=16000)
    assert model.scores(x).tobytes() == OnnxModel(reference_model()).scores(x).tobytes()


def test_multiple_sets_do_not_depend_on_the_budget(monkeypatch):
    from freqrex import multiple

    calls = []
    restricted = multiple._Restricted.mutants
    monkeypatch.setattr(multiple._Restricted, "mutants",
                        lambda self, *a, **k: calls.append(1) or restricted(self, *a, **k))
    x = two_band_clip()
    params = dict(multiple=4, iterations=3, search_limit=400, multiple_budget=1500, seed=1,
                  output_activation="softmax", minimal_budget=4000)
    runs = []
    for budget in (None, 1):  # 1 byte: two rows a pass, every split's mutants in pieces
        model = CallableModel(two_band_model("both", x), sample_rate=SR, max_memory=budget)
        runs.append(freqrex.explain(model, x, sample_rate=SR, **params))
        assert calls, "the restricted search ran"
        calls.clear()
    assert runs[1].stats.model_calls > runs[0].stats.model_calls
    assert runs[1].responsibility.tobytes() == runs[0].responsibility.tobytes()
    assert len(runs[1].explanations_multi) == len(runs[0].explanations_multi)
    for a, b in zip(runs[0].explanations_multi, runs[1].explanations_multi):
        assert a.bins.tobytes() == b.bins.tobytes()
