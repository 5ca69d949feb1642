"""Bytes each kernel of a compiled XLA program moves, read off its optimised HLO text.

  python -m benchmarks.hlo_bytes step.hlo.txt [--kernels_csv kernels.csv] [--top 30]

Every instruction of the entry computation that launches work (a fusion, a
library call, a copy) reads its operands and writes its result once; the sum,
per kernel, is the traffic a memory-bound kernel cannot avoid. Tuple elements
of unsigned bytes returned by library calls are their scratch space and are not
counted. Read with a profile (`profile_step.py --kernels_csv`, same executable:
`--hlo_out`) this gives each fusion's achieved bandwidth, and the total over the
BatchNorm/ReLU fusions against the minimum passes says what a fused kernel can
still win. Operands read only in part (a slice inside a fusion) are counted
whole, so the figures are an upper bound per kernel.
"""

from __future__ import annotations

import argparse
import collections
import csv
import dataclasses
import re
import sys

DTYPE_BYTES = {"f64": 8, "s64": 8, "u64": 8, "c64": 8, "f32": 4, "s32": 4, "u32": 4,
               "bf16": 2, "f16": 2, "s16": 2, "u16": 2, "s8": 1, "u8": 1, "pred": 1,
               "f8e4m3fn": 1, "f8e5m2": 1, "s4": 1, "u4": 1}
# Instructions that launch nothing (views, plumbing, constants).
FREE = {"parameter", "constant", "get-tuple-element", "tuple", "bitcast", "after-all",
        "opt-barrier", "partition-id", "replica-id", "add-dependency"}
_ARRAY = re.compile(r"\b([a-z]+\d*[a-z0-9]*)\[([\d,]*)\]")
_INSTR = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*(.+)$")
_NAME = re.compile(r"%([\w.\-]+)")
_OP_NAME = re.compile(r'op_name="([^"]*)"')


def array_bytes(dtype: str, dims: str) -> int:
  size = DTYPE_BYTES.get(dtype)
  if size is None:
    return 0
  n = 1
  for d in filter(None, dims.split(",")):
    n *= int(d)
  return n * size


def shape_arrays(shape: str) -> list[tuple[str, int]]:
  """(dtype, bytes) of every array in an HLO shape string (tuples flattened)."""
  return [(m.group(1), array_bytes(m.group(1), m.group(2))) for m in _ARRAY.finditer(shape)]


@dataclasses.dataclass
class Kernel:
  name: str
  opcode: str
  category: str
  read: int
  written: int
  op_name: str = ""           # the JAX operation it came from (metadata), if recorded

  @property
  def bytes(self) -> int:
    return self.read + self.written


def _split_shape(rest: str) -> tuple[str, str]:
  """`SHAPE opcode(...)...` -> (shape, remainder starting at the opcode)."""
  if rest.startswith("("):
    depth = 0
    for i, ch in enumerate(rest):
      depth += ch == "("
      depth -= ch == ")"
      if depth == 0:
        return rest[:i + 1], rest[i + 1:].lstrip()
  shape, _, tail = rest.partition(" ")
  return shape, tail


def _operands(call: str) -> tuple[str, str, str]:
  """`opcode(ops...), attrs` -> (opcode, operand text, attribute text)."""
  opcode, _, tail = call.partition("(")
  depth, end = 1, len(tail)
  for i, ch in enumerate(tail):
    depth += ch == "("
    depth -= ch == ")"
    if depth == 0:
      end = i
      break
  return opcode.strip(), tail[:end], tail[end + 1:]


def categorize(opcode: str, attrs: str) -> str:
  text = attrs.lower()
  if opcode == "custom-call" or "kind=kcustom" in text:
    if "conv" in text and ("cudnn" in text or "conv" in opcode):
      return "convolution"
    if any(k in text for k in ("cublas", "gemm", "matmul", "triton")):
      return "matmul"
    if "cudnn" in text:
      return "convolution"
    return "custom"
  if opcode == "fusion":
    return "fusion"
  if opcode in ("convolution",):
    return "convolution"
  if opcode in ("dot",):
    return "matmul"
  if opcode.startswith("copy"):
    return "copy"
  if opcode.startswith(("all-", "reduce-scatter", "collective")):
    return "collective"
  return opcode


