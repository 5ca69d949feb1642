#!/usr/bin/env bash
# A/B of the main job on one GPU: `whole_job.sh run` of CONFIG once per variant, in the
# order given, uninterrupted; the step alone is measured with the first variant and reused.
#
#   VARIANTS="loop:--config.data.device_prefetch=0|thread:--config.data.device_prefetch=2" \
#     CONFIG=configs/agw_baseline.py NAME=agw EPOCHS=2 bash benchmarks/whole_job_ab.sh
#
# Each variant writes OUT/NAME_<variant>_summary.json and the rest of whole_job.sh's files;
# the other knobs (OUT, DATA, EPOCHS, ...) are whole_job.sh's.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-./bench_out}
NAME=${NAME:-agw}
IFS='|' read -ra variants <<< "${VARIANTS:?set VARIANTS=\"name:--config.KEY=VALUE ...|name:...\"}"
first=""
for v in "${variants[@]}"; do
  vname=${v%%:*}
  STOPS="" NAME="${NAME}_$vname" EXTRA="${v#*:}" STEP_FROM="$first" OUT="$OUT" \
    bash benchmarks/whole_job.sh run
  [[ -n "$first" ]] || first="$OUT/${NAME}_${vname}_step.json"
done
