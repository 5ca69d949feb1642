"""Data parallelism over every device of every host with `jax.sharding`.

One mesh axis, "data": parameters and optimiser state are replicated, each
batch array is split along its first axis. Under `jax.jit` BatchNorm then sees
the global batch (XLA inserts the all-reduces), so one device and N devices
compute the same step for the same global batch.
"""

from __future__ import annotations

import os
import sys

import jax
import numpy as np
from absl import logging
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from vireid_jax.errors import UserError

DATA_AXIS = "data"


HEARTBEAT_TIMEOUT_ENV = "VIREID_HEARTBEAT_TIMEOUT_S"
DEFAULT_HEARTBEAT_TIMEOUT_S = 100     # JAX's own default


def heartbeat_timeout_s() -> int:
  """Seconds after which a silent process counts as dead ($VIREID_HEARTBEAT_TIMEOUT_S).

  Every process then stops with an error instead of waiting for it forever in
  a collective. Lower it for a prompt end, raise it on a cluster whose network
  has long pauses.
  """
  text = os.environ.get(HEARTBEAT_TIMEOUT_ENV, "").strip()
  if not text:
    return DEFAULT_HEARTBEAT_TIMEOUT_S
  if not text.isdigit() or int(text) < 1:
    raise UserError(f"{HEARTBEAT_TIMEOUT_ENV}={text!r}: give a whole number of seconds >= 1 "
                    f"(default {DEFAULT_HEARTBEAT_TIMEOUT_S}).")
  return int(text)


def maybe_initialize_distributed() -> None:
  """Calls `jax.distributed.initialize()` on multi-process launches.

  Explicit launches (launch/gpu_multi_node.sh) set JAX_COORDINATOR_ADDRESS,
  JAX_NUM_PROCESSES and JAX_PROCESS_ID; Cloud TPU VMs and SLURM are detected
  by JAX itself. Single-process runs skip this. The processes watch each
  other through the coordination service's heartbeats (`heartbeat_timeout_s`).
  """
  env = os.environ
  kwargs = {}
  if env.get("JAX_COORDINATOR_ADDRESS"):
    kwargs["coordinator_address"] = env["JAX_COORDINATOR_ADDRESS"]
    if env.get("JAX_NUM_PROCESSES"):
      kwargs["num_processes"] = int(env["JAX_NUM_PROCESSES"])
    if env.get("JAX_PROCESS_ID"):
      kwargs["process_id"] = int(env["JAX_PROCESS_ID"])
  elif not (env.get("SLURM_NTASKS", "1") not in ("", "1")
            or env.get("TPU_WORKER_HOSTNAMES", "").count(",") > 0
            or env.get("MEGASCALE_COORDINATOR_ADDRESS")):
    return
  jax.distributed.initialize(heartbeat_timeout_seconds=heartbeat_timeout_s(), **kwargs)
  logging.info("jax.distributed: process %d of %d, %d local / %d global devices",
               jax.process_index(), jax.process_count(),
               jax.local_device_count(), jax.device_count())


def failed_computation_message(error: BaseException) -> str:
  """One line for a computation or barrier across processes that failed on this one.

  On several processes this is how a process that died shows on the others
  (a collective or a barrier with it fails: its connections close, or the
  coordination service misses its heartbeats).
  """
  text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
  text = text.rsplit("Error dispatching computation: ", 1)[-1]
  return (f"a computation across the {jax.process_count()} processes failed on process "
          f"{jax.process_index()}: {text[:400]}. If another process stopped (its log says why), "
          "start the same command on every host again: the run resumes from the latest "
          "checkpoint.")


def exit_now(status: int) -> None:
  """Ends this process at once, skipping JAX's shutdown barrier.

  After another process died, the barrier would wait for it until the
  heartbeat timeout and then abort, replacing the exit status and the one-line
  error with a crash report.
  """
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(status)  # pylint: disable=protected-access


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


SAME_WORKDIR = ("Every host must see the same --workdir: put it on storage that all of them "
                "share (a network file system or a gs:// bucket), and start every host with "
                "the same command.")


def agree_across_hosts(value: int, what: str, fix: str = SAME_WORKDIR) -> int:
  """`value` when every process has the same one; else UserError naming each host's, and `fix`.

  A barrier too: no process returns before every process has called it. One
  process: returns `value` at once.
  """
  if jax.process_count() == 1:
    return int(value)
  values = [int(v) for v in np.asarray(multihost_utils.process_allgather(np.int32(value)))]
  if len(set(values)) > 1:
    by_host = ", ".join(f"host {i}: {v}" for i, v in enumerate(values))
    raise UserError(f"The hosts do not agree on {what} ({by_host}). {fix}")
  return values[0]


def from_process_zero(value: float) -> float:
  """Process 0's `value` on every process (exactly: its float64 bits); `value` on one process.

  For decisions every process must take alike (which evaluation is the best,
  so which checkpoint every process saves), even if their numbers were to
  differ in the last bits.
  """
  if jax.process_count() == 1:
    return float(value)
  bits = np.array([value], np.float64).view(np.uint32)      # 32-bit words survive without x64
  return float(np.asarray(multihost_utils.broadcast_one_to_all(bits)).view(np.float64)[0])
