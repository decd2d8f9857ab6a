#!/usr/bin/env bash
# One device call (about 7 minutes on an H100 or H200): the c = 1 options not yet timed on a GPU,
# each against the defaults in the same lease, and their GPU tests. Run from the repository root
# on the GPU machine with .whl carried; results land in $OUT (c1-*.json, and a log).
#
#   bash bench/device/c1_variants.sh
#
# Variants: the vocoder's residual blocks on parallel streams (hifigan.PARALLEL_BLOCKS), the
# prefill in the fused linears with 64-row tiles (EngineConfig.fused_prefill), and both; then the
# prefill's block tables (bench/prefill_sweep.py).
set -uo pipefail
source bench/device/setup.sh > "$OUT/log" 2>&1 || { cat "$OUT/log"; exit 1; }
start=$(date +%s)
stamp() { echo "[$(($(date +%s) - start)) s] $*" | tee -a "$OUT/log"; }
run() {  # name, then engine_bench arguments
  local name=$1
  shift
  stamp "engine_bench $name"
  timeout 110 python3 bench/engine_bench.py --model-dir /tmp/full --slots 16 --concurrency 1 --runs 10 \
    --out "$OUT/c1-$name.json" "$@" 2>&1 | grep -v '^{"device' | tail -n 5 | tee -a "$OUT/log"
}
# Most telling first: what comes back of a call cut short is still an answer.
run defaults
run both --set hifigan.PARALLEL_BLOCKS=True --fused-prefill 512
stamp "GPU tests of the variants"
timeout 120 python3 -m pytest -q -x tests/gpu/test_vocoder_gpu.py tests/model/test_fused_decode.py \
  -k "parallel or tall or prefill" 2>&1 | tail -n 5 | tee -a "$OUT/log"
run parallel --set hifigan.PARALLEL_BLOCKS=True
run prefill512 --fused-prefill 512
stamp "prefill block tables against the library's GEMMs"
timeout 150 python3 bench/prefill_sweep.py --model-dir /tmp/full --out "$OUT/prefill-sweep.json" 2>&1 \
  | tail -n 4 | tee -a "$OUT/log"
stamp done
