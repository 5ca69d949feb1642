"""Where the train step's GPU time goes: a JAX profiler trace, summarised by kernel.

  python -m benchmarks.profile_step --config=configs/agw_baseline.py --batch=64 --top=30

Runs the real jitted step (as `step_speed.py` builds it), traces a few steps with
`jax.profiler`, reads the trace back with `jax.profiler.ProfileData` (no
TensorBoard needed) and prints the device time per kernel name, grouped into
convolution / matmul, fusion (elementwise + reductions: BatchNorm, ReLU, the
optimiser), collective (NCCL, on several GPUs: per GPU, they may overlap
compute) and other, so that the next optimisation targets what costs most.
On N GPUs use the global batch (N x the per-device batch).
`--kernels_csv` writes every kernel's time per step and `--hlo_out` the
optimised HLO of the very executable that was traced: `hlo_bytes.py` joins the
two into achieved bytes per second per fusion.
"""

from __future__ import annotations

import collections
import csv
import glob
import os
import sys
import tempfile
import time

import jax
from jax.profiler import ProfileData

from benchmarks import common, step_speed, variants


def kernel_class(name: str) -> str:
  n = name.lower()
  if "nccl" in n or any(k in n for k in ("all-reduce", "all_reduce", "allreduce", "all-gather",
                                           "reduce-scatter", "collective")):
    return "collective"   # NCCL kernels of a multi-GPU step (they may overlap compute)
  if n.startswith(("loop_", "input_")) or "fusion" in n:   # XLA's own kernels (e.g. loop_convert_fusion)
    return "fusion"
  if any(k in n for k in ("conv", "cudnn", "implicit_gemm", "wgrad", "dgrad", "fprop", "sm90_xmma", "xmma")):
    return "convolution"
  if any(k in n for k in ("gemm", "matmul", "cublas", "cutlass", "nvjet")):
    return "matmul"       # nvjet: cuBLAS kernels (XLA lowers 1x1 convolutions to GEMMs)
  if any(k in n for k in ("reduce", "triton")):
    return "fusion"
  if "memcpy" in n or "memset" in n or "copy" in n:
    return "copy"
  return "other"


def kernel_times(path: str) -> tuple[collections.Counter, collections.Counter, int]:
  """(device ns per kernel name, launches per name, GPUs) summed over the trace."""
  data = ProfileData.from_file(path)
  per_name = collections.Counter()
  count = collections.Counter()
  gpus = 0
  for plane in data.planes:
    if not plane.name.startswith("/device:GPU"):
      continue
    gpus += 1
    for line in plane.lines:
      if "stream" not in line.name.lower() or "xla ops" in line.name.lower():
        continue
      for ev in line.events:
        per_name[ev.name] += ev.duration_ns
        count[ev.name] += 1
  return per_name, count, gpus


def write_kernels_csv(path: str, per_name, count, per: int) -> None:
  """name, class, microseconds and launches per step (and GPU), slowest first."""
  with open(path, "w", newline="", encoding="utf-8") as f:
    out = csv.writer(f)
    out.writerow(["kernel", "class", "us_per_step", "launches_per_step"])
    for name, ns in per_name.most_common():
      out.writerow([name, kernel_class(name), f"{ns / per / 1e3:.3f}", f"{count[name] / per:g}"])


def summarize_trace(path: str, steps: int, top: int, kernels_csv: str | None = None) -> str:
  per_name, count, gpus = kernel_times(path)
  total = sum(per_name.values())
  if not total:
    names = [(pl.name, [ln.name for ln in pl.lines][:8]) for pl in data.planes]
    return f"no GPU kernel events found in the trace; planes and lines: {names}"
  classes = collections.Counter()
  for name, ns in per_name.items():
    classes[kernel_class(name)] += ns
  per = steps * gpus          # times below are per step and per GPU
  if kernels_csv:
    write_kernels_csv(kernels_csv, per_name, count, per)
  out = [f"GPU kernel time per step and GPU: {total / per / 1e6:.2f} ms ({gpus} GPU(s), "
         f"{len(per_name)} kernel names)"]
  for cls, ns in classes.most_common():
    out.append(f"  {cls:12s} {ns / per / 1e6:8.2f} ms/step  {100 * ns / total:5.1f}%")
  out.append(f"top {top} kernels:")
  for name, ns in per_name.most_common(top):
    out.append(f"  {ns / per / 1e3:9.1f} us/step {100 * ns / total:5.1f}%  x{count[name] // per:<3d} "
               f"[{kernel_class(name)}] {name[:110]}")
  return "\n".join(out)


def main() -> int:
  parser = common.common_parser(__doc__.splitlines()[0])
  parser.add_argument("--top", type=int, default=30)
  parser.add_argument("--logdir", default="")
  parser.add_argument("--kernels_csv", default=None, help="write every kernel's time here")
  parser.add_argument("--hlo_out", default=None, help="write the optimised HLO text here")
  variants.add_flag(parser, single=True)
  parser.set_defaults(steps=5)
  args, config = common.parse_args(parser, default_config="configs/agw_baseline.py")
  step_speed.apply_overrides(config, args)
  variant = variants.parse(args.variant[0]) if args.variant else variants.BASE
  variant.apply(config)
  batch = (args.batch or [64])[0]
  prepared = step_speed.prepare_step(config, args.num_classes, args.seed,
                                     variant.model(config, args.num_classes))
  data = prepared.batches(batch, args.num_classes, args.image_size, args.seed, count=1)
  state = prepared.state()
  compiled, _, _, _ = step_speed.compile_step(prepared, state, data[0], variant.compiler_options)
  if args.hlo_out:
    with open(args.hlo_out, "w", encoding="utf-8") as f:
      f.write(compiled.as_text())
  runner = step_speed.StepRunner(compiled, state, data)
  common.time_steps(runner, jax.block_until_ready, 5, chunks=1)
  logdir = args.logdir or tempfile.mkdtemp(prefix="vireid_profile_")
  t = time.time()
  with jax.profiler.trace(logdir):
    for _ in range(args.steps):
      runner()
    jax.block_until_ready(runner.state)
  print(f"{args.config} {variant.name} batch {batch}: "
        f"{(time.time() - t) / args.steps * 1e3:.2f} ms/step while tracing")
  traces = sorted(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True))
  if not traces:
    print("no trace written")
    return 1
  print(summarize_trace(traces[-1], args.steps, args.top, args.kernels_csv))
  return 0


if __name__ == "__main__":
  sys.exit(main())
