"""Times the real jitted training step on device-resident synthetic batches.

  python -m benchmarks.step_speed --config=configs/agw_baseline.py \
      --batch=64 --batch=128 --steps=30 --warmup=5 --out=bench_out/jax_agw.json

The step is `setup.make_jitted_step` (sharded, state-donating), compiled
ahead of time once per batch size so that compilation stays out of the timings
and the FLOP count comes from the very step that is timed. Batches are random
uint8 images generated on the device with the sampler's label layout (P
identities x K rows, same identity order in both modalities), so the input
pipeline is not measured. `torch_reference.py` writes the same report format;
`python -m benchmarks.summarize FILE...` prints the table of several reports.

`prepare_step` (model, state, jitted step and batches of one config) is what
the other JAX benchmarks (`profile_step`, `collectives`, `step_ab`) build on.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata as md
import os
import platform
import sys
import time
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common
from benchmarks.model_flops import jaxpr_flops
from vireid_jax import config_defaults
from vireid_jax.training import parallel, setup
from vireid_jax.training import train_step as train_step_lib

STEPS_PER_EPOCH = 1000    # only feeds the LR schedule; no effect on speed


def apply_overrides(config, args) -> None:
  """The benchmark flags over the config, except where `--config.KEY=VALUE` set the key."""
  given = args.config_overrides
  for key, value in (("model.depth", args.depth), ("model.dtype", args.dtype),
                     ("data.image_size", tuple(args.image_size)), ("seed", args.seed)):
    if key not in given:
      config.update_from_flattened_dict({key: value})
  config.model.pretrained = "none"     # random init: same speed, no weight files needed


def model_name(config) -> str:
  return "full" if config.model.intra_branches else "agw"


def versions_jax() -> dict[str, str]:
  out = {"python": platform.python_version()}
  for name in ("jax", "jaxlib", "flax", "optax", "numpy"):
    try:
      out[name] = md.version(name)
    except md.PackageNotFoundError:
      pass
  return out


def jax_matmul_peak(n: int, seed: int = 0) -> dict[str, float]:
  ka, kb = jax.random.split(jax.random.key(seed))
  # Random (never zero) operands: zeros run faster than real data on some GPUs.
  a = jax.random.normal(ka, (n, n), jnp.float32).astype(jnp.bfloat16)
  b = jax.random.normal(kb, (n, n), jnp.float32).astype(jnp.bfloat16)
  mm = jax.jit(lambda x, y: x @ y)
  return common.matmul_peak(lambda: mm(a, b), lambda o: o.block_until_ready(), 2.0 * n ** 3)


def cost_of(stage) -> dict:
  """XLA's cost analysis as a dict (older JAX returns a one-element list)."""
  try:
    cost = stage.cost_analysis()
  except Exception as e:  # pylint: disable=broad-except
    print(f"cost_analysis unavailable: {e!r}", file=sys.stderr)
    return {}
  if isinstance(cost, (list, tuple)):
    cost = cost[0] if cost else {}
  return dict(cost or {})


def device_batches(mesh, p: int, k: int, image_size, num_classes: int, seed: int,
                   count: int = 2) -> list[dict]:
  """`count` batches made on the device, sharded like training batches."""
  if p > num_classes:
    raise ValueError(f"P={p} identities > --num_classes={num_classes}: lower --batch.")
  data = parallel.batch_sharded(mesh)
  h, w = image_size
  n = p * k
  gen = jax.jit(lambda key: (jax.random.bits(jax.random.fold_in(key, 0), (n, h, w, 3), jnp.uint8),
                             jax.random.bits(jax.random.fold_in(key, 1), (n, h, w, 3), jnp.uint8)),
                out_shardings=(data, data))
  rng = np.random.default_rng(seed)
  batches = []
  for i in range(count):
    # As the sampler: P identities without replacement, K contiguous rows each,
    # the same identity order in both modalities.
    labels = np.repeat(rng.choice(num_classes, p, replace=False), k).astype(np.int32)
    vis, ir = gen(jax.random.key(seed * 1000 + i))
    batches.append({"visible": vis, "infrared": ir,
                    "visible_labels": jax.device_put(labels, data),
                    "infrared_labels": jax.device_put(labels.copy(), data)})
  return batches


