"""Data parallelism over every device of every host with `jax.sharding`.

One mesh axis, "data": parameters and optimiser state are replicated, each
batch array is split along its first axis. Under `jax.jit` BatchNorm then sees
the global batch (XLA inserts the all-reduces), so one device and N devices
compute the same step for the same global batch.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from absl import logging
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def maybe_initialize_distributed() -> None:
  """Calls `jax.distributed.initialize()` on multi-process launches.

  Explicit launches (launch/gpu_multi_node.sh) set JAX_COORDINATOR_ADDRESS,
  JAX_NUM_PROCESSES and JAX_PROCESS_ID; Cloud TPU VMs and SLURM are detected
  by JAX itself. Single-process runs skip this.
  """
  env = os.environ
  if env.get("JAX_COORDINATOR_ADDRESS"):
    kwargs = {}
    if env.get("JAX_NUM_PROCESSES"):
      kwargs["num_processes"] = int(env["JAX_NUM_PROCESSES"])
    if env.get("JAX_PROCESS_ID"):
      kwargs["process_id"] = int(env["JAX_PROCESS_ID"])
    jax.distributed.initialize(coordinator_address=env["JAX_COORDINATOR_ADDRESS"], **kwargs)
  elif (env.get("SLURM_NTASKS", "1") not in ("", "1")
        or env.get("TPU_WORKER_HOSTNAMES", "").count(",") > 0
        or env.get("MEGASCALE_COORDINATOR_ADDRESS")):
    jax.distributed.initialize()
  else:
    return
  logging.info("jax.distributed: process %d of %d, %d local / %d global devices",
               jax.process_index(), jax.process_count(),
               jax.local_device_count(), jax.device_count())


def make_mesh(devices=None) -> Mesh:
  devices = np.asarray(devices if devices is not None else jax.devices())
  return Mesh(devices.reshape(-1), (DATA_AXIS,),
              axis_types=(jax.sharding.AxisType.Auto,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA_AXIS))


def to_global_batch(local_batch: dict, mesh: Mesh) -> dict:
  """Host-local numpy arrays -> global jax.Arrays sharded on "data".

  Each modality stays its own array, so visible and infrared rows are never
  mixed when per-host slices are stitched together on multi-host runs.
  """
  sharding = batch_sharded(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
          for k, v in local_batch.items()}
