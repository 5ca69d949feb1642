r"""torchvision ResNet checkpoints -> variables of `resnet.ResNet`, without needing torch.

We never download weights. Get torchvision's ImageNet ResNet-50 yourself, e.g.
`resnet50-0676ba61.pth` (IMAGENET1K_V1, the one the AGW/CAJ numbers use) from
https://download.pytorch.org/models/, then either point `model.pretrained` at
it (needs torch to read) or convert it once to a torch-free `.npz`:

  python -m vireid_jax.models.pretrained --in resnet50-0676ba61.pth --out resnet50.npz

Readable formats: `.npz` and `.safetensors` (numpy only; timm's ResNet
safetensors use the same key names) and `.pth` / `.pt` (needs torch). The
`.npz` keeps torchvision's key names, so it is usable outside this project too.
The key mapping is in the docstring of `resnet.py`; `fc.*` and
`*.num_batches_tracked` are ignored.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Mapping

import numpy as np

from vireid_jax import fileio
from vireid_jax.errors import UserError
from vireid_jax.models import resnet

_IGNORED_SUFFIXES = ("num_batches_tracked",)
_IGNORED_PREFIXES = ("fc.",)
_BN_FIELDS = {"weight": ("params", "scale"), "bias": ("params", "bias"),
              "running_mean": ("batch_stats", "mean"), "running_var": ("batch_stats", "var")}


def _to_numpy(value: Any) -> np.ndarray:
  """numpy array from a numpy array or a torch tensor (without importing torch)."""
  if hasattr(value, "detach"):
    value = value.detach().cpu()
    if str(getattr(value, "dtype", "")) == "torch.bfloat16":
      value = value.float()
    value = value.numpy()
  return np.asarray(value)


def expected_keys(depth: int) -> dict[str, tuple[tuple[int, ...], tuple[str, ...]]]:
  """torchvision key -> (torch shape, our path as (collection, *names)) for ResNet-`depth`."""
  block, sizes = resnet.stage_spec(depth)
  out: dict[str, tuple[tuple[int, ...], tuple[str, ...]]] = {}

  def conv(tkey, shape, path):
    out[f"{tkey}.weight"] = (shape, ("params", *path, "kernel"))

  def bn(tkey, c, path):
    for field, (coll, leaf) in _BN_FIELDS.items():
      out[f"{tkey}.{field}"] = ((c,), (coll, *path, leaf))

  conv("conv1", (64, 3, 7, 7), ("stem", "conv1"))
  bn("bn1", 64, ("stem", "bn1"))
  cin = 64
  for li, (n, width) in enumerate(zip(sizes, resnet.STAGE_WIDTHS)):
    cout = width * block.expansion
    for b in range(n):
      t, p = f"layer{li + 1}.{b}", (f"layer{li + 1}", f"block{b}")
      if block is resnet.Bottleneck:
        convs = [(width, cin, 1), (width, width, 3), (cout, width, 1)]
      else:
        convs = [(width, cin, 3), (width, width, 3)]
      for k, (o, i, ks) in enumerate(convs):
        conv(f"{t}.conv{k + 1}", (o, i, ks, ks), (*p, f"conv{k + 1}"))
        bn(f"{t}.bn{k + 1}", o, (*p, f"bn{k + 1}"))
      stride = 1 if li == 0 else 2
      if b == 0 and (stride != 1 or cin != cout):
        conv(f"{t}.downsample.0", (cout, cin, 1, 1), (*p, "downsample_conv"))
        bn(f"{t}.downsample.1", cout, (*p, "downsample_bn"))
      cin = cout
  return out


def _relevant(keys) -> set[str]:
  return {k for k in keys
          if not k.endswith(_IGNORED_SUFFIXES) and not k.startswith(_IGNORED_PREFIXES)}


def guess_depth(keys) -> int | None:
  """Depth of the torchvision ResNet whose state dict has exactly these `keys`, or None."""
  keys = _relevant(keys)
  for depth in resnet.STAGE_SIZES:
    if set(expected_keys(depth)) == keys:
      return depth
  return None


def clean_state_dict(state: Mapping[str, Any]) -> dict[str, Any]:
  """Unwraps {'state_dict': ...} / {'model': ...} and strips DataParallel's 'module.' prefix."""
  for wrapper in ("state_dict", "model"):
    if wrapper in state and isinstance(state[wrapper], Mapping):
      state = state[wrapper]
  state = dict(state)
  if state and all(k.startswith("module.") for k in state):
    state = {k[len("module."):]: v for k, v in state.items()}
  return state


def _set(tree: dict, path: tuple[str, ...], value: np.ndarray) -> None:
  for name in path[:-1]:
    tree = tree.setdefault(name, {})
  tree[path[-1]] = value


def _short(items: list[str], limit: int = 8) -> str:
  more = f" ... (+{len(items) - limit} more)" if len(items) > limit else ""
  return ", ".join(items[:limit]) + more


