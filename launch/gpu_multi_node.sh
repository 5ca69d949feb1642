#!/usr/bin/env bash
# Train on several GPU machines: run this once on EVERY node (one process per node).
#   COORDINATOR=10.0.0.1:12345 NUM_NODES=2 NODE_RANK=0 bash launch/gpu_multi_node.sh configs/sysu.py /shared/runs/sysu ...
#   COORDINATOR=10.0.0.1:12345 NUM_NODES=2 NODE_RANK=1 bash launch/gpu_multi_node.sh configs/sysu.py /shared/runs/sysu ...
# COORDINATOR is host:port of node 0, reachable from all nodes. WORKDIR must be storage every
# node sees (a shared file system or gs://BUCKET/...): checkpoints are written collectively.
# Each node reads the dataset from its own data.root and draws its own identities of every
# global batch. SIGTERM to any node stops all of them after the same step with a checkpoint;
# run the same commands again to resume. A node that dies ends the others (one error line,
# or after VIREID_HEARTBEAT_TIMEOUT_S seconds without its heartbeat, default 100).
# Under SLURM, use `srun` with one task per node instead: JAX detects SLURM by itself.
set -euo pipefail
CONFIG=${1:?usage: $0 CONFIG WORKDIR [--config.key=value ...]}
WORKDIR=${2:?usage: $0 CONFIG WORKDIR [--config.key=value ...]}
shift 2
export JAX_COORDINATOR_ADDRESS=${COORDINATOR:?set COORDINATOR=host:port of node 0}
export JAX_NUM_PROCESSES=${NUM_NODES:?set NUM_NODES}
export JAX_PROCESS_ID=${NODE_RANK:?set NODE_RANK (0..NUM_NODES-1)}
export TF_CPP_MIN_LOG_LEVEL=3 TF_ENABLE_ONEDNN_OPTS=0
exec python -m vireid_jax.main --config="$CONFIG" --workdir="$WORKDIR" "$@"
