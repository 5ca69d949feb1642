#!/usr/bin/env bash
# Session 4, call 4 (nvidia-h200-x2): flax max-pool vs the phase max-pool, interleaved, AGW b256
# (GPU 0); full model b64 both, and a one-GPU profile of the AGW step at 256 (GPU 1).
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit 3
export PYTHONUNBUFFERED=1
R=/tmp/r; mkdir -p $R/a0 $R/a1
ROOT=$PWD
T0=$SECONDS
C=(--steps=60 --warmup=5 --dtype=bfloat16 --image_size=288,144 --depth=50 --peak_size=0)
bench() {  # bench TREE NAME LIMIT ARGS...
  local tree=$1 name=$2 lim=$3; shift 3
  echo "=== $name t=$((SECONDS-T0))s"
  (cd "$tree" && timeout $lim python3 benchmarks/train_step.py "$@" "${C[@]}" --out=$R/$name.json) 2>&1 | grep -v "Delay kernel"
}
(export CUDA_VISIBLE_DEVICES=0
 for i in 1 2; do
   bench $ROOT/bench_plan/t_flax a0/flax_agw_$i 70 --config=configs/agw_baseline.py --batch=256
   bench $ROOT a0/new_agw_$i 70 --config=configs/agw_baseline.py --batch=256
 done
) > $R/a0.log 2>&1 &
(export CUDA_VISIBLE_DEVICES=1
 bench $ROOT/bench_plan/t_flax a1/flax_full 75 --config=configs/sysu.py --batch=64
 bench $ROOT a1/new_full 75 --config=configs/sysu.py --batch=64
 echo "=== profile t=$((SECONDS-T0))s"
 (cd bench_plan/t_flax && timeout 90 python3 benchmarks/profile_step.py --config=configs/agw_baseline.py --batch=256 --top=25) 2>&1 | grep -v "Delay kernel"
) > $R/a1.log 2>&1 &
wait
tar czf $OUT/results.tgz -C $R .
cat $R/a0.log $R/a1.log | grep -vE "^JAX|^init"
echo "all done at $((SECONDS-T0))s"
