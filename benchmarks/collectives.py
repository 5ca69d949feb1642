"""Lists the collectives XLA puts in the data-parallel train step, and what they move.

  # 8 simulated CPU devices (no GPU needed), the full model:
  XLA_FLAGS=--xla_force_host_platform_device_count=8 JAX_PLATFORMS=cpu \
      python -m benchmarks.collectives --config=configs/sysu.py --batch=512 --depth=18
  # on a multi-GPU machine, the executable that actually runs there:
  python3 -m benchmarks.collectives --config=configs/sysu.py --batch=512

Compiles the real step (`setup.make_jitted_step`, as benchmarks/step_speed.py
does) for all visible devices and reads the optimised HLO: every all-reduce,
reduce-scatter, all-gather, all-to-all and collective-permute, with the bytes
each moves per device, grouped into "large" (gradient buckets, >= 1 MiB) and
"small" (BatchNorm statistics, losses, counters). Why this matters for scaling:
large collectives are bandwidth-bound and can overlap the backward pass; small
ones are latency-bound, and the BatchNorm ones sit on the critical path (the
next layer waits for the global statistics), so their count sets a floor on the
step time that does not shrink with the per-device batch.
"""

from __future__ import annotations

import collections
import re

import jax

from benchmarks import common, step_speed
from vireid_jax.training import train_step as train_step_lib

KINDS = ("all-reduce", "reduce-scatter", "all-gather", "all-to-all", "collective-permute")
LARGE_BYTES = 1 << 20
_BYTES = {"f64": 8, "s64": 8, "u64": 8, "f32": 4, "s32": 4, "u32": 4, "bf16": 2, "f16": 2,
          "s16": 2, "u16": 2, "s8": 1, "u8": 1, "pred": 1}
_OP = re.compile(r"=\s*(?P<shape>\(.*?\)|\S+)\s+(?P<kind>" + "|".join(KINDS) + r")(?:-start)?\(")
_ARRAY = re.compile(r"(\w+)\[([\d,]*)\]")


def shape_bytes(shape: str) -> int:
  """Bytes of an HLO shape string: `f32[64,3]{1,0}` or a tuple `(f32[8]{0}, bf16[2,2]{1,0})`."""
  total = 0
  for dtype, dims in _ARRAY.findall(shape):
    n = 1
    for d in filter(None, dims.split(",")):
      n *= int(d)
    total += n * _BYTES.get(dtype, 4)
  return total


def collectives(hlo_text: str) -> list[tuple[str, int]]:
  """(kind, bytes) of every collective in an HLO module's text (async pairs counted once)."""
  out = []
  for line in hlo_text.splitlines():
    if "-done(" in line:
      continue
    m = _OP.search(line)
    if m:
      out.append((m.group("kind"), shape_bytes(m.group("shape"))))
  return out


def summarize(ops: list[tuple[str, int]]) -> str:
  rows = collections.defaultdict(lambda: [0, 0, 0, 0])   # count, bytes, large count, large bytes
  for kind, size in ops:
    r = rows[kind]
    r[0] += 1
    r[1] += size
    if size >= LARGE_BYTES:
      r[2] += 1
      r[3] += size
  lines = ["| collective | count | MiB per device | of which >= 1 MiB: count | MiB |",
           "|---|---:|---:|---:|---:|"]
  for kind in KINDS:
    if kind in rows:
      c, b, lc, lb = rows[kind]
      lines.append(f"| {kind} | {c} | {b / 2**20:.2f} | {lc} | {lb / 2**20:.2f} |")
  return "\n".join(lines)


def main() -> None:
  ap = common.common_parser(__doc__.split("\n\n")[0])
  ap.add_argument("--dump", default=None, help="also write the optimised HLO text here")
  args, config = common.parse_args(ap, default_config="configs/sysu.py")
  step_speed.apply_overrides(config, args)
  batch = (args.batch or [64])[0]
  prepared = step_speed.prepare_step(config, args.num_classes, args.seed)
  batch_arrays = prepared.batches(batch, args.num_classes, args.image_size, args.seed, count=1)[0]
  text = prepared.step_fn.lower(prepared.state(), batch_arrays).compile().as_text()
  if args.dump:
    with open(args.dump, "w", encoding="utf-8") as f:
      f.write(text)
  ops = collectives(text)
  variables = prepared.variables
  num_bn = sum(1 for path, _ in jax.tree_util.tree_flatten_with_path(variables["batch_stats"])[0]
               if str(path[-1]).find("mean") >= 0)
  grad_mib = train_step_lib.tree_param_count(variables["params"]) * 4 / 2**20
  devices = jax.devices()
  print(f"{len(devices)} x {devices[0].device_kind}, {args.config}, depth {args.depth}, "
        f"{args.image_size[0]}x{args.image_size[1]}, global batch {batch} "
        f"({batch // len(devices)} per device), {num_bn} BatchNorm layers, "
        f"float32 gradients {grad_mib:.1f} MiB\n")
  print(summarize(ops))


if __name__ == "__main__":
  main()
