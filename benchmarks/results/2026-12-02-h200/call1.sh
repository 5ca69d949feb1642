#!/usr/bin/env bash
# Device call 1 (one H200): BatchNorm sites alone, the lever A/B of the AGW step at batch 64,
# and the profile + optimised HLO of the plain step. Run from the repository root with the
# ml_collections / PyYAML wheels installed (README "On the device tool's machine").
set -uo pipefail
OUT=${OUT:-./bench_out}
PY=${PYTHON:-python3}
BUDGET_S=${BUDGET_S:-575}
mkdir -p "$OUT"
START=$SECONDS
. benchmarks/gpu_lib.sh
log_environment
# One compilation cache for the call: the profile reuses the A/B's plain executable.
export JAX_COMPILATION_CACHE_DIR=/tmp/jax_cache

run bn_sites 60 150 "$PY" -m benchmarks.bn_sites --batch=64 --impl=plain --impl=xla \
  --impl=pallas --detail=layer1_bn3 --detail=layer1_bn1 --detail=layer1_downsample_bn \
  --out="$OUT/bn_sites64.json"

run ab64 120 330 "$PY" -m benchmarks.step_ab --config=configs/agw_baseline.py --batch=64 \
  --rounds=7 --steps=20 --warmup=3 \
  --variant='fused_xla=config.model.fused_bn=xla' \
  --variant='fused_pallas=config.model.fused_bn=pallas' \
  --variant='remat=remat=conv' \
  --variant='no_graphs=xla.xla_gpu_enable_command_buffer=' \
  --variant='autotune0=xla.xla_gpu_autotune_level=0' \
  --out="$OUT/ab64.json"

run profile64 40 120 bash -c "\"$PY\" -m benchmarks.profile_step --config=configs/agw_baseline.py \
  --batch=64 --steps=10 --top=40 --hlo_out=/tmp/step64.hlo.txt --kernels_csv=\"$OUT/kernels64.csv\" \
  && \"$PY\" -m benchmarks.hlo_bytes /tmp/step64.hlo.txt --kernels_csv=\"$OUT/kernels64.csv\" --top=40 \
  && gzip -c /tmp/step64.hlo.txt > \"$OUT/step64.hlo.txt.gz\"" 
log "=== done in $(( SECONDS - START ))s"
