"""What every tool's command line shares: usage errors, and bad input without a traceback.

Imports neither JAX nor TensorFlow, so light tools (aggregate) stay light.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

from vireid_jax.data.images import BadImageError
from vireid_jax.errors import UserError


class UsageError(UserError, ValueError):
  """A tool was called with arguments that cannot work; the message says what to change."""


def run_cli(main_fn: Callable[[list[str] | None], Any], argv: list[str] | None = None,
            bad_input_status: int = 1) -> int:
  """Runs a tool's `main`; bad input ends with its message and `bad_input_status`, no traceback."""
  try:
    main_fn(argv)
  except (FileNotFoundError, BadImageError, UserError) as e:
    print(f"error: {e}", file=sys.stderr, flush=True)
    return bad_input_status
  return 0
