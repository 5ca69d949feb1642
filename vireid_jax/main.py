r"""vireid_jax: visible-infrared person re-identification in JAX.

Train, or resume (the same command again continues from the latest checkpoint):
  python -m vireid_jax.main --config=configs/sysu.py --workdir=runs/sysu \
      --config.data.root=/data/SYSU-MM01 --config.model.pretrained=resnet50.npz
The CPU demo (a synthetic dataset in the SYSU-MM01 layout, about 6 minutes):
  python -m vireid_jax.main --config=configs/synthetic.py --workdir=workdirs/demo
Evaluate a run again, with its own config and other evaluation settings:
  python -m vireid_jax.main --config=configs/sysu.py --workdir=runs/sysu \
      --config.mode=eval --config.eval.rerank=True
The tests:
  python -m pytest -q -n 2 tests

Flags:
  --config=FILE[:ARG]   a file of configs/: one per dataset (the full method),
                        agw_baseline.py[:DATASET], caj_baseline.py[:DATASET],
                        ablation.py:ROW[,DATASET], synthetic.py
  --config.KEY=VALUE    change any config key; every key, its default and its allowed
                        values: vireid_jax/config_defaults.py
  --workdir=DIR         checkpoints, summaries and results of the run
  --compilation_cache=DIR  compiled programs kept for the next start (default
                        ~/.cache/vireid_jax/xla; 'none' turns it off)
  --verbosity=0         also show the libraries' INFO logs (or VIREID_VERBOSE=1)

Exit status: 0 done; 1 bad input (a path, a dataset, a checkpoint); 2 bad config or
usage; 143 stopped by SIGTERM after saving a checkpoint (run the same command again).

(The entry point: parses the flags, sets up the console and the devices, and
hands over to the trainer. Bad input ends here as one line on stderr with no
traceback; a run stopped by SIGTERM exits with `loop.STOPPED_EXIT_STATUS`
after saving.)
"""

from __future__ import annotations

import difflib
import os
import re
import sys

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from vireid_jax import config_defaults, console
from vireid_jax.data import datasets
from vireid_jax.data.tensorflow_setup import quiet_tensorflow
from vireid_jax.errors import ConfigError, UserError
from vireid_jax.training import parallel, reporting, trainer

# TensorFlow (tf.data, CLU) must never fill the console; set before it is first imported.
quiet_tensorflow()


# The help text: this module's docstring, without its last paragraph (about the code).
USAGE = __doc__[:__doc__.rindex("\n(The entry point")].lstrip("\n") + "\n"

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file (configs/*.py), with --config.key=value overrides.",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, summaries, results.")
_COMPILATION_CACHE = flags.DEFINE_string(
    "compilation_cache", "~/.cache/vireid_jax/xla",
    "Folder of JAX's persistent compilation cache (a resumed or repeated run skips "
    "compiling), or 'none'. JAX_COMPILATION_CACHE_DIR, when set, wins.")

_OVERRIDE = re.compile(r"^--config\.([A-Za-z0-9_.]+)(=|$)")


def override_keys(argv: list[str]) -> list[str]:
  """The dotted config keys given as `--config.KEY=VALUE` (or `--config.KEY VALUE`)."""
  return [m.group(1) for a in argv if (m := _OVERRIDE.match(a))]


def unknown_key_problems(argv: list[str]) -> list[str]:
  """One line per `--config.KEY` that no config has, with the closest known keys."""
  known = sorted(flatten_keys(config_defaults.base_config()))
  problems = []
  for key in override_keys(argv):
    if key not in known:
      close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
      hint = f" Did you mean {', '.join(close)}?" if close else ""
      problems.append(f"{key}: no such config key.{hint}")
  return problems


def flatten_keys(config, prefix: str = "") -> list[str]:
  keys = []
  for k, v in config.items():
    if hasattr(v, "items"):
      keys += flatten_keys(v, f"{prefix}{k}.")
    else:
      keys.append(f"{prefix}{k}")
  return keys


def exit_with(problems: list[str], status: int) -> None:
  for line in problems:
    print(f"error: {line}", file=sys.stderr)
  if status == 2:
    print(f"Every config key, its default and its allowed values: "
          f"{config_defaults.WHERE_KEYS_ARE}; usage: python -m vireid_jax.main --help",
          file=sys.stderr)
  sys.stderr.flush()
  if jax.distributed.is_initialized():   # several processes: end without waiting for the others
    parallel.exit_now(status)
  sys.exit(status)


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with usage and config mistakes as one-line errors."""
  if len(argv) == 1 or any(a in ("-h", "--help", "--helpshort", "--helpfull") for a in argv):
    print(USAGE, end="")
    sys.exit(0 if len(argv) > 1 else 2)
  try:
    rest = flags.FLAGS(argv)
  except flags.UnrecognizedFlagError as e:
    exit_with([f"{e}. Usage: python -m vireid_jax.main --help"], 2)
  except (flags.Error, AttributeError, KeyError, TypeError, ValueError, OSError) as e:
    problems = unknown_key_problems(argv) or [str(e).splitlines()[0] if str(e) else repr(e)]
    exit_with(problems, 2)
  missing = [f"--{name}" for name in ("config", "workdir") if flags.FLAGS[name].value is None]
  if missing:
    exit_with([f"{' and '.join(missing)} must be given. Usage: python -m vireid_jax.main "
               "--help"], 2)
  if len(rest) > 1:
    exit_with([f"unexpected arguments {rest[1:]}: give every setting as --config.KEY=VALUE."], 2)
  return rest


def use_compilation_cache(folder: str) -> None:
  """Keeps compiled programs in `folder` (JAX's persistent cache), unless JAX's own variable is set.

  A resumed run (after a preemption) or a second run of the same config then
  starts without compiling its train step and evaluation again.
  """
  if os.environ.get("JAX_COMPILATION_CACHE_DIR") or folder.lower() in ("", "none"):
    return
  folder = os.path.expanduser(folder)
  try:
    os.makedirs(folder, exist_ok=True)
  except OSError as e:
    logging.warning("No compilation cache (%s); every start compiles. Give a writable "
                    "--compilation_cache=DIR, or --compilation_cache=none.", e)
    return
  jax.config.update("jax_compilation_cache_dir", folder)


def main(argv) -> None:
  del argv
  console.configure(verbose=flags.FLAGS["verbosity"].present)
  use_compilation_cache(_COMPILATION_CACHE.value)
  try:
    parallel.maybe_initialize_distributed()
    config = _CONFIG.value
    workdir = _WORKDIR.value
    if config.mode == "eval":     # the run's own config.json plus the overrides, checked there
      status = reporting.evaluate_run(config, workdir, override_keys(sys.argv))
    else:
      datasets.validate(config)
      status = trainer.train_and_evaluate(config, workdir)
  except ConfigError as e:
    exit_with(e.problems, e.exit_status)
  except (UserError, FileNotFoundError, NotADirectoryError, PermissionError) as e:
    logging.debug("User error", exc_info=True)
    exit_with([str(e)], getattr(e, "exit_status", 1))
  except jax.errors.JaxRuntimeError as e:
    if not jax.distributed.is_initialized():
      raise
    logging.debug("Failed computation", exc_info=True)
    exit_with([parallel.failed_computation_message(e)], 1)
  sys.exit(status or 0)


def run() -> None:
  app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
  run()
