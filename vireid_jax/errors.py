"""Errors that mean "the input is wrong", as opposed to a bug.

The entry points print their message as one line, with no traceback, and exit
with `exit_status`: 2 for a config that cannot work (as for a usage error), 1
for anything else the user has to fix (a path, a file, a checkpoint). The
message always says what to do.
"""

from __future__ import annotations


class UserError(Exception):
  """Bad input; the message says what to change."""
  exit_status = 1


class ConfigError(UserError, ValueError):
  """A config key whose value cannot work (or that does not exist).

  Raised before any data is read or generated. `problems` holds one line per
  bad key: the full key, the bad value and what is allowed.
  """
  exit_status = 2

  def __init__(self, problems):
    if isinstance(problems, str):
      problems = [problems]
    self.problems = list(problems)
    super().__init__("; ".join(self.problems))


class DataError(UserError, ValueError):
  """A dataset whose lists or contents cannot be used; the message names the file and the fix."""
