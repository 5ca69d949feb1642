"""Where the train step's GPU time goes: a JAX profiler trace, summarised by kernel.

  python benchmarks/profile_step.py --config=configs/agw_baseline.py --batch=64 --top=30

Runs the real jitted step (as `train_step.py` builds it), traces a few steps with
`jax.profiler`, reads the trace back with `jax.profiler.ProfileData` (no
TensorBoard needed) and prints the device time per kernel name, grouped into
convolution / matmul, fusion (elementwise + reductions: BatchNorm, ReLU, the
optimiser), collective (NCCL, on several GPUs: per GPU, they may overlap
compute) and other, so that the next optimisation targets what costs most.
On N GPUs use the global batch (N x the per-device batch).
"""

from __future__ import annotations

import collections
import glob
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_step as bench  # pylint: disable=g-import-not-at-top,wrong-import-position


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


def summarize_trace(path: str, steps: int, top: int) -> str:
  from jax.profiler import ProfileData  # pylint: disable=g-import-not-at-top
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
  total = sum(per_name.values())
  if not total:
    names = [(pl.name, [ln.name for ln in pl.lines][:8]) for pl in data.planes]
    return f"no GPU kernel events found in the trace; planes and lines: {names}"
  classes = collections.Counter()
  for name, ns in per_name.items():
    classes[kernel_class(name)] += ns
  per = steps * gpus          # times below are per step and per GPU
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
  parser = bench.common_parser(__doc__.splitlines()[0])
  parser.add_argument("--set", action="append", default=None, metavar="KEY=VALUE",
                      help="extra config override, e.g. --set model.sync_batchnorm=False")
  parser.add_argument("--top", type=int, default=30)
  parser.add_argument("--logdir", default="")
  parser.set_defaults(steps=5, config="configs/agw_baseline.py")
  args = parser.parse_args()

  import jax  # pylint: disable=g-import-not-at-top
  config = bench.load_config(args.config)
  from vireid_jax.training import parallel, setup  # pylint: disable=g-import-not-at-top
  bench.apply_overrides(config, args)
  args.batch = (args.batch or [64])[0]
  p, k = bench.batch_layout(args.batch)
  config.batch.identities, config.batch.instances = p, k
  mesh = parallel.make_mesh()
  model = setup.build_model(config, args.num_classes)
  variables = setup.init_variables(config, model, mesh, jax.random.key(args.seed))
  tx = setup.build_optimizer(config, variables["params"], bench.STEPS_PER_EPOCH)
  state = setup.initial_train_state(config, variables, tx, mesh)
  step = setup.make_jitted_step(model, tx, config, mesh, bench.STEPS_PER_EPOCH)
  batch = bench.device_batches(mesh, p, k, args.image_size, args.num_classes, args.seed, count=1)[0]
  for _ in range(5):
    state, _ = step(state, batch)
  jax.block_until_ready(state)
  logdir = args.logdir or tempfile.mkdtemp(prefix="vireid_profile_")
  t = time.time()
  with jax.profiler.trace(logdir):
    for _ in range(args.steps):
      state, _ = step(state, batch)
    jax.block_until_ready(state)
  print(f"{args.config} batch {args.batch}: {(time.time() - t) / args.steps * 1e3:.2f} ms/step "
        "while tracing")
  traces = sorted(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True))
  if not traces:
    print("no trace written")
    return 1
  print(summarize_trace(traces[-1], args.steps, args.top))
  return 0


if __name__ == "__main__":
  sys.exit(main())
