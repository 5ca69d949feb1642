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

import os
from typing import Any

import jax
import orbax.checkpoint as ocp
from absl import logging

MAX_LISTED = 12    # mismatching keys named in an error; the rest are counted


class CheckpointMismatchError(ValueError):
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


class Checkpointer:
  """Saves and restores the train state (any pytree) of one workdir."""

  def __init__(self, workdir: str, keep: int = 2, async_save: bool = True):
    self.workdir = os.path.abspath(workdir)
    options = dict(enable_async_checkpointing=async_save, create=True,
                   cleanup_tmp_directories=True)
    # Naming the handler lets item_metadata() read a checkpoint before any restore.
    self.latest = ocp.CheckpointManager(
        os.path.join(self.workdir, "checkpoints"),
        item_handlers=ocp.StandardCheckpointHandler(),
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, **options))
    self.best = ocp.CheckpointManager(
        os.path.join(self.workdir, "best"),
        item_handlers=ocp.StandardCheckpointHandler(),
        options=ocp.CheckpointManagerOptions(
            max_to_keep=1, best_fn=lambda m: m["rank1"], best_mode="max",
            keep_checkpoints_without_metrics=False, **options))

  def latest_step(self) -> int | None:
    return self.latest.latest_step()

  def best_step(self) -> int | None:
    return self.best.best_step()

  def save(self, step: int, state: Any, force: bool = False) -> None:
    self.latest.save(step, args=ocp.args.StandardSave(state), force=force)

  def save_if_best(self, step: int, state: Any, rank1: float) -> bool:
    """Saves `state` under best/ when `rank1` beats every earlier evaluation."""
    prev = self.best.best_step()
    if prev is not None:
      prev_metrics = self.best.metrics(prev) if hasattr(self.best, "metrics") else None
      if prev_metrics is not None and rank1 <= prev_metrics.get("rank1", -1.0):
        return False
    self.best.save(step, args=ocp.args.StandardSave(state), metrics={"rank1": float(rank1)},
                   force=True)
    return True

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
    manager, step = self._resolve(which)
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, abstract_state)
    saved = self._saved_shapes(manager, step)
    if saved is not None:
      lines = describe_mismatch(saved, tree_shapes(abstract))
      if lines:
        raise CheckpointMismatchError(mismatch_message(manager.directory, step, lines))
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
    self.wait()
    self.latest.close()
    self.best.close()
    logging.info("Checkpoints closed.")
