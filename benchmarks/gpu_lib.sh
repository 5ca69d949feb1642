# Shared by the GPU benchmark scripts (sourced, not run): a log and a budgeted runner.
#
# The sourcing script sets OUT, BUDGET_S and START=$SECONDS first; after sourcing,
# LOG is $OUT/bench.log and FAILED lists the items that failed or were skipped.

LOG="$OUT/bench.log"
: >"$LOG"
FAILED=()
export PYTHONUNBUFFERED=1

log() { echo "$*" | tee -a "$LOG"; }

# run NAME MIN_S MAX_S CMD...: runs CMD under a time limit of min(MAX_S, what is
# left of the budget minus 20 s for the summary); skips it when less than MIN_S is left.
# Each item is its own process, so no two frameworks or runs share the GPU's memory.
run() {
  local name=$1 min_s=$2 max_s=$3
  shift 3
  local left=$(( BUDGET_S - (SECONDS - START) - 20 ))
  if (( left < min_s )); then
    log "=== $name: SKIPPED (${left}s of budget left, needs ${min_s}s)"
    FAILED+=("$name(skipped)")
    return
  fi
  local limit=$(( left < max_s ? left : max_s ))
  log "=== $name (limit ${limit}s, t=$(( SECONDS - START ))s): $*"
  local t0=$SECONDS
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$LOG"
  local rc=${PIPESTATUS[0]}
  log "=== $name: rc=$rc in $(( SECONDS - t0 ))s"
  if (( rc != 0 )); then FAILED+=("$name(rc=$rc)"); fi
}

# The machine and the package versions, at the top of the log.
log_environment() {
  log "=== environment ($(date -u +%FT%TZ))"
  nvidia-smi --query-gpu=index,name,driver_version,memory.total,clocks.max.sm,power.limit \
    --format=csv 2>&1 | tee -a "$LOG"
  nvidia-smi topo -m 2>/dev/null | head -12 | tee -a "$LOG"
  "$PY" - 2>&1 <<'PYEOF' | tee -a "$LOG"
import importlib.metadata as md, os, platform
names = ("jax", "jaxlib", "jax-cuda13-plugin", "jax-cuda12-plugin", "flax", "optax",
         "orbax-checkpoint", "ml-collections", "torch", "torchvision", "numpy")
found = []
for n in names:
  try:
    found.append(f"{n} {md.version(n)}")
  except md.PackageNotFoundError:
    pass
print("python", platform.python_version(), "|", ", ".join(found))
print("XLA_FLAGS=" + repr(os.environ.get("XLA_FLAGS", "")), "PYTHONPATH=" + repr(os.environ.get("PYTHONPATH", "")))
PYEOF
}

# Ends the script: the table of the JSON reports given, then the list of what failed.
finish() {
  log "=== summary (t=$(( SECONDS - START ))s)"
  local reports=() f
  for f in "$@"; do [[ -s "$f" ]] && reports+=("$f"); done
  if (( ${#reports[@]} )); then
    "$PY" -m benchmarks.summarize "${reports[@]}" 2>&1 | tee "$OUT/summary.txt" | tee -a "$LOG"
  fi
  if (( ${#FAILED[@]} )); then
    log "NOT COMPLETE: ${FAILED[*]}" | tee -a "$OUT/summary.txt"
    exit 1
  fi
  log "all items complete in $(( SECONDS - START ))s"
}
