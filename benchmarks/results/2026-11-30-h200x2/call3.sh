#!/usr/bin/env bash
# Session 4, call 3 (nvidia-h200-x2). Phase A: GPU 0 AGW 64/256 new vs s2 (6d4e471), GPU 1 full
# model 64 new vs s2. Phase B: 2 GPUs, per-device BatchNorm, with the latency-hiding scheduler.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit 3
export PYTHONUNBUFFERED=1
R=/tmp/r; mkdir -p $R/a0 $R/a1 $R/b
ROOT=$PWD
T0=$SECONDS
C=(--steps=60 --warmup=5 --dtype=bfloat16 --image_size=288,144 --depth=50 --peak_size=0)
bench() {  # bench TREE NAME LIMIT ARGS...
  local tree=$1 name=$2 lim=$3; shift 3
  echo "=== $name t=$((SECONDS-T0))s"
  (cd "$tree" && timeout $lim python3 benchmarks/train_step.py "$@" "${C[@]}" --out=$R/$name.json) 2>&1 | grep -v "Delay kernel"
}
(export CUDA_VISIBLE_DEVICES=0
 bench $ROOT a0/new_agw 140 --config=configs/agw_baseline.py --batch=256 --batch=64
 bench $ROOT/benchold a0/s2_agw 140 --config=configs/agw_baseline.py --batch=256 --batch=64
) > $R/a0.log 2>&1 &
(export CUDA_VISIBLE_DEVICES=1
 bench $ROOT a1/new_full 130 --config=configs/sysu.py --batch=64
 bench $ROOT/benchold a1/s2_full 130 --config=configs/sysu.py --batch=64
) > $R/a1.log 2>&1 &
wait
echo "phase A done at $((SECONDS-T0))s"
tar czf $OUT/results.tgz -C $R .
XLA_FLAGS=--xla_gpu_enable_latency_hiding_scheduler=true OUT=$R/b ONE_GPU=0 EXTRAS=0 PER_DEVICE=64 \
  BUDGET_S=210 EXTRA_ARGS="--set model.sync_batchnorm=False" bash benchmarks/run_scaling.sh > $R/b.out 2>&1
echo "phase B done at $((SECONDS-T0))s"
tar czf $OUT/results.tgz -C $R .
cat $R/a0.log $R/a1.log | grep -E "^===|batch |Error|error"; grep -hE "batch |rc=|XLA_FLAGS" $R/b/bench.log
echo "all done at $((SECONDS-T0))s"
