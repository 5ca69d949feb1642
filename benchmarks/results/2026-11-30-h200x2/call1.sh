#!/usr/bin/env bash
# Session 4, call 1 on nvidia-h200-x2: phase A runs two one-GPU jobs side by side (GPU 0: the
# max-pool A/B; GPU 1: JAX vs PyTorch incl. the full model), phase B the 2-GPU scaling.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit 3
env | grep -E 'NCCL|MULTICAST|NVSHMEM' 
R=/tmp/r; mkdir -p $R/ab $R/gpu1 $R/scale
T0=$SECONDS
(CUDA_VISIBLE_DEVICES=0 OLD=benchold OUT=$R/ab ROUNDS=1 BUDGET_S=${A_S:-245} bash benchmarks/run_ab.sh > $R/ab.out 2>&1) &
(CUDA_VISIBLE_DEVICES=1 OUT=$R/gpu1 BUDGET_S=${A_S:-245} JAX_BATCHES="64" TORCH_BATCHES="64" \
  TORCH_COMPILE_BATCHES="64" TORCH_FULL_BATCHES="64" bash benchmarks/run_gpu.sh > $R/gpu1.out 2>&1) &
wait
echo "phase A done at $((SECONDS-T0))s"
tar czf $OUT/results.tgz -C $R .
OUT=$R/scale PER_DEVICE=64 BUDGET_S=${B_S:-290} bash benchmarks/run_scaling.sh > $R/scale.out 2>&1
echo "phase B done at $((SECONDS-T0))s"
tar czf $OUT/results.tgz -C $R .
for f in $R/ab/summary.txt $R/gpu1/summary.txt $R/scale/summary.txt; do echo "== $f"; cat $f; done
grep -h "=== .*rc=\|SKIPPED" $R/*/bench.log
