#!/usr/bin/env bash
# One short check for a machine with an NVIDIA GPU (a few minutes): model waveforms/s of the
# bundled model and a short explain of the bundled 30 s clip (then a second, warm one) through
#   - ONNX Runtime: the CUDA provider (IO binding), "auto" and the CPU; where CUDA cannot
#     start (no onnxruntime-gpu, as on this workplace's lent machine) the "cuda" entry
#     records the error and "auto" falls back to the CPU, freqrex's normal behaviour;
#   - PyTorch, where torch is installed: the same model rebuilt from the ONNX file's weights
#     (bench/reference_torch.py, checked against ONNX Runtime first) in freqrex.TorchModel,
#     on "cuda" (waveforms/s and the explains) and on the CPU (waveforms/s).
# Writes gpu_check.json into $OUT (or the current folder) after every entry, and prints it.
#
# Run from the repository root: bash bench/gpu_check.sh
# Python: $PYTHON, else .venv/bin/python when freqrex imports there, else python3 with the
# repository on PYTHONPATH and the wheels of .whl/ (bench/gpu_wheels.sh fetches them) put in
# /tmp/freqrex-site: nothing is downloaded, so it runs where no registry can be reached.
# On this workplace's device tool: carry [".whl"], command "bash bench/gpu_check.sh",
# timeout_s 420.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-.}"
mkdir -p "$out"
py="${PYTHON:-}"
if [[ -z "$py" ]]; then
  if [[ -x .venv/bin/python ]] && .venv/bin/python -c "import freqrex" 2>/dev/null; then
    py=.venv/bin/python
  else
    py=python3
    if compgen -G ".whl/*.whl" >/dev/null; then
      "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/freqrex-site .whl/*.whl
      export PYTHONPATH="/tmp/freqrex-site${PYTHONPATH:+:$PYTHONPATH}"
    fi
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
  fi
fi
if ! "$py" -c "import freqrex.audio, freqrex._kernels.fft, freqrex.model.onnx" 2>"$out/import_error.txt"; then
  echo "error: freqrex does not import with $py ($(tail -1 "$out/import_error.txt")); run" \
       "bash bench/gpu_wheels.sh where PyPI is reachable and bring .whl/ along" >&2
  exit 2
fi
rm -f "$out/import_error.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null \
  || echo "nvidia-smi: not available"
export PYTHONUNBUFFERED=1
timeout 360 "$py" - "$out" <<'PY'
import json
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

import freqrex
from freqrex.audio import load_audio
from freqrex.config import ModelConfig
from freqrex.examples import long_clip, reference_model
from freqrex.model import load_model

report = {"python": sys.version.split()[0], "numpy": np.__version__,
          "onnxruntime": ort.__version__, "available_providers": ort.get_available_providers(),
          "device": ort.get_device()}
clip = long_clip()
# a short explanation (its sets are not the point): what CUDA changes in wall time and in
# the share of it outside the model
SETTINGS = {"seed": 0, "iterations": 2, "search_limit": 300, "minimal_budget": 100}
report["explain_settings"] = SETTINGS


def save() -> None:
    """Write what is known so far: a run cut short by its timeout still reports."""
    with open(f"{sys.argv[1]}/gpu_check.json", "w") as f:
        json.dump(report, f, indent=2)


def measure(model, explain: bool) -> dict:
    """Waveforms/s on batches of the 30 s clip, then (``explain``) a first and a warm explain."""
    entry = {"provider": model.provider}
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
    if explain:
        runs = []
        for _ in range(2):   # the first pays for plans and compilation, the second is warm
            started = time.perf_counter()
            result = freqrex.explain(model, x, sample_rate=rate, **SETTINGS)
            wall = time.perf_counter() - started
            s = result.stats
            runs.append({"seconds": wall, "seconds_model": s.seconds_model,
                         "share_outside_model": (wall - s.seconds_model) / wall,
                         "waveforms": s.mutants, "model_calls": s.model_calls})
        entry.update({"explain_first": runs[0], "explain_warm": runs[1],
                      "sizes": {k: e.size for k, e in result.explanations.items()},
                      "target": result.target_label})
    throughput = getattr(model, "throughput", None)
    if throughput is not None:
        entry["throughput"] = throughput.to_dict()
    return entry


explained, labels = set(), None
for name in ("cuda", "cpu", "auto"):   # "auto" explains only where it is not the CPU
    started = time.perf_counter()
    try:
        model = load_model(reference_model(), ModelConfig(provider=name))
    except freqrex.FreqrexError as e:
        report[name] = {"error": str(e)}
        print(name, "error:", e, flush=True)
        continue
    opened, labels = time.perf_counter() - started, model.labels
    report[name] = measure(model, explain=model.provider not in explained)
    report[name].update(open_seconds=opened, io_binding=bool(getattr(model, "_bind", False)))
    explained.add(model.provider)
    print(name, json.dumps(report[name]), flush=True)
    save()

try:
    import torch
except ImportError as e:
    report["torch"] = {"error": f"torch is not installed ({e})"}
else:
    sys.path.insert(0, str(Path("bench").resolve()))
    from reference_torch import check_against_onnx, reference_torch

    report["torch"] = {"version": torch.__version__, "cuda": torch.cuda.is_available(),
                       "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available()
                       else None}
    for device in (["cuda"] if torch.cuda.is_available() else []) + ["cpu"]:
        key = f"torch_{device}"
        try:
            module = reference_torch()
            entry = {"max_abs_logit_difference_to_onnxruntime": check_against_onnx(module,
                                                                                  device)}
            model = freqrex.TorchModel(module, sample_rate=16000, labels=labels, device=device)
            entry.update(measure(model, explain=device == "cuda"))   # ORT is the CPU's
        except Exception as e:   # one failing backend must not hide the others' figures
            entry = {"error": f"{type(e).__name__}: {e}"}
        report[key] = entry
        print(key, json.dumps(entry), flush=True)
        save()

cpu = report.get("cpu", {})
for key in ("cuda", "torch_cuda"):
    gpu = report.get(key, {})
    if "waveforms_per_s" in cpu and "waveforms_per_s" in gpu:
        report[f"{key}_over_cpu_waveforms_per_s"] = gpu["waveforms_per_s"] / cpu["waveforms_per_s"]
    if "explain_warm" in cpu and "explain_warm" in gpu:
        report[f"cpu_over_{key}_warm_explain_seconds"] = (cpu["explain_warm"]["seconds"]
                                                         / gpu["explain_warm"]["seconds"])
        report[f"{key}_same_sizes_as_cpu"] = cpu["sizes"] == gpu["sizes"]
save()
print(json.dumps(report, indent=2))
PY