def convert_torchvision_resnet(state_dict: Mapping[str, Any], depth: int) -> dict[str, dict]:
  """torchvision ResNet-`depth` state dict -> {"params", "batch_stats"} of `resnet.ResNet(depth)`.

  Values may be numpy arrays or torch tensors. Conv kernels go OIHW -> HWIO;
  everything is float32. Raises ValueError listing every missing key,
  unexpected key and shape mismatch (with a hint if it is another depth).
  """
  state = clean_state_dict(state_dict)
  expected = expected_keys(depth)
  keep = _relevant(state)
  given = {k: v for k, v in state.items() if k in keep}
  missing = sorted(set(expected) - set(given))
  unexpected = sorted(set(given) - set(expected))
  mismatched = []
  arrays = {}
  for key in sorted(set(expected) & set(given)):
    arr = _to_numpy(given[key])
    if tuple(arr.shape) != expected[key][0]:
      mismatched.append(f"{key}: checkpoint {tuple(arr.shape)} != expected {expected[key][0]}")
    arrays[key] = arr
  if missing or unexpected or mismatched:
    lines = [f"The checkpoint is not a torchvision ResNet-{depth} state dict:"]
    if missing:
      lines.append(f"  missing keys ({len(missing)}): {_short(missing)}")
    if unexpected:
      lines.append(f"  unexpected keys ({len(unexpected)}): {_short(unexpected)}")
    if mismatched:
      lines.append(f"  shape mismatches ({len(mismatched)}): {_short(mismatched, 4)}")
    other = guess_depth(given)
    if other is not None and other != depth:
      lines.append(f"  It looks like a ResNet-{other}: set model.depth={other} or use a "
                   f"ResNet-{depth} checkpoint.")
    raise ValueError("\n".join(lines))
  out: dict[str, dict] = {"params": {}, "batch_stats": {}}
  for key, (_, path) in expected.items():
    arr = arrays[key].astype(np.float32)
    if arr.ndim == 4:
      arr = np.transpose(arr, (2, 3, 1, 0))  # OIHW -> HWIO
    _set(out, path, np.ascontiguousarray(arr))
  return out


def convert_torchvision_resnet50(state_dict: Mapping[str, Any]) -> dict[str, dict]:
  return convert_torchvision_resnet(state_dict, 50)


def read_state_dict(path: str) -> dict[str, np.ndarray]:
  """A torchvision-layout state dict from .npz / .safetensors (numpy) or .pth / .pt (torch)."""
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f"No ResNet checkpoint at {path!r}. Download torchvision's ImageNet weights yourself "
        "(e.g. resnet50-0676ba61.pth from https://download.pytorch.org/models/), optionally "
        "convert them with `python -m vireid_jax.models.pretrained --in FILE.pth --out "
        "FILE.npz`, and set model.pretrained to the file (or to '' to train from scratch).")
  ext = os.path.splitext(path)[1].lower()
  if ext == ".npz":
    with np.load(path, allow_pickle=False) as data:
      return clean_state_dict({k: data[k] for k in data.files})
  if ext == ".safetensors":
    from safetensors.numpy import load_file  # pylint: disable=g-import-not-at-top
    return clean_state_dict(load_file(path))
  if ext in (".pth", ".pt", ".bin", ".ckpt"):
    try:
      import torch  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise ImportError(
          f"Reading {path!r} needs PyTorch (pip install torch). Without it, convert the "
          "checkpoint once on a machine with torch: `python -m vireid_jax.models.pretrained "
          f"--in {os.path.basename(path)} --out resnet.npz`, and use the .npz.") from e
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping):
      raise ValueError(f"{path!r} holds a {type(state).__name__}, not a state dict: save "
                       "`model.state_dict()` rather than the whole model.")
    state = clean_state_dict(state)
    return {k: _to_numpy(v) for k, v in state.items() if hasattr(v, "shape")}
  raise ValueError(f"Unknown checkpoint format {ext!r} of {path!r}: use .npz, .safetensors, "
                   ".pth or .pt.")


def load_resnet_weights(path: str, depth: int) -> dict[str, dict]:
  """Reads and converts a torchvision ResNet-`depth` checkpoint file."""
  try:
    return convert_torchvision_resnet(read_state_dict(path), depth)
  except ValueError as e:
    raise ValueError(f"{path}: {e}") from None


def load_resnet50_weights(path: str) -> dict[str, dict]:
  return load_resnet_weights(path, 50)


def save_npz(state: Mapping[str, Any], path: str) -> None:
  """Writes a state dict (torchvision key names) as an uncompressed, torch-free .npz."""
  arrays = {k: _to_numpy(v) for k, v in state.items()}
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "wb") as f:
    np.savez(f, **arrays)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m vireid_jax.models.pretrained",
      description="Convert a torchvision ResNet checkpoint (.pth/.pt/.safetensors) to a "
                  "torch-free .npz with torchvision key names.")
  parser.add_argument("--in", dest="inp", required=True, metavar="FILE", help="torchvision checkpoint")
  parser.add_argument("--out", required=True, metavar="FILE", help="output .npz")
  parser.add_argument("--overwrite", action="store_true", help=fileio.OVERWRITE_HELP)
  parser.add_argument("--depth", type=int, default=0,
                      help="ResNet depth (default: inferred from the keys)")
  args = parser.parse_args(argv)
  if not args.out.endswith(".npz"):
    parser.error(f"--out {args.out!r} must end in .npz")
  try:
    fileio.refuse_to_replace([args.out], args.overwrite)
  except UserError as e:
    parser.exit(1, f"error: {e}\n")
  state = read_state_dict(args.inp)
  depth = args.depth or guess_depth(state)
  if depth is None:
    parser.error(f"{args.inp} does not look like a torchvision ResNet; pass --depth to see "
                 "which keys are missing.")
  convert_torchvision_resnet(state, depth)   # validates before anything is written
  state = {k: v for k, v in state.items() if not k.endswith(_IGNORED_SUFFIXES)}
  save_npz(state, args.out)
  print(f"Wrote {args.out}: torchvision ResNet-{depth}, {len(state)} arrays, "
        f"{sum(int(np.prod(v.shape)) for v in state.values()):,} values.")
  return 0


if __name__ == "__main__":
  sys.exit(main())
