#!/usr/bin/env bash
# The one prepared check for a lent GPU machine: the gpu-marked tests,
# then every benchmark sized to finish in a few minutes on an H200, a short BCL-I training run and the
# fidelity experiment (both pairs, 50 epochs).
# Writes OUT_DIR/gpu_tests.log, check.log, results.json, profile.txt and fidelity.md (the device
# tool returns at most eight).
#   benchmarks/gpu_check.sh OUT_DIR            on the GPU
#   benchmarks/gpu_check.sh OUT_DIR --smoke    the same code at tiny sizes on the CPU (CI runs it)
set -uo pipefail
out=${1:?usage: benchmarks/gpu_check.sh OUT_DIR [--smoke]}
mode=${2:-}
python=${PYTHON:-python3}
cd "$(dirname "$0")/.."
mkdir -p "$out"
if [ "$mode" != "--smoke" ]; then
    timeout 300 "$python" -m pytest -q -s -m gpu tests 2>&1 | tee "$out/gpu_tests.log"
fi
"$python" -m benchmarks.gpu_check "$out" $mode
