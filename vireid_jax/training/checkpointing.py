"""Orbax checkpoints: periodic ones for resuming, and the best by Rank-1.

Two managers under the workdir: `checkpoints/` (the latest few, for resuming
after a stop) and `best/` (one, the highest evaluation Rank-1). Saves are
asynchronous; orbax writes into a temporary folder and renames it when
complete, so a write interrupted half-way is never taken as the latest.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp
from absl import logging


class Checkpointer:
  """Saves and restores the train state (any pytree) of one workdir."""

  def __init__(self, workdir: str, keep: int = 2, async_save: bool = True):
    self.workdir = os.path.abspath(workdir)
    options = dict(enable_async_checkpointing=async_save, create=True)
    self.latest = ocp.CheckpointManager(
        os.path.join(self.workdir, "checkpoints"),
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, **options))
    self.best = ocp.CheckpointManager(
        os.path.join(self.workdir, "best"),
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
      ValueError: naming the mismatching keys, for a checkpoint of another model.
    """
    self.wait()
    manager, step = self._resolve(which)
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, abstract_state)
    try:
      restored = manager.restore(step, args=ocp.args.StandardRestore(abstract))
    except (ValueError, KeyError, TypeError) as e:
      raise ValueError(self._mismatch_message(manager, step, abstract, e)) from e
    return restored, step

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

  @staticmethod
  def _mismatch_message(manager, step, abstract, error) -> str:
    try:
      meta = manager.item_metadata(step)
      saved = {jax.tree_util.keystr(k) for k, _ in
               jax.tree_util.tree_flatten_with_path(meta)[0]}
      wanted = {jax.tree_util.keystr(k) for k, _ in
                jax.tree_util.tree_flatten_with_path(abstract)[0]}
      missing = sorted(wanted - saved)[:10]
      extra = sorted(saved - wanted)[:10]
      detail = f" Keys the model has but the checkpoint lacks: {missing}; keys only in the checkpoint: {extra}."
    except Exception:  # pylint: disable=broad-except
      detail = ""
    return (f"Checkpoint at step {step} in {manager.directory} does not fit this "
            f"model config ({type(error).__name__}: {error}).{detail} Use the "
            "config the checkpoint was trained with, or a new --workdir.")

  def wait(self) -> None:
    self.latest.wait_until_finished()
    self.best.wait_until_finished()

  def close(self) -> None:
    self.wait()
    self.latest.close()
    self.best.close()
    logging.info("Checkpoints closed.")
