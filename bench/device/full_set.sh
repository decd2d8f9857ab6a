#!/usr/bin/env bash
# One device call (about 8 minutes on an H100 or H200): the whole measurement on one lease,
# ours and the reference side by side. Run from the repository root on the GPU machine with .whl
# and .whl-ref carried; results land in $OUT (engine.json, reference.json, http.json, and a log).
#
#   bash bench/device/full_set.sh [engine_bench options, e.g. --set hifigan.PARALLEL_BLOCKS=False]
#
# The engine at 256 slots for c = 1, 16, 64, 256; the reference (coqui-tts) at c = 1 on the same
# GPU and the same random full-size checkpoint; the HTTP server's first byte at c = 1 and 16.
set -uo pipefail
source bench/device/setup.sh > "$OUT/log" 2>&1 || { cat "$OUT/log"; exit 1; }
start=$(date +%s)
stamp() { echo "[$(($(date +%s) - start)) s] $*" | tee -a "$OUT/log"; }
stamp "engine_bench, 256 slots $*"
timeout 260 python3 bench/engine_bench.py --model-dir /tmp/full --slots 256 --concurrency 1,16,64,256 \
  --runs 10 --out "$OUT/engine.json" "$@" 2>&1 | grep -v '^{"device' | tail -n 12 | tee -a "$OUT/log"
stamp "reference (coqui-tts), c = 1"
(source bench/device/setup_reference.sh >> "$OUT/log" 2>&1 \
  && PYTHONPATH=/tmp/siteref:$PYTHONPATH timeout 150 python3 bench/reference_stream.py /tmp/full --runs 5 \
    --device cuda > "$OUT/reference.json" 2>> "$OUT/log"; tail -c 600 "$OUT/reference.json" | tee -a "$OUT/log")
stamp "HTTP, c = 1 and 16"
(cd bench && timeout 150 python3 http_load.py --model-dir /tmp/full --concurrency 1,16 --runs 10 --slots 128 \
  --out "$OUT/http.json" 2>&1 | tail -n 8 | tee -a "$OUT/log")
stamp done
