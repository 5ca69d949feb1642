"""Writes requirements.txt and requirements-test.txt from pyproject.toml (the one source).

    python .ci/requirements.py          # rewrite both files
    python .ci/requirements.py --check  # exit 1 if they differ from pyproject.toml

requirements.txt = the dependencies + the `data` and `viz` extras (what the README's
install command needs to train, evaluate and plot); requirements-test.txt = that + `export`
(the tests run the exported files) + `test`.
"""

from __future__ import annotations

import os
import sys
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADER = ("# Generated from pyproject.toml by `python .ci/requirements.py`: edit pyproject.toml, "
          "not this file.\n")


def render(pyproject_path: str = os.path.join(ROOT, "pyproject.toml")) -> dict[str, str]:
  """{file name: content} derived from pyproject.toml."""
  with open(pyproject_path, "rb") as f:
    project = tomllib.load(f)["project"]
  extras = project["optional-dependencies"]
  runtime = (HEADER
             + "# Runtime, tf.data + TFDS + summaries, plots:\n"
             + "#   pip install -r requirements.txt -e .\n"
             + "# For CUDA, install jax[cuda12] (or jax[cuda13]) first; for TPU, jax[tpu].\n"
             + "".join(f"{r}\n" for r in project["dependencies"] + extras["data"] + extras["viz"]))
  test = (HEADER + "-r requirements.txt\n"
          + "".join(f"{r}\n" for r in extras["export"] + extras["test"]))
  return {"requirements.txt": runtime, "requirements-test.txt": test}


def main(argv: list[str]) -> int:
  stale = []
  for name, content in render().items():
    path = os.path.join(ROOT, name)
    current = open(path, encoding="utf-8").read() if os.path.exists(path) else None
    if current == content:
      continue
    if "--check" in argv:
      stale.append(name)
    else:
      with open(path, "w", encoding="utf-8") as f:
        f.write(content)
      print(f"Wrote {name}")
  if stale:
    print(f"{', '.join(stale)} differ from pyproject.toml: run `python .ci/requirements.py`.",
          file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
