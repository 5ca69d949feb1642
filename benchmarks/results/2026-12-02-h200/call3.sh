#!/usr/bin/env bash
# Device call 3 (one H200): the lever A/B of the AGW step at batch 64 (one process,
# interleaved), then the PyTorch anchors: eager, torch.compile default and
# max-autotune-no-cudagraphs (one process each), all at batch 64.
set -uo pipefail
OUT=${OUT:-./bench_out}
PY=${PYTHON:-python3}
BUDGET_S=${BUDGET_S:-530}
mkdir -p "$OUT"
START=$SECONDS
. benchmarks/gpu_lib.sh
log_environment
# Variants share the model's init executable through the compilation cache.
export JAX_COMPILATION_CACHE_DIR=/tmp/jax_cache
COMMON=(--steps=30 --warmup=5 --dtype=bfloat16 --image_size=288,144 --depth=50)

run ab64 120 220 "$PY" -m benchmarks.step_ab --config=configs/agw_baseline.py --batch=64 \
  --rounds=7 --steps=20 --warmup=3 --max_round_seconds=30 \
  --variant='fused_xla=config.model.fused_bn=xla' \
  --variant='fused_pallas=config.model.fused_bn=pallas' \
  --variant='remat=remat=conv' \
  --variant='no_graphs=xla.xla_gpu_enable_command_buffer=' \
  --out="$OUT/ab64.json"
run torch_eager 30 50 "$PY" -m benchmarks.torch_reference --mode=eager --model=agw --batch=64 \
  "${COMMON[@]}" --peak_size=0 --out="$OUT/torch_eager.json"
run torch_compile 60 110 "$PY" -m benchmarks.torch_reference --mode=compile --model=agw \
  --batch=64 "${COMMON[@]}" --peak_size=0 --no_count_flops --out="$OUT/torch_compile.json"
run torch_compile_maxat 60 160 "$PY" -m benchmarks.torch_reference --mode=compile --model=agw \
  --compile_mode=max-autotune-no-cudagraphs --batch=64 "${COMMON[@]}" --peak_size=0 \
  --no_count_flops --out="$OUT/torch_compile_maxat.json"
finish "$OUT"/torch_eager.json "$OUT"/torch_compile.json "$OUT"/torch_compile_maxat.json
