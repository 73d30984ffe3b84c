"""Model waveforms/s: freqrex's forward passes against plain ONNX Runtime, in the same run.

For each model, on the same batch, several alternating rounds of

- ``ort_single``: one plain ``InferenceSession`` (ORT's default threads), ``run`` on the batch;
- ``ort_threads1``: one session with one thread;
- ``ort_pool``: one single-threaded session run from one thread per core on parts of the batch;
- ``freqrex``: ``OnnxModel.scores`` with ``sessions`` measured (what ``explain`` uses);
- ``parallel_ceiling``: two threads hashing a buffer against one (how much of a second core
  the shared machine gives right now: the ceiling of any concurrent speedup).

The summary prints median waveforms/s, ``pool / single`` (the target on a model whose ops use
one core: >= 1.8x on 2 free cores) and ``freqrex / best plain ORT`` (target >= 90%).
Run: ``.venv/bin/python -m pytest bench/test_bench_model.py --benchmark-disable -s``.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from statistics import median

import numpy as np
import onnxruntime as ort
import pytest

from freqrex.examples import bundled_model, reference_model
from freqrex.model import OnnxModel
from freqrex.model.sessions import usable_cores

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from oracles import BANDS, band_energy_model  # noqa: E402

ROUNDS = 5


def _session(path, threads=None):
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=options,
                                providers=["CPUExecutionProvider"])


def _cases(tmp: Path):
    dft = band_energy_model(tmp / "dft.onnx", BANDS, compute_dtype="float64")
    return {
        # one ONNX DFT over a 10 s clip: its ops use one core
        "dft_oracle_10s": (dft, 160_000, 8),
        "reference_4s": (reference_model(), 64_000, 32),
        "reference_30s": (reference_model(), 480_000, 8),
        "musicnn_3s": (bundled_model("musicnn-mtt"), 48_000, 16),
    }


def _ceiling() -> float:
    data = os.urandom(50_000_000)

    def work(_=None):
        hashlib.sha256(data).digest()

    with ThreadPoolExecutor(2) as pool:
        start = time.perf_counter()
        work(), work()
        serial = time.perf_counter() - start
        start = time.perf_counter()
        list(pool.map(work, range(2)))
        return serial / (time.perf_counter() - start)


@pytest.mark.parametrize("case", ["dft_oracle_10s", "reference_4s", "reference_30s",
                                  "musicnn_3s"])
def test_model_waveforms_per_second(case, tmp_path, benchmark):
    path, n, b = _cases(tmp_path)[case]
    x = np.random.default_rng(0).standard_normal((b, n)).astype(np.float32)
    wide, narrow = _session(path), _session(path, 1)
    name = wide.get_inputs()[0].name
    cores = usable_cores()
    pool = ThreadPoolExecutor(cores)
    bounds = np.linspace(0, b, cores + 1).round().astype(int)
    model = OnnxModel(path, batch_size=b)
    model.scores(x[:1])  # the clip's call: measures memory, as explain's first call does
    while model.throughput.choice == "measuring":
        model.scores(x)  # the measuring calls count: they are what explain pays

    ways = {
        "ort_single": lambda: wide.run(None, {name: x}),
        "ort_threads1": lambda: narrow.run(None, {name: x}),
        "ort_pool": lambda: [f.result() for f in [
            pool.submit(narrow.run, None, {name: x[i:j]})
            for i, j in zip(bounds[:-1], bounds[1:])]],
        "freqrex": lambda: model.scores(x),
    }
    rates: dict[str, list[float]] = {k: [] for k in ways}
    ceilings = []
    for fn in ways.values():
        fn()  # warm-up
    for _ in range(ROUNDS):
        for way, fn in ways.items():
            start = time.perf_counter()
            fn()
            rates[way].append(b / (time.perf_counter() - start))
        ceilings.append(_ceiling())
    med = {k: median(v) for k, v in rates.items()}
    best = max(med["ort_single"], med["ort_threads1"], med["ort_pool"])
    info = {"case": case, "n": n, "batch": b, "cores": cores,
            "waveforms_per_s": med, "pool_over_single": med["ort_pool"] / med["ort_single"],
            "freqrex_over_best_ort": med["freqrex"] / best,
            "parallel_ceiling": median(ceilings),
            "choice": model.throughput.to_dict()}
    benchmark.extra_info.update(info)
    benchmark.pedantic(lambda: model.scores(x), rounds=1, iterations=1)
    print(f"\n{case}: " + ", ".join(f"{k} {v:.1f}/s" for k, v in med.items())
          + f"; pool/single {info['pool_over_single']:.2f}x, freqrex/best ORT "
          f"{info['freqrex_over_best_ort']:.0%}, machine 2-thread ceiling "
          f"{info['parallel_ceiling']:.2f}x, chose {model.throughput.choice} "
          f"({model.throughput.reason}, {model.throughput.rates})")
    pool.shutdown()
    assert info["freqrex_over_best_ort"] > 0
