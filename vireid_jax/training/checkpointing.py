"""Orbax checkpoints: periodic ones for resuming, and the best by Rank-1.

Two managers under the workdir: `checkpoints/` (the latest few, for resuming
after a stop) and `best/` (one, the highest evaluation Rank-1). Saves are
asynchronous; orbax writes each step into `<step>.orbax-checkpoint-tmp-<time>`
and renames it to `<step>` only when every file is written (on object stores,
where renames are not atomic, it writes `commit_success.txt` last). A write
interrupted half-way (SIGKILL, crash, full disk) is therefore never listed as
a step: the previous complete checkpoint stays the latest, and the leftover
temporary folder is deleted when the next run opens the workdir.

Before restoring, the saved tree (names and shapes, from the checkpoint's
metadata) is compared with the state the current config builds, so a
checkpoint of another model fails with the list of keys that differ instead
of a bare shape error from the storage layer.
"""

from __future__ import annotations

from typing import Any

import jax
import orbax.checkpoint as ocp
from absl import logging

from vireid_jax import fileio
from vireid_jax.errors import UserError

MAX_LISTED = 12    # mismatching keys named in an error; the rest are counted


class CheckpointMismatchError(UserError, ValueError):
  """A checkpoint whose arrays do not fit the train state of the current config."""


def key_name(path) -> str:
  """'params/trunk/conv1/kernel' for a pytree key path (dict keys, attributes, indices)."""
  parts = []
  for k in path:
    for attr in ("key", "name", "idx"):
      if hasattr(k, attr):
        parts.append(str(getattr(k, attr)))
        break
    else:
      parts.append(str(k))
  return "/".join(parts)


def tree_shapes(tree) -> dict[str, tuple[int, ...]]:
  """{key name: shape} of every leaf (arrays, ShapeDtypeStructs or orbax metadata)."""
  leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {key_name(p): tuple(getattr(leaf, "shape", ())) for p, leaf in leaves}


def _listing_order(key: str) -> tuple[int, str]:
  """Parameters first, optimiser state (which mirrors them) last."""
  top = key.split("/", 1)[0]
  return ({"params": 0, "opt_state": 2}.get(top, 1), key)


def describe_mismatch(saved: dict[str, tuple], wanted: dict[str, tuple]) -> list[str]:
  """One line per key whose presence or shape differs between a checkpoint and a model."""
  lines = []
  for k in sorted(saved.keys() | wanted.keys(), key=_listing_order):
    if k not in saved:
      lines.append(f"{k}: only in this config {wanted[k]}")
    elif k not in wanted:
      lines.append(f"{k}: only in the checkpoint {saved[k]}")
    elif saved[k] != wanted[k]:
      lines.append(f"{k}: checkpoint {saved[k]}, this config {wanted[k]}")
  return lines


def mismatch_message(directory, step: int, lines: list[str], cause: str = "") -> str:
  shown = lines[:MAX_LISTED]
  more = f"\n  ... and {len(lines) - len(shown)} more" if len(lines) > len(shown) else ""
  cause = f" ({cause})" if cause else ""
  return (f"Checkpoint at step {step} in {directory} was made with another model config"
          f"{cause}; {len(lines)} key(s) differ:\n  " + "\n  ".join(shown) + more +
          "\nUse the config the checkpoint was trained with (its workdir's config.json), "
          "or a new --workdir.")


class _Manager(ocp.CheckpointManager):
  """orbax's manager, minus its own calls to JAX's preemption sync point.

  On several processes the training loop alone asks JAX whether the hosts
  reached the step to stop at (`periodic.StopRequest`), once per step and in
  step order; orbax would ask too, from its save threads and with checkpoint
  steps, moving JAX's per-process counter backwards. The loop saves on a stop
  request itself (`force=True`), so orbax needs no answer.
  """

  def reached_preemption(self, step: int) -> bool:
    del step
    return False


