#!/usr/bin/env bash
# Train on every GPU of one machine (one process; JAX shards the batch over all GPUs).
#   bash launch/gpu_single_host.sh configs/sysu.py runs/sysu --config.data.root=/data/SYSU-MM01
# Restrict GPUs with CUDA_VISIBLE_DEVICES=0,1. The global batch (2*P*K images) must be
# divisible by the number of GPUs (the run refuses otherwise).
set -euo pipefail
CONFIG=${1:?usage: $0 CONFIG WORKDIR [--config.key=value ...]}
WORKDIR=${2:?usage: $0 CONFIG WORKDIR [--config.key=value ...]}
shift 2
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.9}
# Keep TensorFlow (tf.data only) off the GPUs.
export TF_CPP_MIN_LOG_LEVEL=3 TF_ENABLE_ONEDNN_OPTS=0
exec python -m vireid_jax.main --config="$CONFIG" --workdir="$WORKDIR" "$@"
