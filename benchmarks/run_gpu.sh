#!/usr/bin/env bash
# Training-step benchmark on one GPU: JAX (ours) vs a PyTorch reference, ~8 minutes in all.
#
#   OUT=bench_out bash benchmarks/run_gpu.sh
#
# Each framework/mode runs in its own process, one after the other (never two on
# the GPU at once), most important first: JAX AGW baseline, torch eager, JAX
# full model, torch compile, then torch eager full model if time is left. Each
# process rewrites its JSON after every batch size, so a timeout keeps what was
# measured. Everything lands in $OUT (at most 8 files): bench.log (all output),
# jax_agw.json, torch_eager.json, torch_compile.json, jax_full.json,
# torch_full.json, summary.txt.
#
# Knobs (environment): OUT, PYTHON (python3), STEPS (30), WARMUP (5),
# BUDGET_S (480: whole-script wall-clock budget; an item gets at most what is
# left and is skipped below its minimum; 560 still fits a 600 s command limit), JAX_BATCHES ("64 128 256"), TORCH_BATCHES ("64 128"),
# TORCH_COMPILE_BATCHES ("64"), TORCH_FULL_BATCHES ("64"; an empty list skips the
# item), EXTRA_ARGS (appended to every command), XLA_FLAGS (passed through).
# CPU dry run:  JAX_PLATFORMS=cpu JAX_BATCHES=16 TORCH_BATCHES=16 TORCH_COMPILE_BATCHES= \
#   TORCH_FULL_BATCHES=16 STEPS=2 WARMUP=1 PYTHON=.venv/bin/python \
#   EXTRA_ARGS="--image_size=64,64 --depth=18 --dtype=float32 --peak_size=64" bash benchmarks/run_gpu.sh
#
# XLA flags: none are set. The usual GPU flags (latency-hiding scheduler,
# collective combining) act on multi-GPU communication and do nothing on one
# GPU; cuDNN/cuBLAS autotuning is on by default. Pass XLA_FLAGS=... to try others.
set -uo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-./bench_out}
PY=${PYTHON:-python3}
STEPS=${STEPS:-30}
WARMUP=${WARMUP:-5}
BUDGET_S=${BUDGET_S:-480}
JAX_BATCHES=${JAX_BATCHES-64 128 256}
TORCH_BATCHES=${TORCH_BATCHES-64 128}
TORCH_COMPILE_BATCHES=${TORCH_COMPILE_BATCHES-64}
TORCH_FULL_BATCHES=${TORCH_FULL_BATCHES-64}
EXTRA_ARGS=${EXTRA_ARGS:-}
mkdir -p "$OUT"
rm -f "$OUT"/{jax_agw,torch_eager,torch_compile,jax_full,torch_full}.json "$OUT/summary.txt"
START=$SECONDS
# shellcheck source=benchmarks/gpu_lib.sh
. benchmarks/gpu_lib.sh
log_environment

# Flags shared by every process; EXTRA_ARGS (e.g. a CPU dry run's smaller sizes)
# comes last, so it wins.
# shellcheck disable=SC2206
COMMON=(--steps="$STEPS" --warmup="$WARMUP" --dtype=bfloat16 --image_size=288,144 --depth=50 $EXTRA_ARGS)

batch_flags() { local b; for b in $1; do printf -- '--batch=%s\n' "$b"; done; }
mapfile -t JB < <(batch_flags "$JAX_BATCHES")
mapfile -t TB < <(batch_flags "$TORCH_BATCHES")
mapfile -t CB < <(batch_flags "$TORCH_COMPILE_BATCHES")
mapfile -t FB < <(batch_flags "$TORCH_FULL_BATCHES")

run jax_agw 60 160 "$PY" -m benchmarks.step_speed --config=configs/agw_baseline.py \
  "${JB[@]}" "${COMMON[@]}" --out="$OUT/jax_agw.json"

(( ${#TB[@]} )) && run torch_eager 30 70 "$PY" -m benchmarks.torch_reference --mode=eager \
  --model=agw "${TB[@]}" "${COMMON[@]}" --out="$OUT/torch_eager.json"

run jax_full 60 180 "$PY" -m benchmarks.step_speed --config=configs/sysu.py \
  "${JB[@]}" "${COMMON[@]}" --out="$OUT/jax_full.json"

(( ${#CB[@]} )) && run torch_compile 60 150 "$PY" -m benchmarks.torch_reference --mode=compile \
  --model=agw "${CB[@]}" "${COMMON[@]}" --out="$OUT/torch_compile.json"

(( ${#FB[@]} )) && run torch_full 40 60 "$PY" -m benchmarks.torch_reference --mode=eager \
  --model=full "${FB[@]}" "${COMMON[@]}" --peak_size=0 --out="$OUT/torch_full.json"

finish "$OUT"/{jax_agw,torch_eager,torch_compile,jax_full,torch_full}.json
