"""A dataset is one package: no module outside it (and the registry) knows a dataset by name.

Read from the source with `ast`, as tests/test_layers.py reads the imports: every identifier
(names, attributes, definitions, arguments, imports) and every string that is not a
docstring, in every module of the package, is searched for each registered dataset's name
and title (case-insensitive). Docstrings and comments may name datasets: they explain. The
one exception is a default value: `config_defaults` may assign a dataset's name as the
default of `data.name` and `data.synthetic_layout` (a value, not a branch).
"""

import ast
import os

from vireid_jax.data import registry
from vireid_jax.data.dataset import Dataset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "vireid_jax")
DATA = os.path.join(PACKAGE, "data")
REGISTRY = os.path.join(DATA, "registry.py")
DEFAULT_KEYS = ("data.name", "data.synthetic_layout")


def dataset_words() -> set[str]:
  words = set()
  for name, dataset in registry.DATASETS.items():
    words |= {name.lower(), dataset.title.lower(), dataset.tfds.builder_name.lower()}
  return words


def dataset_folders() -> set[str]:
  return {os.path.join(DATA, name) for name in registry.DATASETS}


def outside_modules():
  """Every module of the package outside the dataset packages and the registry."""
  inside = dataset_folders()
  for folder, dirs, names in os.walk(PACKAGE):
    dirs[:] = [d for d in dirs if os.path.join(folder, d) not in inside and d != "__pycache__"]
    for name in names:
      path = os.path.join(folder, name)
      if name.endswith(".py") and path != REGISTRY:
        yield path


def docstrings(tree) -> set[int]:
  """ids of the string nodes that are docstrings."""
  out = set()
  for node in ast.walk(tree):
    if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
      body = node.body
      if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
          and isinstance(body[0].value.value, str):
        out.add(id(body[0].value))
  return out


def default_values(tree) -> set[int]:
  """ids of the constants assigned to `<config>.data.name` / `.data.synthetic_layout`."""
  out = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
      for target in node.targets:
        if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Attribute) \
            and f"{target.value.attr}.{target.attr}" in DEFAULT_KEYS:
          out.add(id(node.value))
  return out


def words_of(node) -> list[str]:
  """The identifiers and strings a node spells."""
  if isinstance(node, ast.Constant) and isinstance(node.value, str):
    return [node.value]
  if isinstance(node, ast.Name):
    return [node.id]
  if isinstance(node, ast.Attribute):
    return [node.attr]
  if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
    return [node.name]
  if isinstance(node, ast.arg):
    return [node.arg]
  if isinstance(node, ast.keyword) and node.arg:
    return [node.arg]
  if isinstance(node, ast.alias):
    return [node.name, node.asname or ""]
  if isinstance(node, ast.ImportFrom):
    return [node.module or ""]
  return []


def mentions(path: str, words: set[str]) -> list[str]:
  source = open(path, encoding="utf-8").read()
  tree = ast.parse(source)
  skip = docstrings(tree)
  if os.path.basename(path) == "config_defaults.py":
    skip |= default_values(tree)
  found = []
  for node in ast.walk(tree):
    if id(node) in skip:
      continue
    for text in words_of(node):
      hits = sorted(w for w in words if w in text.lower())
      if hits:
        line = getattr(node, "lineno", 0)
        found.append(f"{os.path.relpath(path, ROOT)}:{line}: {text!r} names {', '.join(hits)}")
  return found


def test_no_dataset_name_outside_its_own_package():
  words = dataset_words()
  modules = sorted(outside_modules())
  found = [m for path in modules for m in mentions(path, words)]
  print(f"\nsearched {len(modules)} modules outside {len(registry.DATASETS)} dataset packages "
        f"({', '.join(sorted(registry.DATASETS))}) and the registry for "
        f"{', '.join(sorted(words))}: {len(found)} mention(s)")
  for line in found:
    print("  " + line)
  assert not found, "\n".join(found)


def test_the_search_finds_what_it_looks_for(tmp_path):
  """The search is not vacuous: a branch on a name, in any of its spellings, is found."""
  words = dataset_words()
  bad = tmp_path / "bad.py"
  bad.write_text('"""Docstrings may say sysu."""\n'
                 'def f(c):\n'
                 '  """Or RegDB."""\n'
                 '  if c.data.name == "sysu":\n'
                 '    return sysu_reader.load(c)\n'
                 '  from vireid_jax.data import regdb\n'
                 '  return {"SYSU-MM01": 1}\n'
                 'c.data.name = "sysu"\n')
  found = mentions(str(bad), words)
  assert sorted(int(f.split(":")[1]) for f in found) == [4, 5, 6, 7, 8], found


def test_every_dataset_package_is_registered_once_under_its_own_name():
  packages = {d for d in os.listdir(DATA)
              if os.path.isfile(os.path.join(DATA, d, "__init__.py"))}
  declaring = set()
  for name in packages:
    text = open(os.path.join(DATA, name, "__init__.py"), encoding="utf-8").read()
    if "DATASET = Dataset(" in text:
      declaring.add(name)
  assert declaring == set(registry.DATASETS)
  for name, dataset in registry.DATASETS.items():
    assert isinstance(dataset, Dataset) and dataset.name == name
    assert dataset.suite.name == name
    assert registry.get(name) is dataset
  # One entry line per dataset in the registry.
  text = open(REGISTRY, encoding="utf-8").read()
  for name in registry.DATASETS:
    assert text.count(f"    {name}.DATASET,\n") == 1
