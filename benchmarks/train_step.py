"""Times the real jitted training step on device-resident synthetic batches.

  python benchmarks/train_step.py --config=configs/agw_baseline.py \
      --batch=64 --batch=128 --steps=30 --warmup=5 --out=bench_out/jax_agw.json

The step is `setup.make_jitted_step` (sharded, state-donating), compiled
ahead of time once per batch size so that compilation stays out of the timings
and XLA's FLOP count comes from the very executable that is timed. Batches are
random uint8 images generated on the device with the sampler's label layout
(P identities x K rows, same identity order in both modalities), so the input
pipeline is not measured. The same report format is written by
`torch_reference.py`; `--summarize FILE...` prints the table of several reports.

This module imports only the standard library at load time: the timing and
report helpers below are framework-free and `torch_reference.py` reuses them
without pulling in JAX.
"""

from __future__ import annotations

import argparse
import ast
import collections
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
from typing import Any, Callable, Sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_flops import jaxpr_flops  # pylint: disable=g-import-not-at-top,wrong-import-position

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INSTANCES = 4             # K: images per identity per modality, as in training
NUM_CLASSES = 395         # SYSU-MM01 training identities
STEPS_PER_EPOCH = 1000    # only feeds the LR schedule; no effect on speed


# ----------------------------------------------------------------------------
# Framework-free helpers (also used by torch_reference.py).

def parse_image_size(text: str) -> tuple[int, int]:
  try:
    h, w = (int(v) for v in text.split(","))
  except ValueError:
    raise argparse.ArgumentTypeError(
        f"--image_size={text!r}: give HEIGHT,WIDTH, e.g. 288,144.") from None
  if min(h, w) < 32:
    raise argparse.ArgumentTypeError(f"--image_size={text!r}: each side must be >= 32.")
  return h, w


def batch_layout(batch: int, instances: int = INSTANCES) -> tuple[int, int]:
  """Total images per step B = 2*P*K -> (P, K); refuses sizes the sampler cannot make."""
  if batch <= 0 or batch % (2 * instances):
    raise ValueError(f"--batch={batch}: the batch counts both modalities (2*P*K images, "
                     f"K={instances}), so it must be a positive multiple of {2 * instances}.")
  p = batch // (2 * instances)
  if p < 2:
    raise ValueError(f"--batch={batch} gives P={p} identities; the triplet loss needs P >= 2, "
                     f"so use --batch >= {4 * instances}.")
  return p, instances


def chunk_sizes(steps: int, chunks: int) -> list[int]:
  """`steps` split into at most `chunks` near-equal positive parts."""
  chunks = max(1, min(int(chunks), int(steps)))
  base, extra = divmod(int(steps), chunks)
  return [base + (1 if i < extra else 0) for i in range(chunks)]


def time_steps(step: Callable[[], Any], block: Callable[[Any], None], steps: int,
               chunks: int = 5) -> dict[str, Any]:
  """Runs `steps` calls of `step` in timed chunks, blocking on the device at each chunk's end.

  `step()` launches one training step and returns something `block` can wait
  on; devices run launches in order, so waiting on the last one waits for all.
  The mean covers every timed step (throughput as training sees it, including
  the few chunk-end syncs); the median over chunks resists a stray slow chunk.
  """
  if steps < 1:
    raise ValueError(f"--steps={steps}: need at least one timed step.")
  per_step, total = [], 0.0
  for n in chunk_sizes(steps, chunks):
    t0 = time.perf_counter()
    out = None
    for _ in range(n):
      out = step()
    block(out)
    dt = time.perf_counter() - t0
    total += dt
    per_step.append(dt / n)
  return {"step_ms_mean": 1e3 * total / steps,
          "step_ms_median": 1e3 * statistics.median(per_step),
          "step_ms_min": 1e3 * min(per_step),
          "chunk_step_ms": [1e3 * t for t in per_step]}


