"""Dependencies live in pyproject.toml: the requirements files are derived from it, and
every third-party module the package imports is declared there."""

import ast
import importlib.util
import os
import re
import sys
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Import name -> distribution name, where they differ.
DISTRIBUTIONS = {"PIL": "pillow", "absl": "absl-py", "ml_collections": "ml-collections",
                 "orbax": "orbax-checkpoint", "sklearn": "scikit-learn",
                 "tensorflow": "tensorflow-cpu", "tensorflow_datasets": "tensorflow-datasets"}
# Imported only to read PyTorch .pth checkpoints, with a message when absent.
OPTIONAL = {"torch"}


def load_script():
  spec = importlib.util.spec_from_file_location("ci_requirements",
                                                os.path.join(ROOT, ".ci", "requirements.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def declared():
  with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
    project = tomllib.load(f)["project"]
  reqs = project["dependencies"] + sum(project["optional-dependencies"].values(), [])
  return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower() for r in reqs}


def test_requirement_files_are_derived_from_pyproject():
  for name, content in load_script().render().items():
    with open(os.path.join(ROOT, name), encoding="utf-8") as f:
      assert f.read() == content, f"{name} is stale: run `python .ci/requirements.py`"


def test_every_imported_package_is_declared():
  imported = set()
  for folder, _, names in os.walk(os.path.join(ROOT, "vireid_jax")):
    for name in names:
      if name.endswith(".py"):
        with open(os.path.join(folder, name), encoding="utf-8") as f:
          tree = ast.parse(f.read())
        for node in ast.walk(tree):
          if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
          elif isinstance(node, ast.ImportFrom) and node.level == 0:
            imported.add(node.module.split(".")[0])
  third_party = imported - set(sys.stdlib_module_names) - {"vireid_jax"} - OPTIONAL
  assert {"jax", "tensorflow_datasets", "PIL"} <= third_party
  missing = {m for m in third_party if DISTRIBUTIONS.get(m, m).lower() not in declared()}
  assert not missing, f"imported but not declared in pyproject.toml: {sorted(missing)}"
  # Needed at run time without being imported by us: CLU's metric writers need tensorboard,
  # TFDS's package-based builders importlib_resources.
  assert {"tensorboard", "importlib_resources"} <= declared()


def test_ci_runs_the_readmes_test_install_and_command():
  """CI runs what the README tells users to run (plus torch, which the README names)."""
  with open(os.path.join(ROOT, "README.md")) as f:
    readme = f.read()
  with open(os.path.join(ROOT, ".ci", "run")) as f:
    ci = f.read()
  installs = re.findall(r'pip install -e "(\.\[[a-z,]+\])" \\\n\s*&& python -m pytest', readme)
  commands = re.findall(r"python -m pytest [^\n`]*tests", readme)
  assert len(installs) == 1 and commands, "the README's test set-up is not where this looks"
  assert f'pip install -q -e "{installs[0]}"' in ci, (installs[0], ci)
  assert set(commands) == {"python -m pytest -q -n 2 tests"}, commands
  assert "\npython -m pytest -q -n 2 tests\n" in ci
  torch = re.search(r"torch==[0-9.]+", readme)
  assert torch and torch.group(0) in ci, "README and CI name different torch versions"