@dataclasses.dataclass
class PreparedStep:
  """One config's model, initial variables, optimiser and jitted (not yet compiled) step."""
  config: Any
  mesh: Any
  model: Any
  variables: dict
  tx: Any
  step_fn: Any

  def state(self):
    """A fresh train state (the step donates its input state, so each run needs its own)."""
    return setup.initial_train_state(self.config, self.variables, self.tx, self.mesh)

  def batches(self, batch: int, num_classes: int, image_size, seed: int, count: int = 2):
    p, k = common.batch_layout(batch)
    self.config.batch.identities, self.config.batch.instances = p, k
    config_defaults.validate(self.config, num_classes=num_classes,
                             num_devices=self.mesh.size)
    return device_batches(self.mesh, p, k, image_size, num_classes, seed, count)


def prepare_step(config, num_classes: int, seed: int, model=None) -> PreparedStep:
  """Initialises `model` (default: the config's) and builds the trainer's jitted step for it."""
  mesh = parallel.make_mesh()
  config_defaults.validate(config, num_classes=num_classes, num_devices=mesh.size)
  model = model if model is not None else setup.build_model(config, num_classes)
  variables = setup.init_variables(config, model, mesh, jax.random.key(seed))
  jax.block_until_ready(variables)
  tx = setup.build_optimizer(config, variables["params"], STEPS_PER_EPOCH)
  step_fn = setup.make_jitted_step(model, tx, config, mesh, STEPS_PER_EPOCH)
  return PreparedStep(config, mesh, model, variables, tx, step_fn)


def count_jax_flops(args, config) -> dict:
  """`--flops_only`: the step's model FLOPs per batch size, traced on abstract values.

  Nothing is initialised, compiled or run, so any config and size is counted in
  seconds on a CPU.
  """
  mesh = parallel.make_mesh()
  model = setup.build_model(config, args.num_classes)
  report = {"framework": "jax", "mode": "flops_only", "config": args.config,
            "overrides": args.config_overrides, "model": model_name(config),
            "image_size": list(args.image_size), "depth": args.depth, "results": []}
  state = setup.abstract_train_state(config, model, STEPS_PER_EPOCH, mesh)
  tx = setup.build_optimizer(config, state.params, STEPS_PER_EPOCH)
  step_fn = setup.make_jitted_step(model, tx, config, mesh, STEPS_PER_EPOCH)
  for b in sorted(set(args.batch or [64])):
    p, k = common.batch_layout(b)
    batch = jax.eval_shape(lambda: device_batches(mesh, p, k, args.image_size, args.num_classes,
                                                  args.seed, count=1)[0])
    flops = jaxpr_flops(step_fn.trace(state, batch).jaxpr)
    report["results"].append({"batch": b, "flops_per_step": flops["total"],
                              "flops_convolution": flops["convolution"],
                              "flops_matmul": flops["matmul"]})
    print(f"batch {b:4d}: {flops['total'] / 1e9:.2f} GFLOP per step, "
          f"{flops['total'] / b / 1e9:.3f} per image (convolutions "
          f"{flops['convolution'] / 1e9:.2f}, matmuls {flops['matmul'] / 1e9:.2f})", flush=True)
  common.write_report(args.out, report)
  return report


def base_report(args, config, mode: str) -> dict:
  """The fields every JAX report carries (device, versions, flags, sizes)."""
  devices = jax.devices()
  return {
      "framework": "jax", "mode": mode, "model": model_name(config), "config": args.config,
      "device_kind": devices[0].device_kind, "platform": devices[0].platform,
      "num_devices": len(devices), "versions": versions_jax(),
      "xla_flags": os.environ.get("XLA_FLAGS", ""),
      "dtype": args.dtype, "image_size": list(args.image_size), "depth": args.depth,
      "num_classes": args.num_classes, "steps": args.steps, "warmup": args.warmup,
      "overrides": args.config_overrides,
      "flops_note": ("flops_per_step: model FLOPs per device (the global step's over "
                     "num_devices), convolutions and matmuls counted from the step's jaxpr "
                     "(benchmarks/model_flops.py), as torch.utils.flop_counter counts. "
                     "xla_flops_compiled / xla_flops_lowered: XLA's cost analysis per "
                     "device after / before optimisation (on GPU it omits cuDNN "
                     "convolutions)."),
      "results": []}


def add_peak(report: dict, args) -> None:
  if args.peak_size:
    peak = jax_matmul_peak(args.peak_size, args.seed)
    report["peak_tflops"] = peak["tflops_median"]
    report["peak_tflops_best"] = peak["tflops_best"]
    report["peak_size"] = args.peak_size
    print(f"bf16 matmul {args.peak_size}^3: {peak['tflops_median']:.1f} TFLOP/s median, "
          f"{peak['tflops_best']:.1f} best", flush=True)


