#!/usr/bin/env bash
# The whole job on one GPU: `python -m vireid_jax.main` on a dataset of SYSU-MM01's size,
# against its training step alone, stopped by SIGTERM and resumed as on a preemptible machine.
#
#   bash benchmarks/whole_job.sh dataset        # the SYSU-MM01-size synthetic dataset, once
#   CONFIG=configs/agw_baseline.py NAME=agw bash benchmarks/whole_job.sh run
#
# `dataset` writes DATA (default ./workdirs/sysu_size) with the generator's SYSU-MM01
# layout at SYSU-MM01's size: 491 identities (296 train + 99 val = 395 trained on, 96 test),
# 14-28 images per (identity, camera), 320x160 sources (resized to 288x144 by the
# pipeline), in as many processes as there are cores.
#
# `run`, in one process after the other (never two on the GPU at once):
#   1. `python -m vireid_jax.main` of CONFIG on DATA for EPOCHS epochs of the real epoch
#      length, its periodic evaluations, a checkpoint every epoch and the final 10-trial
#      report: the first command ends by SIGTERM after each of STOPS seconds (`timeout`),
#      the same command resumes, the last one runs to the end;
#   2. `python -m benchmarks.step_speed` of CONFIG at its batch (64 images): the step alone;
#   3. `python -m benchmarks.whole_job_report`: images/s between log lines against the
#      step alone, start-up, evaluation, save and resume costs, host cores, the check that
#      the resumed run continues the interrupted one, and the whole recipe extrapolated
#      from these to the config's own number of epochs.
# GPU utilisation, SM clock, power and temperature are sampled by nvidia-smi every 200 ms
# during 1. With PROFILE_STEPS > 0
# the main job also writes a profile of that many steps, and `benchmarks.gpu_gaps`
# measures the GPU's idle time in it (needs TensorFlow's xplane proto).
#
# Files in OUT (default ./bench_out): NAME.log (all output), NAME_step.json, NAME_gpu.csv,
# NAME_summary.json, and the workdir's metrics.jsonl, results.json, config.json and
# run_info.jsonl as NAME_<file> (the report can be made again from them elsewhere).
# Knobs: OUT, PY, DATA, SCRATCH (workdirs, ./workdirs/whole_job), CONFIG, NAME, EPOCHS (4),
# RECIPE_EPOCHS (81: the epochs of the recipe the report extrapolates to),
# STOPS ("120": seconds; "" runs uninterrupted), STEP_STEPS (100), PROFILE_STEPS (0),
# EXTRA (more --config.KEY=VALUE for the main job), STEP_EXTRA (more flags for step_speed),
# STEP_FROM (a NAME_step.json of the same config measured before on this machine: reused
# instead of measuring the step again, for A/B runs of the main job in one call),
# KEEP_WORKDIR (1 keeps an existing workdir: resume it; default starts afresh).
# CPU dry run: see benchmarks/README.md ("The whole job").
set -uo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-./bench_out}
PY=${PY:-python3}
DATA=${DATA:-./workdirs/sysu_size}
SCRATCH=${SCRATCH:-./workdirs/whole_job}
CONFIG=${CONFIG:-configs/agw_baseline.py}
NAME=${NAME:-agw}
EPOCHS=${EPOCHS:-4}
RECIPE_EPOCHS=${RECIPE_EPOCHS:-81}
STOPS=${STOPS-120}
STEP_STEPS=${STEP_STEPS:-100}
PROFILE_STEPS=${PROFILE_STEPS:-0}
EXTRA=${EXTRA:-}
STEP_EXTRA=${STEP_EXTRA:-}
STEP_FROM=${STEP_FROM:-}
DATASET_ARGS=${DATASET_ARGS:---num_ids=491 --test_ids=96 --val_ids=99 --images_per_cam 14 28 --image_size 320 160}
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3

dataset() {
  if [[ -f "$DATA/.complete" ]]; then
    echo "dataset: $DATA exists ($(cat "$DATA/.complete"))"
    return
  fi
  local t0=$SECONDS
  # shellcheck disable=SC2086
  "$PY" -m vireid_jax.data.synthetic --layout=sysu --out="$DATA" --workers="$(nproc)" $DATASET_ARGS \
    || exit 1
  echo "dataset: $(find "$DATA" -name '*.jpg' | wc -l) images in $(( SECONDS - t0 )) s"
}

