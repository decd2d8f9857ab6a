#!/usr/bin/env bash
# One device call (about a minute an option on an H100 or H200, most of it capturing graphs;
# tests/gpu about 5 minutes): c = 1 with kernel settings not yet the defaults, each against the
# defaults in the same lease, after the fused step's GPU test.
# Run from the repository root on the GPU machine with .whl carried; results land in $OUT
# (c1-defaults.json, c1-1.json, ..., and a log). Each argument is one option: one or more
# engine_bench `--set` values separated by spaces. With REFERENCE=1 (carry .whl-ref too), the
# reference (coqui-tts) at c = 1 follows on the same GPU (reference.json); with HTTP=1, the
# server's first byte at c = 1 under the defaults (http.json); PDL_TEST=0 skips the fused step's test;
# GPU_TESTS=1 runs tests/gpu after the options.
#
#   bash bench/device/c1_options.sh "fused_decode.ATTEND_CONFIG=(128,4)"
#   REFERENCE=1 HTTP=1 bash bench/device/c1_options.sh "runner.FUSED_PREFILL=False"
set -uo pipefail
source bench/device/setup.sh > "$OUT/log" 2>&1 || { cat "$OUT/log"; exit 1; }
start=$(date +%s)
stamp() { echo "[$(($(date +%s) - start)) s] $*" | tee -a "$OUT/log"; }
run() {  # name, then engine_bench arguments
  local name=$1
  shift
  stamp "engine_bench $name $*"
  timeout 160 python3 bench/engine_bench.py --model-dir /tmp/full --slots 16 --concurrency 1 --runs 10 --path-runs 5 \
    --out "$OUT/c1-$name.json" "$@" 2>&1 | grep -v '^{"device' | tail -n 5 | tee -a "$OUT/log"
}
if [ "${PDL_TEST:-1}" = 1 ]; then
  stamp "GPU test of the fused step (PDL)"
  timeout 100 python3 -m pytest -q -x tests/gpu/test_fused_pdl_gpu.py 2>&1 | tail -n 3 | tee -a "$OUT/log"
fi
run defaults
i=0
for option in "$@"; do
  i=$((i + 1))
  sets=()
  for s in $option; do sets+=(--set "$s"); done
  run "$i" "${sets[@]}"
done
if [ "${GPU_TESTS:-0}" = 1 ]; then
  stamp "GPU tests (tests/gpu)"
  timeout 320 python3 -m pytest -q -x tests/gpu 2>&1 | tail -n 8 | tee -a "$OUT/log"
fi
if [ "${REFERENCE:-0}" = 1 ]; then
  stamp "reference (coqui-tts), c = 1"
  (source bench/device/setup_reference.sh >> "$OUT/log" 2>&1 \
    && PYTHONPATH=/tmp/siteref:$PYTHONPATH timeout 150 python3 bench/reference_stream.py /tmp/full --runs 5 \
      --device cuda > "$OUT/reference.json" 2>> "$OUT/log"; tail -c 600 "$OUT/reference.json" | tee -a "$OUT/log")
fi
if [ "${HTTP:-0}" = 1 ]; then
  stamp "HTTP, c = 1"
  (cd bench && timeout 100 python3 http_load.py --model-dir /tmp/full --concurrency 1 --runs 10 --slots 16 \
    --out "$OUT/http.json" 2>&1 | tail -n 6 | tee -a "$OUT/log")
fi
stamp done
