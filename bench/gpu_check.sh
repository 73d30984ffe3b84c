#!/usr/bin/env bash
# One short check for a machine with an NVIDIA GPU (under 5 minutes): model waveforms/s of
# the bundled model on CUDA (IO binding) and on the CPU, and one explain of the bundled 30 s
# clip on each, with what the model measured (rows per pass, throughput choice). Writes
# gpu_check.json into $OUT (or the current folder) and prints it.
#
# Run from the repository root: bash bench/gpu_check.sh
# Python: $PYTHON, else .venv/bin/python, else a fresh venv (needs the network to install).
# Where CUDA cannot start, the "cuda" entry records the error and "auto" falls back to the
# CPU (freqrex's normal behaviour), so the script also runs end to end on a CPU-only box.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-.}"
mkdir -p "$out"
py="${PYTHON:-}"
if [[ -z "$py" ]]; then
  if [[ -x .venv/bin/python ]] && .venv/bin/python -c "import freqrex" 2>/dev/null; then
    py=.venv/bin/python
  else
    python3 -m venv --system-site-packages /tmp/freqrex-gpu-venv
    /tmp/freqrex-gpu-venv/bin/pip install -q -e . 2>&1 | tail -2
    py=/tmp/freqrex-gpu-venv/bin/python
  fi
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null \
  || echo "nvidia-smi: not available"
timeout 280 "$py" - "$out" <<'PY'
import json
import sys
import time

import numpy as np
import onnxruntime as ort

import freqrex
from freqrex.audio import load_audio
from freqrex.config import ModelConfig
from freqrex.examples import reference_model
from freqrex.model import load_model

report = {"onnxruntime": ort.__version__, "available_providers": ort.get_available_providers(),
          "device": ort.get_device()}
clip = reference_model().parent / "examples" / "long_30s.flac"
explained = set()
SETTINGS = {"seed": 0, "iterations": 4, "search_limit": 600}  # as bench/test_bench_explain.py
report["explain_settings"] = SETTINGS
for name in ("cuda", "auto", "cpu"):
    started = time.perf_counter()
    try:
        model = load_model(reference_model(), ModelConfig(provider=name))
    except freqrex.FreqrexError as e:
        report[name] = {"error": str(e)}
        print(name, "error:", e, flush=True)
        continue
    entry = {"provider": model.provider, "open_seconds": time.perf_counter() - started,
             "io_binding": bool(getattr(model, "_bind", False))}
    x, rate = load_audio(clip, model.sample_rate)
    batch = np.repeat(x[None], 32, axis=0)
    model(batch[:1])  # first call: activation, memory measured
    model(batch[:4])  # warm-up (and the sessions check on the CPU)
    started, done = time.perf_counter(), 0
    while time.perf_counter() - started < 10 and done < 32 * 8:
        model(batch)
        done += len(batch)
    entry["waveforms_per_s"] = done / (time.perf_counter() - started)
    entry["rows_per_pass"] = model.waveforms_per_batch(x.shape[0])
    entry["bytes_per_sample"] = model.memory_per_sample
    if model.provider not in explained:  # "auto" on a CPU-only box is the CPU again
        explained.add(model.provider)
        model.stats.reset()
        started = time.perf_counter()
        result = freqrex.explain(model, x, sample_rate=rate, **SETTINGS)
        s = result.stats
        entry.update({
            "explain_seconds": time.perf_counter() - started,
            "explain_waveforms": s.mutants, "model_calls": s.model_calls,
            "seconds_model": s.seconds_model,
            "sizes": {k: e.size for k, e in result.explanations.items()},
            "target": result.target_label})
    entry["throughput"] = model.throughput.to_dict()
    report[name] = entry
    print(name, json.dumps(entry), flush=True)
cpu, gpu = report.get("cpu", {}), report.get("cuda", {})
if "waveforms_per_s" in cpu and "waveforms_per_s" in gpu:
    report["cuda_over_cpu_waveforms_per_s"] = gpu["waveforms_per_s"] / cpu["waveforms_per_s"]
if "explain_seconds" in cpu and "explain_seconds" in gpu:
    report["cpu_over_cuda_explain_seconds"] = cpu["explain_seconds"] / gpu["explain_seconds"]
    report["same_sizes"] = cpu["sizes"] == gpu["sizes"]
with open(f"{sys.argv[1]}/gpu_check.json", "w") as f:
    json.dump(report, f, indent=2)
print(json.dumps(report, indent=2))
PY
