#!/usr/bin/env bash
# One device call (about 1.5 minutes an option on an H100 or H200): c = 1 with kernel settings not
# yet the defaults, each against the defaults in the same lease, after the fused step's GPU test.
# Run from the repository root on the GPU machine with .whl carried; results land in $OUT
# (c1-defaults.json, c1-1.json, ..., and a log). Each argument is one option: one or more
# engine_bench `--set` values separated by spaces.
#
#   bash bench/device/c1_options.sh "fused_decode.DEFER_ROWS=1" "fused_decode.DEFER_ROWS=4"
set -uo pipefail
source bench/device/setup.sh > "$OUT/log" 2>&1 || { cat "$OUT/log"; exit 1; }
start=$(date +%s)
stamp() { echo "[$(($(date +%s) - start)) s] $*" | tee -a "$OUT/log"; }
run() {  # name, then engine_bench arguments
  local name=$1
  shift
  stamp "engine_bench $name $*"
  timeout 110 python3 bench/engine_bench.py --model-dir /tmp/full --slots 16 --concurrency 1 --runs 10 \
    --out "$OUT/c1-$name.json" "$@" 2>&1 | grep -v '^{"device' | tail -n 5 | tee -a "$OUT/log"
}
stamp "GPU test of the fused step (PDL, deferred sums)"
timeout 100 python3 -m pytest -q -x tests/gpu/test_fused_pdl_gpu.py 2>&1 | tail -n 3 | tee -a "$OUT/log"
run defaults
i=0
for option in "$@"; do
  i=$((i + 1))
  sets=()
  for s in $option; do sets+=(--set "$s"); done
  run "$i" "${sets[@]}"
done
stamp done
