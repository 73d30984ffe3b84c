#!/usr/bin/env bash
# Fetch, here (where PyPI is reachable), the wheels that bench/gpu_check.sh needs on the lent
# GPU machine, which reaches no registry: the packages freqrex imports that its image lacks
# (its python3 is 3.12 with numpy, numba, scipy, onnxruntime (CPU), torch with CUDA, typer,
# rich and matplotlib; see ../.library/device/KINDS.md). About 5 MB, into .whl/ (ignored by
# git; name it in the device run's `carry`). onnxruntime-gpu is not among them: its wheel is
# ~255 MB (the device takes 64 MiB a call) and is built for CUDA 12, the image has CUDA 13,
# so a GPU run there goes through freqrex.TorchModel (bench/reference_torch.py).
#
# Usage: bash bench/gpu_wheels.sh [PYTHON_VERSION]   (default 3.12, the device's)
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:-3.12}"
rm -rf .whl && mkdir .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$version" \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
  "pyfftw==0.15.1" "soundfile==0.14.0" "cffi==2.1.1" "pycparser==3.12" "soxr==1.1.0"
ls -l .whl
