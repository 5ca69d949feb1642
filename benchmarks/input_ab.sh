#!/usr/bin/env bash
# The main job's training speed under input-pipeline variants, fresh and resumed.
#
#   VARIANTS="default:|fixed16:--config.data.num_parallel_calls=16" \
#     bash benchmarks/input_ab.sh
#
# For each variant (NAME:EXTRA-FLAGS, separated by "|"), `python -m vireid_jax.main` of
# CONFIG on DATA (see whole_job.sh: `bash benchmarks/whole_job.sh dataset`) runs from a
# fresh workdir for FIRST seconds, is stopped by SIGTERM, and the same command resumes it
# for SECOND seconds. Prints per variant and command the images/s between log lines
# (median), the loop's input wait and the host cores busy, from metrics.jsonl; OUT/NAME.log
# keeps the console. The first variant also pays the compilation (empty cache): give it
# a longer FIRST0. The flags of the variant whose slower command was fastest go to
# SCRATCH/best_extra.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-./bench_out}
PY=${PY:-python3}
DATA=${DATA:-./workdirs/sysu_size}
SCRATCH=${SCRATCH:-./workdirs/input_ab}
CONFIG=${CONFIG:-configs/agw_baseline.py}
FIRST=${FIRST:-50}
FIRST0=${FIRST0:-$FIRST}
SECOND=${SECOND:-50}
VARIANTS=${VARIANTS:-"default:|fixed16:--config.data.num_parallel_calls=16"}
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3
mkdir -p "$OUT" "$SCRATCH"
[[ -f "$DATA/.complete" ]] || { echo "no dataset at $DATA: run benchmarks/whole_job.sh dataset"; exit 1; }

summarise() {   # workdir, first step of the command -> "img/s, input wait, cores"
  # whole_job_report's interval statistics of that command (its first, warm-up, interval out)
  "$PY" - "$1" "$2" <<'PYEOF'
import json, os, sys
from benchmarks.whole_job_report import read_jsonl, speed
workdir, start = sys.argv[1], int(sys.argv[2])
with open(os.path.join(workdir, "config.json")) as f:
  batch = json.load(f)["batch"]
rows = [r for r in read_jsonl(os.path.join(workdir, "metrics.jsonl")) if r["step"] > start]
m = speed(rows, 2 * batch["identities"] * batch["instances"], [start])
if not m:
  sys.exit(print("no intervals"))
print(f"{m['images_per_s_median']:,.0f} images/s (median of {m['intervals']}), input wait "
      f"{100 * m['input_wait_median']:.0f}%, host cores {m['host_cpu_cores_median']:.1f}")
PYEOF
}

IFS='|' read -r -a variants <<<"$VARIANTS"
first=$FIRST0
best="" best_rate=0
for v in "${variants[@]}"; do
  name=${v%%:*}; extra=${v#*:}
  work="$SCRATCH/$name"; rm -rf "$work"
  # shellcheck disable=SC2206
  cmd=("$PY" -m vireid_jax.main --config="$CONFIG" --workdir="$work" --config.data.root="$DATA"
       --config.model.pretrained=none --config.num_epochs=4 --config.eval.every_epochs=0 $extra)
  : >"$OUT/$name.log"
  timeout --preserve-status -s TERM "$first" "${cmd[@]}" >>"$OUT/$name.log" 2>&1
  stopped=$("$PY" -c "import json,sys; print(max(json.loads(l)['step'] for l in open(sys.argv[1])))" "$work/metrics.jsonl")
  fresh=$(summarise "$work" 0)
  echo "$name fresh:   $fresh"
  timeout --preserve-status -s TERM "$SECOND" "${cmd[@]}" >>"$OUT/$name.log" 2>&1
  resumed=$(summarise "$work" "$stopped")
  echo "$name resumed: $resumed"
  slower=$("$PY" -c "import sys; print(min(float(a.split()[0].replace(',', '')) for a in sys.argv[1:]))" \
           "$fresh" "$resumed" 2>/dev/null || echo 0)
  if awk "BEGIN {exit !($slower > $best_rate)}"; then best=$extra best_rate=$slower; fi
  first=$FIRST
done
echo "$best" >"$SCRATCH/best_extra"
echo "best: ${best:-(defaults)} at $best_rate images/s (the slower of its two commands)"
