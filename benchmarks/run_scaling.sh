#!/usr/bin/env bash
# Data-parallel scaling on one host: the train step on one GPU and on all N GPUs at the same
# per-device batch, in one call, plus the step's collectives and a profile on N GPUs.
#
#   OUT=bench_out bash benchmarks/run_scaling.sh          # e.g. on nvidia-h200-x2
#
# For each config: one process on GPU 0 (CUDA_VISIBLE_DEVICES=0) at the per-device batches,
# then one process on all GPUs at N x those batches; the summary prints "scaling MODEL, B
# images per device: N devices = F x one device (E% efficiency)". Then, on all GPUs for the
# full model at N x the first per-device batch: the collectives XLA put in the compiled step
# (collectives.txt) and a profiler trace summarised per kernel class, NCCL kernels included
# (profile.txt). Files in $OUT: bench.log, one_<cfg>.json, all_<cfg>.json, collectives.txt,
# profile.txt, summary.txt.
#
# Knobs (environment): OUT, PYTHON (python3), CONFIGS ("agw_baseline sysu"), PER_DEVICE
# ("64 128"), STEPS (30), WARMUP (5), BUDGET_S (540), EXTRA_ARGS (to every process, the profile's
# too), XLA_FLAGS (passed through), ONE_GPU (1; 0 skips the one-GPU runs, e.g. for a second
# setting of a model key that one GPU does not see), EXTRAS (1; 0 skips collectives and profile).
# CPU dry run (4 simulated devices):
#   XLA_FLAGS=--xla_force_host_platform_device_count=4 JAX_PLATFORMS=cpu NUM_DEVICES=4 \
#   ONE_DEVICE_XLA_FLAGS=--xla_force_host_platform_device_count=1 \
#   PER_DEVICE=16 STEPS=2 WARMUP=1 PYTHON=.venv/bin/python \
#   EXTRA_ARGS="--image_size=64,32 --depth=18 --dtype=float32" bash benchmarks/run_scaling.sh
set -uo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-./bench_out}
PY=${PYTHON:-python3}
CONFIGS=${CONFIGS:-agw_baseline sysu}
PER_DEVICE=${PER_DEVICE:-64 128}
STEPS=${STEPS:-30}
WARMUP=${WARMUP:-5}
BUDGET_S=${BUDGET_S:-540}
EXTRA_ARGS=${EXTRA_ARGS:-}
ONE_GPU=${ONE_GPU:-1}
EXTRAS=${EXTRAS:-1}
N=${NUM_DEVICES:-$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')}
mkdir -p "$OUT"
rm -f "$OUT"/{one,all}_*.json "$OUT"/{collectives,profile,summary}.txt
START=$SECONDS
# shellcheck source=benchmarks/gpu_lib.sh
. benchmarks/gpu_lib.sh
log_environment
if (( N < 2 )); then
  log "run_scaling.sh needs at least 2 devices, found ${N}."
  exit 2
fi

# shellcheck disable=SC2206
COMMON=(--steps="$STEPS" --warmup="$WARMUP" --dtype=bfloat16 --image_size=288,144 --depth=50
        --peak_size=0 $EXTRA_ARGS)
ONE=()
ALL=()
for b in $PER_DEVICE; do
  ONE+=(--batch="$b")
  ALL+=(--batch="$(( N * b ))")
done
first=${PER_DEVICE%% *}

for cfg in $CONFIGS; do
  # One GPU: CUDA_VISIBLE_DEVICES for GPUs; on simulated CPU devices the flag count is 1.
  # XLA_FLAGS must not be blank: XLA takes a non-flag value for a file name and aborts.
  one_flags="${XLA_FLAGS:-} ${ONE_DEVICE_XLA_FLAGS:-}"
  one_flags=$(echo $one_flags)
  (( ONE_GPU )) && run "one_$cfg" 60 150 env CUDA_VISIBLE_DEVICES=0 \
    ${one_flags:+XLA_FLAGS="$one_flags"} \
    "$PY" -m benchmarks.step_speed --config="configs/$cfg.py" "${ONE[@]}" "${COMMON[@]}" \
    --out="$OUT/one_$cfg.json"
  run "all_$cfg" 60 180 "$PY" -m benchmarks.step_speed --config="configs/$cfg.py" \
    "${ALL[@]}" "${COMMON[@]}" --out="$OUT/all_$cfg.json"
done

if (( EXTRAS )); then
  # shellcheck disable=SC2086
  run collectives 30 120 bash -c "\"$PY\" -m benchmarks.collectives --config=configs/sysu.py \
    --batch=$(( N * first )) --dtype=bfloat16 --image_size=288,144 --depth=50 --peak_size=0 \
    $EXTRA_ARGS > \"$OUT/collectives.txt\"; rc=\$?; cat \"$OUT/collectives.txt\"; exit \$rc"
  if [[ -z "${JAX_PLATFORMS:-}" || "${JAX_PLATFORMS}" == *gpu* || "${JAX_PLATFORMS}" == *cuda* ]]; then
    run profile 40 120 bash -c "\"$PY\" -m benchmarks.profile_step --config=configs/sysu.py \
      --batch=$(( N * first )) --top=25 $EXTRA_ARGS > \"$OUT/profile.txt\"; rc=\$?; cat \"$OUT/profile.txt\"; exit \$rc"
  fi
fi

finish "$OUT"/one_*.json "$OUT"/all_*.json