def matmul_peak(run: Callable[[], Any], block: Callable[[Any], None], flops_per_call: float,
                warmup: int = 3, reps: int = 10, trials: int = 5) -> dict[str, float]:
  """TFLOP/s of back-to-back calls of `run` (a matmul): median and best of `trials`."""
  out = None
  for _ in range(warmup):
    out = run()
  block(out)
  rates = []
  for _ in range(trials):
    t0 = time.perf_counter()
    for _ in range(reps):
      out = run()
    block(out)
    rates.append(flops_per_call * reps / (time.perf_counter() - t0) / 1e12)
  return {"tflops_median": statistics.median(rates), "tflops_best": max(rates)}


def add_rates(result: dict, batch: int, flops: float | None,
              peak_tflops: float | None) -> dict:
  """Images/s from the mean step time; achieved TFLOP/s and its fraction of the matmul peak."""
  step_s = result["step_ms_mean"] / 1e3
  result["images_per_s"] = batch / step_s
  result["images_per_s_median"] = batch / (result["step_ms_median"] / 1e3)
  if flops:
    result["achieved_tflops"] = flops / step_s / 1e12
    if peak_tflops:
      result["fraction_of_peak"] = result["achieved_tflops"] / peak_tflops
  return result


def describe_result(res: dict) -> str:
  """One log line per batch size."""
  text = (f"batch {res['batch']:4d} (P={res['identities']}, K={res['instances']}): "
          f"{res['step_ms_mean']:.2f} ms/step mean, {res['step_ms_median']:.2f} median, "
          f"{res['images_per_s']:.1f} img/s, compile {res['compile_s']:.1f} s")
  if res.get("flops_per_step"):
    text += (f", {res['flops_per_step'] / 1e9:.1f} GFLOP/step ({res['flops_source']}), "
             f"{res['achieved_tflops']:.1f} TFLOP/s")
    if "fraction_of_peak" in res:
      text += f" = {100 * res['fraction_of_peak']:.1f}% of the matmul peak"
  return text + f", loss {res['final_loss']:.4g}"


def write_report(path: str | None, report: dict) -> None:
  """Writes the report atomically (rewritten after every batch size, so a timeout keeps the rest)."""
  if not path:
    return
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = f"{path}.tmp"
  with open(tmp, "w") as f:
    json.dump(report, f, indent=2, sort_keys=True)
  os.replace(tmp, path)


def common_parser(description: str) -> argparse.ArgumentParser:
  """The flags both benchmarks share, so the two command lines read the same."""
  ap = argparse.ArgumentParser(description=description)
  ap.add_argument("--config", default=None, help="config file with get_config(), e.g. configs/sysu.py")
  ap.add_argument("--batch", type=int, action="append", default=None,
                  help="images per step, both modalities (2*P*K, K=4); repeat for several sizes")
  ap.add_argument("--steps", type=int, default=30, help="timed steps per batch size")
  ap.add_argument("--warmup", type=int, default=5, help="untimed steps after compilation")
  ap.add_argument("--chunks", type=int, default=5, help="timed chunks (for the median step time)")
  ap.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float32"),
                  help="compute dtype (parameters stay float32)")
  ap.add_argument("--image_size", type=parse_image_size, default=(288, 144), help="HEIGHT,WIDTH")
  ap.add_argument("--depth", type=int, default=50, choices=(18, 34, 50))
  ap.add_argument("--num_classes", type=int, default=NUM_CLASSES)
  ap.add_argument("--peak_size", type=int, default=8192,
                  help="n of the n^3 bf16 matmul that measures the peak (0 skips it)")
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument("--out", default=None, help="JSON report path")
  return ap


def load_reports(paths: Sequence[str]) -> list[dict]:
  reports = []
  for p in paths:
    try:
      with open(p) as f:
        reports.append(json.load(f))
    except (OSError, json.JSONDecodeError) as e:
      print(f"skipping {p}: {e}", file=sys.stderr)
  return reports