def entry_lines(hlo: str) -> list[str]:
  """The instruction lines of the ENTRY computation."""
  lines, inside = [], False
  for line in hlo.splitlines():
    if line.startswith("ENTRY"):
      inside = True
      continue
    if inside:
      if line.startswith("}"):
        break
      lines.append(line)
  if not lines:
    raise ValueError("no ENTRY computation in this HLO text.")
  return lines


def kernels(hlo: str) -> list[Kernel]:
  """The entry computation's launching instructions with the bytes each reads and writes."""
  shapes: dict[str, str] = {}
  found = []
  for line in entry_lines(hlo):
    m = _INSTR.match(line)
    if not m:
      continue
    name, rest = m.group(1), m.group(2)
    shape, call = _split_shape(rest)
    shapes[name] = shape
    opcode, operand_text, attrs = _operands(call)
    if opcode in FREE:
      continue
    category = categorize(opcode, attrs + " " + call[:200])
    arrays = shape_arrays(shape)
    if category in ("convolution", "matmul", "custom") and len(arrays) > 1:
      arrays = [a for a in arrays if a[0] != "u8"]     # library scratch space
    written = sum(b for _, b in arrays)
    read = 0
    for operand in _NAME.findall(operand_text):
      read += sum(b for _, b in shape_arrays(shapes.get(operand, "")))
    op = _OP_NAME.search(attrs)
    found.append(Kernel(name, opcode, category, read, written, op.group(1) if op else ""))
  return found


def kernel_key(name: str) -> str:
  """HLO instruction name -> the kernel name a GPU trace shows (`a.1` -> `a_1`)."""
  return re.sub(r"[.\-]", "_", name)


def load_kernel_times(path: str) -> dict[str, float]:
  with open(path, newline="", encoding="utf-8") as f:
    return {kernel_key(r["kernel"]): float(r["us_per_step"]) for r in csv.DictReader(f)}


def summarize(found: list[Kernel], times: dict[str, float] | None = None, top: int = 25) -> str:
  by_cat = collections.defaultdict(lambda: [0, 0, 0.0, 0])   # count, bytes, us, bytes with a time
  for k in found:
    row = by_cat[k.category]
    row[0] += 1
    row[1] += k.bytes
    t = (times or {}).get(kernel_key(k.name))
    if t:
      row[2] += t
      row[3] += k.bytes
  total = sum(k.bytes for k in found)
  out = [f"{len(found)} kernels, {total / 1e9:.3f} GB read + written per run "
         f"(fusions {by_cat['fusion'][1] / 1e9:.3f} GB)"]
  out.append(f"{'category':<12} {'kernels':>7} {'GB':>8} {'us (matched)':>12} {'GB/s':>8}")
  for cat, (n, b, us, b_timed) in sorted(by_cat.items(), key=lambda kv: -kv[1][1]):
    rate = f"{b_timed / us / 1e3:8.0f}" if us else f"{'-':>8}"
    out.append(f"{cat:<12} {n:>7} {b / 1e9:>8.3f} {us:>12.1f} {rate}")
  out.append(f"top {top} kernels by bytes:")
  for k in sorted(found, key=lambda k: -k.bytes)[:top]:
    t = (times or {}).get(kernel_key(k.name))
    rate = f"{k.bytes / t / 1e3:6.0f} GB/s in {t:7.1f} us" if t else ""
    out.append(f"  {k.bytes / 1e6:9.2f} MB (read {k.read / 1e6:8.2f}, write "
               f"{k.written / 1e6:8.2f}) {k.category:<11} {k.name[:48]:<48} {rate}")
  return "\n".join(out)


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("hlo", help="optimised HLO text (compiled.as_text(), profile_step --hlo_out)")
  ap.add_argument("--kernels_csv", default=None, help="profile_step.py --kernels_csv output")
  ap.add_argument("--top", type=int, default=25)
  args = ap.parse_args(argv)
  with open(args.hlo, encoding="utf-8") as f:
    found = kernels(f.read())
  times = load_kernel_times(args.kernels_csv) if args.kernels_csv else None
  print(summarize(found, times, args.top))
  return 0


if __name__ == "__main__":
  sys.exit(main())
