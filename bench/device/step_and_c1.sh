#!/usr/bin/env bash
# One device call (about 9 minutes on an H100 or H200): where a change to the decode step and the
# engine's c = 1 path lands, all on one lease. Run from the repository root on the GPU machine
# with .whl carried (and .baseline, an older tree's src/, for a same-lease baseline: made here with
# `mkdir -p .baseline && git archive <commit> src | tar -x -C .baseline`, ignored by git through
# .git/info/exclude, then named in the call's carry); results in $OUT (c1.json, c1-baseline.json,
# step.json, c1-set.json, and a log).
#
#   1. engine_bench at 16 slots, c = 1: the defaults, then each settings variant the running
#      engine reads (VARIANTS, ';'-separated; interleaved with the defaults on one engine), every
#      variant's requests split by timing events (--path-runs);
#   2. the same with the baseline tree's code (.baseline/src), if carried;
#   3. pdl_step: whole decode steps (graph replays) for STEP_VARIANTS, batches 1 and 16;
#   4. with SET (a setting the graphs capture, e.g. fused_decode.MMA_CHAINS=4): step 1 again.
#
#   VARIANTS="engine.FIRST_AUDIO_ALONE=True;runner.LATER_WINDOW_SMS=16" bash bench/device/step_and_c1.sh
set -uo pipefail
source bench/device/setup.sh > "$OUT/log" 2>&1 || { cat "$OUT/log"; exit 1; }
start=$(date +%s)
stamp() { echo "[$(($(date +%s) - start)) s] $*" | tee -a "$OUT/log"; }
variants=()
IFS=';' read -ra parts <<< "${VARIANTS:-}"
for v in "${parts[@]}"; do [ -n "$v" ] && variants+=(--variants "$v"); done
c1() {  # output name, then engine_bench arguments
  local name=$1
  shift
  stamp "engine_bench $name $*"
  timeout 200 python3 bench/engine_bench.py --model-dir /tmp/full --slots 16 --concurrency 1 --runs 10 \
    --path-runs 5 --out "$OUT/$name.json" "$@" 2>&1 | grep -v '^{"device\|^\[{"batch\|^\[{"windows' \
    | tail -n 12 | tee -a "$OUT/log"
}
c1 c1 "${variants[@]}"
if [ -d .baseline/src ]; then
  (export PYTHONPATH=/tmp/site:$PWD/.baseline/src:$PWD/bench && c1 c1-baseline)
fi
stamp "pdl_step ${STEP_VARIANTS:=pdl_configs,row_tile_off,chains2,chains4}"
timeout 200 python3 bench/pdl_step.py --model-dir /tmp/full --batches 1,16 --only "$STEP_VARIANTS" \
  --out "$OUT/step.json" 2>&1 | grep '"step_ms"\|Error' | cut -c1-400 | tee -a "$OUT/log"
if [ -n "${SET:-}" ]; then
  sets=()
  for s in $SET; do sets+=(--set "$s"); done
  c1 c1-set "${sets[@]}" "${variants[@]}"
fi
stamp done