def summarize(reports: Sequence[dict]) -> str:
  """One table over several reports, then JAX/torch throughput ratios per model and batch size."""
  head = (f"{'framework':<9} {'mode':<8} {'model':<5} {'dev':>3} {'batch':>5} {'ms/step':>8} "
          f"{'median':>8} {'img/s':>8} {'TFLOP/s':>8} {'%peak':>6} {'GFLOP/step':>10} "
          f"{'mem GB':>7} {'compile s':>9}")
  lines = [head, "-" * len(head)]

  def fmt(v, width, prec):
    return f"{v:{width}.{prec}f}" if isinstance(v, (int, float)) else f"{'-':>{width}}"

  rows = [(r, res) for r in reports for res in r.get("results", [])]
  for r, res in rows:
    flops = res.get("flops_per_step")
    frac = res.get("fraction_of_peak")
    lines.append(
        f"{r.get('framework', '?'):<9} {r.get('mode', '?'):<8} {r.get('model', '?'):<5} "
        f"{r.get('num_devices', 1):>3d} {res['batch']:>5d} {fmt(res.get('step_ms_mean'), 8, 2)} "
        f"{fmt(res.get('step_ms_median'), 8, 2)} {fmt(res.get('images_per_s'), 8, 1)} "
        f"{fmt(res.get('achieved_tflops'), 8, 1)} {fmt(100 * frac if frac else None, 6, 1)} "
        f"{fmt(flops / 1e9 if flops else None, 10, 1)} {fmt(res.get('peak_memory_gb'), 7, 2)} "
        f"{fmt(res.get('compile_s'), 9, 1)}")
  peaks = sorted({(r.get("framework"), round(r["peak_tflops"], 1)) for r in reports
                  if r.get("peak_tflops")})
  if peaks:
    lines.append("bf16 matmul peak (TFLOP/s, median): " +
                 ", ".join(f"{fw} {p}" for fw, p in peaks))
  lines.append("FLOPs (per device): convolutions and matmuls only; jax = counted on the "
               "step's jaxpr, torch = torch.utils.flop_counter.")
  jax_res = {(r.get("model"), res["batch"]): res for r, res in rows
             if r.get("framework") == "jax" and r.get("num_devices", 1) == 1}
  for r, res in rows:
    ref = jax_res.get((r.get("model"), res["batch"]))
    if r.get("framework") == "torch" and ref and res.get("images_per_s"):
      lines.append(f"JAX/torch-{r.get('mode')} images/s ratio at batch {res['batch']} "
                   f"({r.get('model')}): {ref['images_per_s'] / res['images_per_s']:.2f}x "
                   "(>1: JAX faster)")
  lines.extend(scaling_lines(rows, jax_res))
  lines.extend(ab_lines(rows))
  return "\n".join(lines)


def ab_lines(rows) -> list[str]:
  """A/B runs (reports labelled "old" and "new"): median images/s of new over old per setting."""
  rates = collections.defaultdict(list)
  for r, res in rows:
    if r.get("mode") in ("old", "new") and res.get("images_per_s_median"):
      key = (r.get("model"), r.get("num_devices", 1), res["batch"])
      rates[key + (r["mode"],)].append(res["images_per_s_median"])
  out = []
  for (model, n, batch, label), new in sorted(rates.items()):
    old = rates.get((model, n, batch, "old"))
    if label == "new" and old:
      ratio = statistics.median(new) / statistics.median(old)
      out.append(f"A/B {model}, batch {batch} on {n} device(s): new/old images/s = {ratio:.3f} "
                 f"({len(old)} old and {len(new)} new runs, medians)")
  return out


