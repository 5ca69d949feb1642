r"""Entry point: `python -m vireid_jax.main --config=configs/sysu.py --workdir=DIR`.

Overrides: `--config.batch.identities=16 --config.model.dtype=float32` etc.;
an unknown key is an error. `--config.mode=eval` evaluates the best checkpoint
of DIR instead of training. Running the same command again in the same DIR
resumes from the latest checkpoint.
"""

from __future__ import annotations

import os
import sys

# TensorFlow (tf.data, CLU) must never take the GPU or spam the console.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from absl import app, flags, logging  # pylint: disable=g-import-not-at-top
from ml_collections import config_flags  # pylint: disable=g-import-not-at-top

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file (configs/*.py), with --config.key=value overrides.",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, summaries, results.")
flags.mark_flags_as_required(["config", "workdir"])


def hide_gpus_from_tensorflow() -> None:
  try:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    tf.config.set_visible_devices([], "GPU")
  except ImportError:
    pass


def main(argv) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  config = _CONFIG.value
  hide_gpus_from_tensorflow()
  import jax  # pylint: disable=g-import-not-at-top
  from vireid_jax.training import parallel, trainer  # pylint: disable=g-import-not-at-top
  parallel.maybe_initialize_distributed()
  logging.info("JAX %s: process %d/%d, devices: %s", jax.__version__, jax.process_index(),
               jax.process_count(), jax.devices())
  from vireid_jax.data.images import BadImageError  # pylint: disable=g-import-not-at-top
  if config.mode not in ("train", "eval"):
    raise app.UsageError(f"--config.mode={config.mode!r}: use train or eval.")
  try:
    if config.mode == "train":
      trainer.train_and_evaluate(config, _WORKDIR.value)
    else:
      trainer.evaluate_checkpoint(config, _WORKDIR.value)
  except (FileNotFoundError, BadImageError, trainer.NonFiniteLossError,
          trainer.checkpointing.CheckpointMismatchError) as e:
    user_error(e)
  except ValueError as e:
    if not str(e).startswith("Invalid config"):
      raise
    user_error(e)


def user_error(error: Exception) -> None:
  """Bad input (paths, data, config): the message says what to do; no traceback."""
  logging.error("%s: %s", type(error).__name__, error)
  print(f"\nerror: {error}", file=sys.stderr, flush=True)
  sys.exit(1)


def run() -> None:
  app.run(main)


if __name__ == "__main__":
  sys.exit(run())
