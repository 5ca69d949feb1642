"""What a run prints: our own messages, short; libraries' INFO logs off by default.

Orbax, CLU, TensorFlow and JAX log through absl or Python's `logging`, which
absl routes to one handler. By default that handler lets through every record
of this package and only the warnings and errors of the others, and prints
them as `HH:MM:SS message` (`HH:MM:SS WARNING: message`). `--verbosity=0` on
the command line, or `VIREID_VERBOSE=1` in the environment, restores absl's
usual format and every library's INFO lines.
"""

from __future__ import annotations

import logging
import os
import time
import warnings

from absl import logging as absl_logging

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
VERBOSE_ENV = "VIREID_VERBOSE"


def is_ours(record: logging.LogRecord) -> bool:
  """A record logged by a module of this package (absl's records carry the caller's path)."""
  return os.path.abspath(record.pathname).startswith(PACKAGE_DIR + os.sep)


class OursOrWarnings(logging.Filter):
  """Every record of this package; only warnings and errors of everything else."""

  def filter(self, record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING or is_ours(record)


class ShortFormatter(logging.Formatter):
  """`HH:MM:SS message`, with the level named from WARNING up."""

  def format(self, record: logging.LogRecord) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
    level = "" if record.levelno < logging.WARNING else f"{record.levelname}: "
    text = f"{stamp} {level}{record.getMessage()}"
    if record.exc_info and record.levelno >= logging.ERROR:
      text += "\n" + self.formatException(record.exc_info)
    return text


def configure(verbose: bool = False) -> None:
  """Sets up the console for a run; `verbose` shows every library's INFO logs."""
  verbose = verbose or os.environ.get(VERBOSE_ENV, "") not in ("", "0")
  absl_logging.set_verbosity(absl_logging.INFO)
  handler = absl_logging.get_absl_handler()
  if verbose:
    return
  if not any(isinstance(f, OursOrWarnings) for f in handler.filters):
    handler.addFilter(OursOrWarnings())
  handler.setFormatter(ShortFormatter())
  # Libraries' deprecation notices are for their users' developers, not ours.
  warnings.filterwarnings("ignore", category=DeprecationWarning)
  warnings.filterwarnings("ignore", category=FutureWarning)


def seconds_since_process_start() -> float:
  """Wall time since this process started (Linux: from /proc; elsewhere since this module loaded)."""
  try:
    with open("/proc/self/stat") as f:
      started_ticks = float(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as f:
      uptime = float(f.read().split()[0])
    return uptime - started_ticks / os.sysconf("SC_CLK_TCK")
  except (OSError, ValueError, IndexError):
    return time.time() - _LOADED


_LOADED = time.time()
