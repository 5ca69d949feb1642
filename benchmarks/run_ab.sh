#!/usr/bin/env bash
# A/B of a code change on the GPU: the train step of an old and the new source tree, interleaved.
#
#   mkdir -p benchold && git archive REV | tar -x -C benchold     # here; then carry benchold
#   OLD=benchold OUT=bench_out bash benchmarks/run_ab.sh
#
# ROUNDS rounds; in each, for every item of ITEMS ("config:batch,batch"), one process of the
# old tree's step benchmark then one of the new tree's, labelled old/new. Interleaving
# spreads clock and temperature drift over both sides; the summary prints each run and "A/B
# MODEL, batch B: new/old images/s = R" (medians over rounds). Files in $OUT: bench.log,
# ab_<round>_<old|new>_<config>.json, summary.txt.
#
# Knobs (environment): OLD (required: a copy of the old tree), OUT, PYTHON (python3), ITEMS
# ("agw_baseline:64,256 sysu:64"), ROUNDS (2), STEPS (40), WARMUP (5), BUDGET_S (540),
# EXTRA_ARGS.
# CPU dry run: OLD=benchold JAX_PLATFORMS=cpu ITEMS=agw_baseline:16 ROUNDS=1 STEPS=2 WARMUP=1 \
#   PYTHON=$PWD/.venv/bin/python EXTRA_ARGS="--image_size=64,32 --depth=18 --dtype=float32" \
#   bash benchmarks/run_ab.sh
set -uo pipefail
cd "$(dirname "$0")/.."

: "${OLD:?set OLD to a copy of the old source tree (see the header)}"
OLD=$(cd "$OLD" && pwd) || exit 2
# The step benchmark of a tree: `-m benchmarks.step_speed`, or the script of trees older than
# the package layout.
step_cmd() {
  if [[ -f "$1/benchmarks/step_speed.py" ]]; then echo "-m benchmarks.step_speed"
  elif [[ -f "$1/benchmarks/train_step.py" ]]; then echo "benchmarks/train_step.py"
  else return 1; fi
}
step_cmd "$OLD" >/dev/null || { echo "$OLD has no benchmarks/step_speed.py"; exit 2; }
OUT=$(mkdir -p "${OUT:-./bench_out}" && cd "${OUT:-./bench_out}" && pwd)
PY=${PYTHON:-python3}
ITEMS=${ITEMS:-agw_baseline:64,256 sysu:64}
ROUNDS=${ROUNDS:-2}
STEPS=${STEPS:-40}
WARMUP=${WARMUP:-5}
BUDGET_S=${BUDGET_S:-540}
EXTRA_ARGS=${EXTRA_ARGS:-}
NEW=$PWD
rm -f "$OUT"/ab_*.json "$OUT/summary.txt"
START=$SECONDS
# shellcheck source=benchmarks/gpu_lib.sh
. benchmarks/gpu_lib.sh
log_environment
log "old tree: $OLD; new tree: $NEW"

# The summary's mode column says old/new (set here: an old tree's script may predate --label).
relabel() {
  [[ -s "$1" ]] && "$PY" -c 'import json, sys
path, label = sys.argv[1:]
report = json.load(open(path))
report["mode"] = label
json.dump(report, open(path, "w"), indent=2, sort_keys=True)' "$1" "$2"
}

# shellcheck disable=SC2206
COMMON=(--steps="$STEPS" --warmup="$WARMUP" --dtype=bfloat16 --image_size=288,144 --depth=50
        --peak_size=0 $EXTRA_ARGS)
for round in $(seq 1 "$ROUNDS"); do
  for item in $ITEMS; do
    cfg=${item%%:*}
    batches=()
    IFS=, read -ra sizes <<<"${item#*:}"
    for b in "${sizes[@]}"; do batches+=(--batch="$b"); done
    for side in old new; do
      tree=$OLD
      [[ $side == new ]] && tree=$NEW
      # Each side runs from its own root, so it imports its own vireid_jax.
      out="$OUT/ab_${round}_${side}_$cfg.json"
      # shellcheck disable=SC2046
      run "ab_${round}_${side}_$cfg" 60 200 bash -c 'cd "$1" && shift && exec "$@"' _ "$tree" \
        "$PY" $(step_cmd "$tree") --config="configs/$cfg.py" "${batches[@]}" "${COMMON[@]}" \
        --out="$out"
      relabel "$out" "$side"
    done
  done
done

finish "$OUT"/ab_*.json
