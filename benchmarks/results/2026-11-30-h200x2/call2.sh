#!/usr/bin/env bash
# Session 4, call 2 (nvidia-h200-x2). Phase A: GPU 0 times the AGW step in four trees
# (s2 = 6d4e471, head = interior-pad max-pool, flax = flax pool, new = phase max-pool);
# GPU 1 times JAX vs torch on the full model and the sysu A/B s2 vs new. Phase B: 2 GPUs with
# per-device BatchNorm, then a 2-GPU profile.
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
 bench $ROOT/benchold a0/s2_agw 70 --config=configs/agw_baseline.py --batch=256
 bench $ROOT/bench_plan/t_head a0/head_agw 70 --config=configs/agw_baseline.py --batch=256
 bench $ROOT/bench_plan/t_flax a0/flax_agw 70 --config=configs/agw_baseline.py --batch=256
 bench $ROOT a0/new_agw 90 --config=configs/agw_baseline.py --batch=256 --batch=64
) > $R/a0.log 2>&1 &
(export CUDA_VISIBLE_DEVICES=1
 bench $ROOT a1/new_full 80 --config=configs/sysu.py --batch=64
 echo "=== torch full t=$((SECONDS-T0))s"
 timeout 60 python3 benchmarks/torch_reference.py --mode=eager --model=full --batch=64 "${C[@]}" --out=$R/a1/torch_full.json 2>&1
 bench $ROOT/benchold a1/s2_full 70 --config=configs/sysu.py --batch=64
) > $R/a1.log 2>&1 &
wait
echo "phase A done at $((SECONDS-T0))s"
tar czf $OUT/results.tgz -C $R .
OUT=$R/b ONE_GPU=0 EXTRAS=0 PER_DEVICE=64 BUDGET_S=190 EXTRA_ARGS="--set model.sync_batchnorm=False" \
  bash benchmarks/run_scaling.sh > $R/b.out 2>&1
echo "phase B done at $((SECONDS-T0))s"
tar czf $OUT/results.tgz -C $R .
timeout 100 python3 benchmarks/profile_step.py --config=configs/sysu.py --batch=128 --top=20 --set model.sync_batchnorm=False > $R/b/profile.txt 2>&1
tar czf $OUT/results.tgz -C $R .
cat $R/a0.log $R/a1.log | grep -E "^===|batch |Error|error" ; grep -hE "batch |rc=" $R/b/bench.log; cat $R/b/profile.txt | grep -v Delay | head -20
echo "all done at $((SECONDS-T0))s"