def scaling_lines(rows, single: dict) -> list[str]:
  """Data-parallel scaling: images/s on N devices over one device at the same per-device batch."""
  out = []
  for r, res in rows:
    n = r.get("num_devices", 1)
    if r.get("framework") != "jax" or n <= 1 or res["batch"] % n or not res.get("images_per_s"):
      continue
    one = single.get((r.get("model"), res["batch"] // n))
    if one and one.get("images_per_s"):
      factor = res["images_per_s"] / one["images_per_s"]
      out.append(f"scaling {r.get('model')}, {res['batch'] // n} images per device: {n} devices "
                 f"= {factor:.2f}x one device ({100 * factor / n:.0f}% efficiency)")
  return out


# ----------------------------------------------------------------------------
# JAX.

def load_config(path: str):
  """`get_config()` of a config file, or `get_config(ARG)` for `file.py:ARG` (as config_flags)."""
  path, _, arg = (path or "").partition(":")
  if not path:
    raise ValueError("--config is required, e.g. --config=configs/agw_baseline.py.")
  if ROOT not in sys.path:
    sys.path.insert(0, ROOT)          # configs import vireid_jax.config_defaults
  path = path if os.path.isabs(path) else os.path.join(os.getcwd(), path)
  if not os.path.isfile(path):
    alt = os.path.join(ROOT, os.path.relpath(path, os.getcwd()))
    if not os.path.isfile(alt):
      raise FileNotFoundError(f"--config={path}: no such file; pass e.g. configs/sysu.py.")
    path = alt
  spec = importlib.util.spec_from_file_location("bench_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, "get_config"):
    raise ValueError(f"{path} has no get_config(); pass a file from configs/.")
  return module.get_config(arg) if arg else module.get_config()


def apply_overrides(config, args) -> None:
  """Benchmark flags over the config; `--set key=value` for anything else."""
  config.model.depth = args.depth
  config.model.dtype = args.dtype
  config.model.pretrained = ""         # random init: same speed, no weight files needed
  config.data.image_size = tuple(args.image_size)
  config.seed = args.seed
  set_keys(config, args.set or ())


def set_keys(config, items) -> dict:
  """Applies `KEY=VALUE` strings (values parsed as Python literals); returns what was set."""
  done = {}
  for item in items:
    key, sep, text = item.partition("=")
    if not sep:
      raise ValueError(f"--set {item!r}: write KEY=VALUE, e.g. --set model.branch=head.")
    try:
      value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
      value = text
    config.update_from_flattened_dict({key: value})
    done[key] = value
  return done


def versions_jax() -> dict[str, str]:
  import importlib.metadata as md  # pylint: disable=g-import-not-at-top
  out = {"python": platform.python_version()}
  for name in ("jax", "jaxlib", "flax", "optax", "numpy"):
    try:
      out[name] = md.version(name)
    except md.PackageNotFoundError:
      pass
  return out


def jax_matmul_peak(n: int, seed: int = 0) -> dict[str, float]:
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  ka, kb = jax.random.split(jax.random.key(seed))
  # Random (never zero) operands: zeros run faster than real data on some GPUs.
  a = jax.random.normal(ka, (n, n), jnp.float32).astype(jnp.bfloat16)
  b = jax.random.normal(kb, (n, n), jnp.float32).astype(jnp.bfloat16)
  mm = jax.jit(lambda x, y: x @ y)
  return matmul_peak(lambda: mm(a, b), lambda o: o.block_until_ready(), 2.0 * n ** 3)


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
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from vireid_jax.training import parallel  # pylint: disable=g-import-not-at-top
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


def count_jax_flops(args) -> dict:
  """`--flops_only`: the step's model FLOPs per batch size, traced on abstract values.

  Nothing is initialised, compiled or run, so any config and size is counted in
  seconds on a CPU.
  """
  import jax  # pylint: disable=g-import-not-at-top
  config = load_config(args.config)
  from vireid_jax.training import parallel, setup  # pylint: disable=g-import-not-at-top
  apply_overrides(config, args)
  mesh = parallel.make_mesh()
  model = setup.build_model(config, args.num_classes)
  report = {"framework": "jax", "mode": "flops_only", "config": args.config,
            "model": "full" if config.model.intra_branches else "agw",
            "image_size": list(args.image_size), "depth": args.depth, "results": []}
  state = setup.abstract_train_state(config, model, STEPS_PER_EPOCH, mesh)
  tx = setup.build_optimizer(config, state.params, STEPS_PER_EPOCH)
  step_fn = setup.make_jitted_step(model, tx, config, mesh, STEPS_PER_EPOCH)
  for b in sorted(set(args.batch or [64])):
    p, k = batch_layout(b)
    batch = jax.eval_shape(lambda: device_batches(mesh, p, k, args.image_size, args.num_classes,
                                                  args.seed, count=1)[0])
    flops = jaxpr_flops(step_fn.trace(state, batch).jaxpr)
    report["results"].append({"batch": b, "flops_per_step": flops["total"],
                              "flops_convolution": flops["convolution"],
                              "flops_matmul": flops["matmul"]})
    print(f"batch {b:4d}: {flops['total'] / 1e9:.2f} GFLOP per step, "
          f"{flops['total'] / b / 1e9:.3f} per image (convolutions "
          f"{flops['convolution'] / 1e9:.2f}, matmuls {flops['matmul'] / 1e9:.2f})", flush=True)
  write_report(args.out, report)
  return report


def run_jax(args) -> dict:
  import jax  # pylint: disable=g-import-not-at-top
  config = load_config(args.config)   # also puts the repo root on sys.path
  from vireid_jax import config_defaults  # pylint: disable=g-import-not-at-top
  from vireid_jax.training import parallel, setup  # pylint: disable=g-import-not-at-top
  from vireid_jax.training import train_step as train_step_lib  # pylint: disable=g-import-not-at-top

  apply_overrides(config, args)
  batches = sorted(set(args.batch or [64]))
  layouts = {b: batch_layout(b) for b in batches}     # fail on bad sizes before any work
  devices = jax.devices()
  dev0 = devices[0]
  model_name = "full" if config.model.intra_branches else "agw"
  report = {
      "framework": "jax", "mode": args.label, "model": model_name, "config": args.config,
      "device_kind": dev0.device_kind, "platform": dev0.platform,
      "num_devices": len(devices), "versions": versions_jax(),
      "xla_flags": os.environ.get("XLA_FLAGS", ""),
      "dtype": args.dtype, "image_size": list(args.image_size), "depth": args.depth,
      "num_classes": args.num_classes, "steps": args.steps, "warmup": args.warmup,
      "overrides": list(args.set or ()),
      "flops_note": ("flops_per_step: model FLOPs per device (the global step's over "
                     "num_devices), convolutions and matmuls counted from the step's jaxpr "
                     "(benchmarks/model_flops.py), as torch.utils.flop_counter counts. "
                     "xla_flops_compiled / xla_flops_lowered: XLA's cost analysis per "
                     "device after / before optimisation (on GPU it omits cuDNN "
                     "convolutions)."),
      "results": []}
  print(f"JAX {jax.__version__} | backend {jax.default_backend()} | {len(devices)} x "
        f"{dev0.device_kind} | model {model_name} ({args.config}) depth {args.depth} "
        f"{args.image_size[0]}x{args.image_size[1]} {args.dtype}", flush=True)

  if args.peak_size:
    peak = jax_matmul_peak(args.peak_size, args.seed)
    report["peak_tflops"] = peak["tflops_median"]
    report["peak_tflops_best"] = peak["tflops_best"]
    report["peak_size"] = args.peak_size
    print(f"bf16 matmul {args.peak_size}^3: {peak['tflops_median']:.1f} TFLOP/s median, "
          f"{peak['tflops_best']:.1f} best", flush=True)
  write_report(args.out, report)

  mesh = parallel.make_mesh()
  config_defaults.validate(config, num_classes=args.num_classes, num_devices=len(devices))
  model = setup.build_model(config, args.num_classes)
  t0 = time.perf_counter()
  variables = setup.init_variables(config, model, mesh, jax.random.key(args.seed))
  jax.block_until_ready(variables)
  tx = setup.build_optimizer(config, variables["params"], STEPS_PER_EPOCH)
  make_state = lambda v: setup.initial_train_state(config, v, tx, mesh)
  report["num_params"] = train_step_lib.tree_param_count(variables["params"])
  print(f"init {time.perf_counter() - t0:.1f} s, {report['num_params']:,} parameters", flush=True)
  step_fn = setup.make_jitted_step(model, tx, config, mesh, STEPS_PER_EPOCH)

  for b in batches:
    p, k = layouts[b]
    config.batch.identities, config.batch.instances = p, k
    config_defaults.validate(config, num_classes=args.num_classes, num_devices=len(devices))
    parallel.check_divisible(p * k)
    data = device_batches(mesh, p, k, args.image_size, args.num_classes, args.seed + b)
    state = make_state(variables)       # fresh buffers: the step donates its state

    t0 = time.perf_counter()
    traced = step_fn.trace(state, data[0])
    lowered = traced.lower()
    compiled = lowered.compile()
    compile_s = time.perf_counter() - t0
    model_flops = jaxpr_flops(traced.jaxpr)
    flops = model_flops["total"] / len(devices) or None
    cost, cost_lowered = cost_of(compiled), cost_of(lowered)

    holder = {"state": state, "metrics": None, "i": 0}

    def one_step():
      holder["state"], holder["metrics"] = compiled(holder["state"], data[holder["i"] % len(data)])
      holder["i"] += 1
      return holder["state"]

    block = jax.block_until_ready
    if args.warmup:
      time_steps(one_step, block, args.warmup, chunks=1)
    res = time_steps(one_step, block, args.steps, args.chunks)
    metrics = jax.device_get(holder["metrics"])
    res.update({
        "batch": b, "identities": p, "instances": k, "compile_s": compile_s,
        "flops_per_step": flops, "flops_source": "jaxpr_conv_matmul",
        "flops_convolution": model_flops["convolution"] / len(devices),
        "flops_matmul": model_flops["matmul"] / len(devices),
        "xla_flops_compiled": float(cost.get("flops", 0.0)) or None,
        "xla_flops_lowered": float(cost_lowered.get("flops", 0.0)) or None,
        "bytes_accessed": float(cost.get("bytes accessed", 0.0)) or None,
        "final_loss": float(metrics.get("loss/total", float("nan"))),
        "nonfinite_steps": int(jax.device_get(holder["state"].nonfinite_count)),
    })
    add_rates(res, b, flops, report.get("peak_tflops"))
    stats = dev0.memory_stats() or {}
    if "peak_bytes_in_use" in stats:
      res["peak_memory_gb"] = stats["peak_bytes_in_use"] / 2 ** 30   # process peak so far
    report["results"].append(res)
    write_report(args.out, report)
    print(describe_result(res), flush=True)
    del holder, state, compiled, lowered, data
  return report


def main(argv: Sequence[str] | None = None) -> int:
  ap = common_parser(__doc__.split("\n\n")[0])
  ap.add_argument("--set", action="append", default=None, metavar="KEY=VALUE",
                  help="extra config override, e.g. --set model.branch=head (repeatable)")
  ap.add_argument("--label", default="jit",
                  help="the summary's mode column for this run, e.g. old/new in an A/B")
  ap.add_argument("--flops_only", action="store_true",
                  help="only count the step's model FLOPs per batch size (no compile, no run)")
  ap.add_argument("--summarize", nargs="+", default=None, metavar="REPORT.json",
                  help="print the table of these reports and exit (imports no framework)")
  args = ap.parse_args(argv)
  if args.summarize:
    print(summarize(load_reports(args.summarize)))
    return 0
  if not args.config:
    ap.error("--config is required, e.g. --config=configs/agw_baseline.py.")
  try:
    for b in args.batch or [64]:
      batch_layout(b)
  except ValueError as e:
    ap.error(str(e))
  if args.flops_only:
    count_jax_flops(args)
  else:
    run_jax(args)
  return 0


if __name__ == "__main__":
  sys.exit(main())