def compile_step(prepared: PreparedStep, state, batch, compiler_options: dict | None = None):
  """(compiled, traced, lowered, compile seconds) of the step for this state and batch."""
  t0 = time.perf_counter()
  traced = prepared.step_fn.trace(state, batch)
  lowered = traced.lower()
  compiled = lowered.compile(compiler_options) if compiler_options else lowered.compile()
  return compiled, traced, lowered, time.perf_counter() - t0


class StepRunner:
  """Calls a compiled step on a rotating set of batches, keeping the donated state."""

  def __init__(self, compiled, state, batches):
    self.compiled, self.state, self.batches = compiled, state, batches
    self.metrics, self.i = None, 0

  def __call__(self):
    self.state, self.metrics = self.compiled(self.state, self.batches[self.i % len(self.batches)])
    self.i += 1
    return self.state


def step_result(prepared: PreparedStep, runner: StepRunner, traced, batch: int) -> dict:
  """The FLOP counts, final loss and non-finite count of a timed run (no rates yet)."""
  n = prepared.mesh.size
  flops = jaxpr_flops(traced.jaxpr)
  metrics = jax.device_get(runner.metrics)
  p, k = common.batch_layout(batch)
  return {"batch": batch, "identities": p, "instances": k,
          "flops_per_step": flops["total"] / n or None, "flops_source": "jaxpr_conv_matmul",
          "flops_convolution": flops["convolution"] / n, "flops_matmul": flops["matmul"] / n,
          "final_loss": float(metrics.get("loss/total", float("nan"))),
          "nonfinite_steps": int(jax.device_get(runner.state.nonfinite_count))}


def run_jax(args, config) -> dict:
  batches = sorted(set(args.batch or [64]))
  for b in batches:
    common.batch_layout(b)              # fail on bad sizes before any work
  report = base_report(args, config, args.label)
  dev0 = jax.devices()[0]
  print(f"JAX {jax.__version__} | backend {jax.default_backend()} | {report['num_devices']} x "
        f"{dev0.device_kind} | model {report['model']} ({args.config}) depth {args.depth} "
        f"{args.image_size[0]}x{args.image_size[1]} {args.dtype}", flush=True)
  add_peak(report, args)
  common.write_report(args.out, report)

  t0 = time.perf_counter()
  prepared = prepare_step(config, args.num_classes, args.seed)
  report["num_params"] = train_step_lib.tree_param_count(prepared.variables["params"])
  print(f"init {time.perf_counter() - t0:.1f} s, {report['num_params']:,} parameters", flush=True)

  for b in batches:
    data = prepared.batches(b, args.num_classes, args.image_size, args.seed + b)
    state = prepared.state()
    compiled, traced, lowered, compile_s = compile_step(prepared, state, data[0])
    runner = StepRunner(compiled, state, data)
    if args.warmup:
      common.time_steps(runner, jax.block_until_ready, args.warmup, chunks=1)
    res = common.time_steps(runner, jax.block_until_ready, args.steps, args.chunks)
    res.update(step_result(prepared, runner, traced, b))
    cost, cost_lowered = cost_of(compiled), cost_of(lowered)
    res.update({
        "compile_s": compile_s,
        "xla_flops_compiled": float(cost.get("flops", 0.0)) or None,
        "xla_flops_lowered": float(cost_lowered.get("flops", 0.0)) or None,
        "bytes_accessed": float(cost.get("bytes accessed", 0.0)) or None,
    })
    common.add_rates(res, b, res["flops_per_step"], report.get("peak_tflops"))
    stats = dev0.memory_stats() or {}
    if "peak_bytes_in_use" in stats:
      res["peak_memory_gb"] = stats["peak_bytes_in_use"] / 2 ** 30   # process peak so far
    report["results"].append(res)
    common.write_report(args.out, report)
    print(common.describe_result(res), flush=True)
    del runner, state, compiled, lowered, data
  return report


def main(argv: Sequence[str] | None = None) -> int:
  ap = common.common_parser(__doc__.split("\n\n")[0])
  ap.add_argument("--label", default="jit",
                  help="the summary's mode column for this run, e.g. old/new in an A/B")
  ap.add_argument("--flops_only", action="store_true",
                  help="only count the step's model FLOPs per batch size (no compile, no run)")
  args, config = common.parse_args(ap, argv)
  if config is None:
    ap.error("--config is required, e.g. --config=configs/agw_baseline.py.")
  common.check_batches(ap, args.batch)
  apply_overrides(config, args)
  if args.flops_only:
    count_jax_flops(args, config)
  else:
    run_jax(args, config)
  return 0


if __name__ == "__main__":
  sys.exit(main())
