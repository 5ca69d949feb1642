#!/usr/bin/env bash
# Device call 3 (one H200): PyTorch anchors (eager; torch.compile in its default mode and in
# max-autotune-no-cudagraphs, one process each) and the full model's A/B at batch 64 and 256.
set -uo pipefail
OUT=${OUT:-./bench_out}
PY=${PYTHON:-python3}
BUDGET_S=${BUDGET_S:-575}
mkdir -p "$OUT"
START=$SECONDS
. benchmarks/gpu_lib.sh
log_environment
COMMON=(--steps=30 --warmup=5 --dtype=bfloat16 --image_size=288,144 --depth=50)

run torch_eager 30 60 "$PY" -m benchmarks.torch_reference --mode=eager --model=agw --batch=64 \
  --batch=128 "${COMMON[@]}" --out="$OUT/torch_eager.json"
run torch_compile 60 130 "$PY" -m benchmarks.torch_reference --mode=compile --model=agw \
  --batch=64 "${COMMON[@]}" --peak_size=0 --out="$OUT/torch_compile.json"
run full_ab 120 230 "$PY" -m benchmarks.step_ab --config=configs/sysu.py --batch=64 --batch=256 \
  --rounds=5 --steps=10 --warmup=3 --max_round_seconds=30 \
  --variant='fused_pallas=config.model.fused_bn=pallas' --out="$OUT/full_ab.json"
run torch_full 25 50 "$PY" -m benchmarks.torch_reference --mode=eager --model=full --batch=64 \
  "${COMMON[@]}" --peak_size=0 --out="$OUT/torch_full.json"
run torch_compile_maxat 60 240 "$PY" -m benchmarks.torch_reference --mode=compile --model=agw \
  --compile_mode=max-autotune-no-cudagraphs --batch=64 "${COMMON[@]}" --peak_size=0 \
  --out="$OUT/torch_compile_maxat.json"
finish "$OUT"/torch_eager.json "$OUT"/torch_compile.json "$OUT"/torch_compile_maxat.json \
  "$OUT"/torch_full.json
