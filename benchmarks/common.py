"""What every benchmark shares: timing, rates, reports, the summary table, the config flag.

Framework-free (only the standard library, plus absl and ml_collections for
`--config`), so the PyTorch reference and `--summarize` pull in no JAX, and
both frameworks are timed by the same code:

- `time_steps`: timed chunks of steps, each ended by waiting on the device;
- `matmul_peak`: the bf16 matmul rate that `fraction_of_peak` divides by;
- `add_rates`, `describe_result`, `write_report`, `summarize`: one JSON report
  format for every script and one table over any set of reports;
- `parse_args`: argparse for the benchmark flags plus `--config` parsed by
  `ml_collections.config_flags`, with `--config.key=value` overrides as in
  `vireid_jax.main`.
"""

from __future__ import annotations

import argparse
import ast
import collections
import json
import os
import statistics
import sys
import time
from typing import Any, Callable, Sequence

from absl import flags
from ml_collections import config_flags

INSTANCES = 4             # K: images per identity per modality, as in training
NUM_CLASSES = 395         # SYSU-MM01 training identities



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


def check_batches(parser: argparse.ArgumentParser, batches) -> list[int]:
  """The `--batch` values (default 64), or the parser's error for one the sampler cannot make."""
  batches = list(batches or [64])
  for b in batches:
    try:
      batch_layout(b)
    except ValueError as e:
      parser.error(str(e))
  return batches


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
  ap = argparse.ArgumentParser(
      description=description,
      epilog="--config=FILE[:ARG] (e.g. configs/sysu.py) and --config.KEY=VALUE overrides are "
             "parsed by ml_collections.config_flags, as by python -m vireid_jax.main.")
  ap.add_argument("--batch", type=int, action="append", default=None,
                  help="images per step, both modalities (2*P*K, K=4); repeat for several sizes")
  ap.add_argument("--steps", type=int, default=30, help="timed steps per batch size")
  ap.add_argument("--warmup", type=int, default=5, help="untimed steps after compilation")
  ap.add_argument("--chunks", type=int, default=5, help="timed chunks (for the median step time)")
  ap.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float32"),
                  help="compute dtype (parameters stay float32)")
  ap.add_argument("--image_size", type=parse_image_size, default=(288, 144), help="HEIGHT,WIDTH")
  ap.add_argument("--depth", type=int, default=50, choices=(10, 18, 34, 50))
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
        f"{r.get('framework', '?'):<9} {res.get('variant', {}).get('name', r.get('mode', '?')):<8} "
        f"{r.get('model', '?'):<5} "
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


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None,
               default_config: str | None = None):
  """(args, config): the parser's flags, then `--config` and `--config.KEY=VALUE` via config_flags.

  What argparse does not know goes to a private absl `FlagValues` holding only
  the config flag, so a bad override fails as `vireid_jax.main` would fail on
  it. `args.config` is the config spec (None without one) and
  `args.config_overrides` the overrides given, for the report.
  """
  args, rest = parser.parse_known_args(argv)
  given = any(a == "--config" or a.startswith("--config=") for a in rest)
  if default_config and not given:
    rest = [f"--config={default_config}", *rest]
  config, overrides = None, {}
  if rest:
    values = flags.FlagValues()
    config_flags.DEFINE_config_file("config", None, "config file", flag_values=values)
    try:
      values([parser.prog, *rest])
    except (flags.Error, AttributeError, KeyError, ValueError, TypeError, OSError) as e:
      parser.error(f"{' '.join(rest)}: {e}")
    config = values.config
    if config is None:
      parser.error(f"{' '.join(rest)}: overrides need --config=FILE first.")
    args.config = config_flags.get_config_filename(values["config"])
    overrides = dict(config_flags.get_override_values(values["config"]))
  else:
    args.config = None
  args.config_overrides = {k: v if isinstance(v, (int, float, str, bool)) else repr(v)
                           for k, v in overrides.items()}
  return args, config


def load_config(spec: str, overrides: Sequence[str] = ()):
  """The ConfigDict of `FILE[:ARG]` with `--config.KEY=VALUE` overrides, as config_flags reads it."""
  values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "config file", flag_values=values)
  values(["load_config", f"--config={spec}", *overrides])
  return values.config


def set_keys(config, items) -> dict:
  """Applies `KEY=VALUE` strings (values parsed as Python literals); returns what was set."""
  done = {}
  for item in items:
    key, sep, text = item.partition("=")
    if not sep:
      raise ValueError(f"{item!r}: write KEY=VALUE, e.g. model.branch=head.")
    try:
      value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
      value = text
    config.update_from_flattened_dict({key: value})
    done[key] = value
  return done
