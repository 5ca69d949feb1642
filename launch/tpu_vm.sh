#!/usr/bin/env bash
# Cloud TPU VM (single host or pod slice): create, copy the code, install, run on all workers.
#   TPU_NAME=vireid ZONE=us-central2-b ACCELERATOR=v4-8 bash launch/tpu_vm.sh create
#   TPU_NAME=vireid ZONE=us-central2-b bash launch/tpu_vm.sh setup
#   TPU_NAME=vireid ZONE=us-central2-b bash launch/tpu_vm.sh train configs/sysu.py gs://BUCKET/runs/sysu \
#       --config.data.root=/mnt/data/SYSU-MM01
#   TPU_NAME=vireid ZONE=us-central2-b bash launch/tpu_vm.sh delete
# The dataset must be present on every worker, at the same local path (copy it with
# `gcloud compute tpus tpu-vm scp` or mount a disk); WORKDIR should be a gs:// path (the VM's
# service account needs write access to the bucket) or a disk every worker sees:
# checkpoints are written by all workers together, the other files by worker 0. JAX finds
# the other workers by itself on TPU VMs; a preemption notice (SIGTERM) on any worker stops
# all of them after the same step with a checkpoint, and `train` again resumes.
set -euo pipefail
: "${TPU_NAME:?set TPU_NAME}" "${ZONE:?set ZONE}"
ACCELERATOR=${ACCELERATOR:-v4-8}
VERSION=${TPU_SOFTWARE_VERSION:-tpu-ubuntu2204-base}
REPO_DIR=${REPO_DIR:-vireid_jax}
ssh_all() { gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone="$ZONE" --worker=all --command="$1"; }
case "${1:-}" in
  create)
    gcloud compute tpus tpu-vm create "$TPU_NAME" --zone="$ZONE" \
        --accelerator-type="$ACCELERATOR" --version="$VERSION" ;;
  setup)
    tar czf /tmp/vireid_src.tgz --exclude=.git --exclude=.venv --exclude=workdirs .
    gcloud compute tpus tpu-vm scp /tmp/vireid_src.tgz "$TPU_NAME":~/ --zone="$ZONE" --worker=all
    ssh_all "mkdir -p $REPO_DIR && tar xzf vireid_src.tgz -C $REPO_DIR && cd $REPO_DIR && \
      python3 -m venv .venv && . .venv/bin/activate && pip install -U pip && \
      pip install 'jax[tpu]' && pip install -r requirements.txt && pip install -e . --no-deps" ;;
  train)
    shift
    CONFIG=${1:?config}; WORKDIR=${2:?workdir}; shift 2
    # Quoted for the remote shell: overrides such as --config.data.image_size='(288, 144)'.
    ARGS=$(printf '%q ' --config="$CONFIG" --workdir="$WORKDIR" "$@")
    ssh_all "cd $REPO_DIR && . .venv/bin/activate && TF_CPP_MIN_LOG_LEVEL=3 \
      nohup python -m vireid_jax.main $ARGS > train.log 2>&1 &" ;;
  logs)
    gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone="$ZONE" --worker=0 --command="tail -n 50 $REPO_DIR/train.log" ;;
  delete)
    gcloud compute tpus tpu-vm delete "$TPU_NAME" --zone="$ZONE" --quiet ;;
  *)
    echo "usage: $0 create|setup|train CONFIG WORKDIR [overrides]|logs|delete" >&2; exit 2 ;;
esac
