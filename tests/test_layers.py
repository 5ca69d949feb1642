"""The package's layers import downward only, and no module imports itself back in a cycle.

tools -> training -> evaluation -> models, losses -> data, all over the root modules
(config_defaults, errors, console, fileio). Read from the source with `ast`: every import,
at the top of a file or inside a function, counts.
"""

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "vireid_jax")
# Lower numbers may be imported by higher ones, never the reverse.
RANKS = {"root": 0, "data": 1, "models": 2, "losses": 2, "evaluation": 3, "training": 4,
         "tools": 5, "main": 6}


def modules():
  """{dotted module name: path} of every module in the package."""
  out = {}
  for folder, _, names in os.walk(PACKAGE):
    for name in names:
      if name.endswith(".py"):
        rel = os.path.relpath(os.path.join(folder, name), ROOT)[:-3].replace(os.sep, ".")
        out[rel.removesuffix(".__init__")] = os.path.join(folder, name)
  return out


def layer(module: str) -> str:
  parts = module.split(".")
  if len(parts) == 1:
    return "root"
  if parts[1] in RANKS:
    return parts[1]
  return "root"            # vireid_jax.config_defaults, errors, console, fileio


def imports(path: str, known) -> set[str]:
  """The package modules `path` imports (a `from package import module` names the module)."""
  found = set()
  for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
    if isinstance(node, ast.Import):
      found.update(a.name for a in node.names if a.name.startswith("vireid_jax"))
    elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vireid_jax"):
      for a in node.names:
        sub = f"{node.module}.{a.name}"
        found.add(sub if sub in known else node.module)
  return found


def test_imports_go_downward_only():
  known = modules()
  upward = []
  for module, path in known.items():
    for target in imports(path, known):
      if RANKS[layer(target)] > RANKS[layer(module)]:
        upward.append(f"{module} imports {target}")
  assert not upward, "\n".join(upward)


def test_no_import_cycles():
  known = modules()
  graph = {m: {t for t in imports(p, known) if t in known and t != m} for m, p in known.items()}
  # A package's __init__ importing its own submodules is not a cycle through other code.
  for m in graph:
    graph[m] = {t for t in graph[m] if not t.startswith(m + ".")}
  state, cycles = {}, []

  def visit(node, stack):
    state[node] = "open"
    for nxt in graph[node]:
      if state.get(nxt) == "open":
        cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
      elif nxt not in state:
        visit(nxt, stack + [nxt])
    state[node] = "done"

  for m in sorted(graph):
    if m not in state:
      visit(m, [m])
  assert not cycles, "\n".join(cycles)


def test_the_layer_map_knows_every_subpackage():
  subpackages = {d for d in os.listdir(PACKAGE)
                 if os.path.isdir(os.path.join(PACKAGE, d)) and not d.startswith("__")}
  assert subpackages <= set(RANKS), subpackages - set(RANKS)
