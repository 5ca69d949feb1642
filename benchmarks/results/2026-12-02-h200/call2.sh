#!/usr/bin/env bash
# Device call 2 (one H200): BatchNorm sites alone (faithful forward), the lever A/B of the AGW
# step at batch 64 and at batch 256, each in one process, interleaved round by round.
set -uo pipefail
OUT=${OUT:-./bench_out}
PY=${PYTHON:-python3}
BUDGET_S=${BUDGET_S:-570}
mkdir -p "$OUT"
START=$SECONDS
. benchmarks/gpu_lib.sh
log_environment

run bn_sites 40 100 "$PY" -m benchmarks.bn_sites --batch=64 --impl=plain --impl=xla \
  --impl=pallas --detail=layer1_bn3 --detail=layer1_bn1 --out="$OUT/bn_sites64.json"

run ab64 120 250 "$PY" -m benchmarks.step_ab --config=configs/agw_baseline.py --batch=64 \
  --rounds=7 --steps=20 --warmup=3 --max_round_seconds=40 \
  --variant='fused_xla=config.model.fused_bn=xla' \
  --variant='fused_pallas=config.model.fused_bn=pallas' \
  --variant='remat=remat=conv' \
  --variant='no_graphs=xla.xla_gpu_enable_command_buffer=' \
  --variant='autotune0=xla.xla_gpu_autotune_level=0' \
  --out="$OUT/ab64.json"

run ab256 100 230 "$PY" -m benchmarks.step_ab --config=configs/agw_baseline.py --batch=256 \
  --rounds=5 --steps=10 --warmup=3 --max_round_seconds=40 --peak_size=0 \
  --variant='fused_xla=config.model.fused_bn=xla' \
  --variant='fused_pallas=config.model.fused_bn=pallas' \
  --variant='no_graphs=xla.xla_gpu_enable_command_buffer=' \
  --out="$OUT/ab256.json"
log "=== done in $(( SECONDS - START ))s"
