#!/usr/bin/env bash
# The one prepared check for a lent GPU machine, in tiers (benchmarks/gpu_check.py): the plan and its
# GPU-time estimate first, then tier 0 (the gpu-marked tests), then tiers 1 to 3, each under its own
# time limit, so a hung item costs its tier and not the lease. Figures and verdicts land in
# OUT_DIR/results.json and OUT_DIR/check.log as each item finishes; OUT_DIR/gpu_tests.log and
# OUT_DIR/profile.txt beside them.
#   benchmarks/gpu_check.sh OUT_DIR              on the GPU (about 8 minutes)
#   benchmarks/gpu_check.sh OUT_DIR --smoke      the same code at tiny sizes on the CPU (to see it run before a lease)
#   benchmarks/gpu_check.sh OUT_DIR --fidelity   the 50-epoch fidelity experiment alone (OUT_DIR/fidelity.md)
set -uo pipefail
out=${1:?usage: benchmarks/gpu_check.sh OUT_DIR [--smoke | --fidelity]}
mode=${2:-}
python=${PYTHON:-python3}
cd "$(dirname "$0")/.."
mkdir -p "$out"
if [ "$mode" = "--fidelity" ]; then
    exec "$python" -m bcl_dali.benchmarks.gpu_check "$out" --fidelity
fi
"$python" -m bcl_dali.benchmarks.gpu_check "$out" $mode --plan
if [ "$mode" != "--smoke" ]; then
    timeout 120 "$python" -m pytest -q -s -m gpu tests 2>&1 | tee "$out/gpu_tests.log"
fi
for limit in "1 210" "2 100" "3 100"; do
    set -- $limit
    timeout "$2" "$python" -m bcl_dali.benchmarks.gpu_check "$out" $mode --tier "$1" || echo "tier $1 ended with status $?" | tee -a "$out/check.log"
done
