"""The table over benchmark reports (JSON files of any framework); imports no framework.

  python -m benchmarks.summarize bench_out/*.json
"""

from __future__ import annotations

import sys

from benchmarks import common


def main(argv: list[str]) -> int:
  if not argv:
    print(__doc__.strip(), file=sys.stderr)
    return 2
  print(common.summarize(common.load_reports(argv)))
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