class Checkpointer:
  """Saves and restores the train state (any pytree) of one workdir.

  Each periodic checkpoint carries a small JSON record beside the arrays
  (orbax's per-step custom metadata): which evaluations the run has done and
  its best one so far, so a resumed run continues the evaluation history of
  the uninterrupted one (`trainer.RunRecord`).

  `read_only=True` opens the folders without creating them or deleting the
  leftovers of an interrupted write: for checks before a start is accepted,
  and for evaluating a finished run.
  """

  def __init__(self, workdir: fileio.PathLike, keep: int = 2, async_save: bool = True,
               read_only: bool = False):
    self.workdir = fileio.as_path(workdir)     # a folder or a URL, handed to orbax as it is
    # Old checkpoints are deleted in the background: a save costs the training loop
    # only the copy of the state off the devices.
    options = dict(enable_async_checkpointing=async_save, create=not read_only,
                   cleanup_tmp_directories=not read_only,
                   enable_background_delete=async_save and not read_only)

    def multiprocessing(name):
      # On several processes each manager synchronises through barriers named by step:
      # a prefix per manager keeps a step saved into both folders from clashing.
      return ocp.options.MultiprocessingOptions(barrier_sync_key_prefix=name)
    # Naming the handler lets item_metadata() read a checkpoint before any restore.
    self.latest = _Manager(
        self.workdir / "checkpoints",
        item_handlers=ocp.StandardCheckpointHandler(),
        options=ocp.CheckpointManagerOptions(
            max_to_keep=keep, multiprocessing_options=multiprocessing("checkpoints"), **options))
    # Orbax keeps the one with the highest Rank-1; we only offer it a checkpoint
    # that is strictly better than every earlier evaluation (as the reference code
    # does), which also spares writing one that would be deleted at once.
    self.best = _Manager(
        self.workdir / "best",
        item_handlers=ocp.StandardCheckpointHandler(),
        options=ocp.CheckpointManagerOptions(
            max_to_keep=1, best_fn=lambda m: m["rank1"], best_mode="max",
            keep_checkpoints_without_metrics=False,
            multiprocessing_options=multiprocessing("best"), **options))

  def latest_step(self) -> int | None:
    return self.latest.latest_step()

  def best_step(self) -> int | None:
    return self.best.best_step()

  def save(self, step: int, state: Any, record: dict | None = None) -> None:
    """Saves `state` as step `step` of checkpoints/, with `record` (JSON) beside it."""
    self.latest.save(step, args=ocp.args.StandardSave(state), force=True,
                     custom_metadata=dict(record or {}))

  def save_best(self, step: int, state: Any, rank1: float) -> None:
    """Saves `state` under best/ (the caller decided it beats every earlier evaluation)."""
    if step in self.best.all_steps():   # written before an interruption: the same state
      return
    self.best.save(step, args=ocp.args.StandardSave(state), metrics={"rank1": float(rank1)},
                   force=True)

  def record(self, step: int) -> dict:
    """The JSON record saved with checkpoint `step` ({} for checkpoints without one)."""
    try:
      meta = self.latest.metadata(step)
    except Exception:  # pylint: disable=broad-except
      return {}
    return dict(getattr(meta, "custom_metadata", None) or {})

  def check_compatible(self, abstract_state: Any, which: str | int = "latest") -> None:
    """Raises CheckpointMismatchError if checkpoint `which` does not fit `abstract_state`."""
    manager, step = self._resolve(which)
    saved = self._saved_shapes(manager, step)
    if saved is not None:
      wanted = tree_shapes(jax.tree.map(ocp.utils.to_shape_dtype_struct, abstract_state))
      lines = describe_mismatch(saved, wanted)
      if lines:
        raise CheckpointMismatchError(mismatch_message(manager.directory, step, lines))

  def restore(self, abstract_state: Any, which: str | int = "latest") -> tuple[Any, int]:
    """Restores into the structure and shardings of `abstract_state`.

    Args:
      abstract_state: a pytree of jax.ShapeDtypeStruct (with shardings) or arrays.
      which: "latest", "best" or a step number of checkpoints/.
    Raises:
      FileNotFoundError: when there is no such checkpoint.
      CheckpointMismatchError: naming the keys that differ, for a checkpoint
        of another model config.
    """
    self.wait()
    self.check_compatible(abstract_state, which)
    manager, step = self._resolve(which)
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, abstract_state)
    try:
      restored = manager.restore(step, args=ocp.args.StandardRestore(abstract))
    except (ValueError, KeyError, TypeError) as e:
      raise CheckpointMismatchError(mismatch_message(
          manager.directory, step, ["(the checkpoint's metadata could not be compared)"],
          cause=f"{type(e).__name__}: {e}")) from e
    return restored, step

  @staticmethod
  def _saved_shapes(manager, step: int) -> dict[str, tuple] | None:
    """Key names and shapes stored in a checkpoint; None if its metadata is unreadable."""
    try:
      meta = manager.item_metadata(step)
    except Exception as e:  # pylint: disable=broad-except
      logging.warning("Cannot read the metadata of checkpoint %d (%s); restoring unchecked.",
                      step, e)
      return None
    tree = getattr(meta, "tree", meta)
    return tree_shapes(tree) if tree is not None else None

  def _resolve(self, which):
    if which == "best":
      step = self.best.best_step()
      if step is None:
        raise FileNotFoundError(
            f"No best checkpoint in {self.workdir}/best (no evaluation has run "
            "yet). Use --config.eval.checkpoint=latest, or train first.")
      return self.best, step
    if which == "latest":
      step = self.latest.latest_step()
      if step is None:
        raise FileNotFoundError(
            f"No checkpoint in {self.workdir}/checkpoints. Train first with "
            "--config.mode=train and the same --workdir.")
      return self.latest, step
    step = int(which)
    if step not in self.latest.all_steps() and step in self.best.all_steps():
      return self.best, step
    if step not in self.latest.all_steps():
      raise FileNotFoundError(
          f"No checkpoint at step {step} in {self.workdir}; available: "
          f"{sorted(self.latest.all_steps())} (checkpoints/), "
          f"{sorted(self.best.all_steps())} (best/).")
    return self.latest, step

  def wait(self) -> None:
    self.latest.wait_until_finished()
    self.best.wait_until_finished()

  def close(self) -> None:
    """Waits for saves in flight, then releases the managers."""
    self.wait()
    self.latest.close()
    self.best.close()