run() {
  mkdir -p "$OUT"
  local log="$OUT/$NAME.log" work="$SCRATCH/$NAME"
  : >"$log"
  [[ -f "$DATA/.complete" ]] || { echo "no dataset at $DATA: run '$0 dataset' first" | tee -a "$log"; exit 1; }
  [[ "${KEEP_WORKDIR:-0}" == 1 ]] || rm -rf "$work"
  mkdir -p "$SCRATCH"
  {
    echo "=== $(date -u +%FT%TZ) $NAME: $CONFIG, $EPOCHS epochs, SIGTERM after: ${STOPS:-never}"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null
    echo "host cores: $(nproc)"
  } | tee -a "$log"

  local sampler=""
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used,clocks.sm,power.draw,temperature.gpu \
      --format=csv,noheader,nounits \
      -lms 200 >"$OUT/${NAME}_gpu.csv" 2>/dev/null &
    sampler=$!
  fi
  # shellcheck disable=SC2206
  local cmd=("$PY" -m vireid_jax.main --config="$CONFIG" --workdir="$work"
             --config.data.root="$DATA" --config.model.pretrained=none
             --config.num_epochs="$EPOCHS" --config.profile_steps="$PROFILE_STEPS" $EXTRA)
  local stop n=0 t0 rc
  for stop in $STOPS ""; do
    n=$(( n + 1 ))
    t0=$EPOCHREALTIME
    if [[ -n "$stop" ]]; then
      echo "=== command $n, SIGTERM after ${stop} s: ${cmd[*]}" | tee -a "$log"
      timeout --preserve-status -s TERM "$stop" "${cmd[@]}" 2>&1 | tee -a "$log"
    else
      echo "=== command $n, to the end: ${cmd[*]}" | tee -a "$log"
      "${cmd[@]}" 2>&1 | tee -a "$log"
    fi
    rc=${PIPESTATUS[0]}
    echo "=== command $n: exit $rc, wall $(awk "BEGIN {printf \"%.1f\", $EPOCHREALTIME - $t0}") s" | tee -a "$log"
    if [[ -z "$stop" || "$rc" == 0 ]]; then break; fi
  done
  [[ -n "$sampler" ]] && kill "$sampler" 2>/dev/null
  # The workdir's small files, so that the report can be made again elsewhere.
  local f
  for f in metrics.jsonl results.json config.json run_info.jsonl; do
    cp "$work/$f" "$OUT/${NAME}_$f" 2>/dev/null
  done
  if [[ "$PROFILE_STEPS" -gt 0 ]]; then
    "$PY" -m benchmarks.gpu_gaps "$work/profile" 2>&1 | tee -a "$log"
  fi

  # After the main job, so that its first command starts with the compilation cache it
  # would have on a fresh machine (the step benchmark uses the cache too, for its init).
  if [[ -n "$STEP_FROM" ]]; then
    echo "=== step alone: measured before, $STEP_FROM" | tee -a "$log"
    cp "$STEP_FROM" "$OUT/${NAME}_step.json"
  else
    echo "=== step alone" | tee -a "$log"
    # shellcheck disable=SC2086
    JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-$HOME/.cache/vireid_jax/xla} \
      "$PY" -m benchmarks.step_speed --config="$CONFIG" --batch=64 --steps="$STEP_STEPS" \
      --warmup=5 --out="$OUT/${NAME}_step.json" $STEP_EXTRA 2>&1 | tee -a "$log"
  fi
  "$PY" -m benchmarks.whole_job_report --workdir="$work" --log="$log" \
    --step="$OUT/${NAME}_step.json" --gpu="$OUT/${NAME}_gpu.csv" \
    --recipe_epochs="$RECIPE_EPOCHS" --out="$OUT/${NAME}_summary.json" 2>&1 | tee -a "$log"
}

case "${1:-}" in
  dataset) dataset ;;
  run) run ;;
  *) echo "usage: $0 dataset | run   (knobs: see the top of this file)" >&2; exit 2 ;;
esac
