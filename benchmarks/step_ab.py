"""Times variants of the training step side by side in one process, interleaved round by round.

  python -m benchmarks.step_ab --config=configs/agw_baseline.py --batch=64 \
      --variant='remat=remat=conv' --variant='nograph=xla.xla_gpu_enable_command_buffer=' \
      --rounds=7 --steps=20 --out=bench_out/ab.json

Every variant (`variants.py`: config overrides, XLA options, rematerialisation)
is compiled first, then each round runs `--steps` steps of every variant,
starting from a different variant each round, so clock and temperature drift
fall on all of them alike. `base` (the plain step) always runs, and `base_again`
reruns base's executable on its own state: the spread between the two is the
noise floor of the comparison. Per variant the report gives the median
ms/step over rounds, the median of its per-round ratio to base, the bytes its
kernels move (`hlo_bytes.py` on its optimised HLO) and the loss it reached.
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Sequence

import jax

from benchmarks import common, hlo_bytes, step_speed, variants


def prepare_variant(variant, args, batch: int) -> dict:
  """Builds, compiles and warms up one variant at one batch size (its own config copy)."""
  config = common.load_config(args.config, [f"--config.{k}={v}"
                                            for k, v in args.config_overrides.items()])
  step_speed.apply_overrides(config, args)
  variant.apply(config)
  prepared = step_speed.prepare_step(config, args.num_classes, args.seed,
                                     variant.model(config, args.num_classes))
  data = prepared.batches(batch, args.num_classes, args.image_size, args.seed + batch)
  state = prepared.state()
  compiled, traced, _, compile_s = step_speed.compile_step(prepared, state, data[0],
                                                           variant.compiler_options)
  found = hlo_bytes.kernels(compiled.as_text())
  runner = step_speed.StepRunner(compiled, state, data)
  warm = common.time_steps(runner, jax.block_until_ready, args.warmup, chunks=1)
  return {"variant": variant, "prepared": prepared, "runner": runner, "traced": traced,
          "compile_s": compile_s, "kernels": len(found), "warmup_ms": warm["step_ms_mean"],
          "hlo_gb": sum(k.bytes for k in found) / 1e9,
          "hlo_fusion_gb": sum(k.bytes for k in found if k.category == "fusion") / 1e9}


def time_round(runner, steps: int) -> float:
  """ms per step over `steps` steps, the device waited on at the end."""
  t0 = time.perf_counter()
  for _ in range(steps):
    runner()
  jax.block_until_ready(runner.state)
  return 1e3 * (time.perf_counter() - t0) / steps


def run_batch(specs, args, batch: int, report: dict) -> list[dict]:
  runs = []
  for variant in specs:
    t0 = time.perf_counter()
    try:
      run = prepare_variant(variant, args, batch)
    except Exception as e:  # pylint: disable=broad-except
      # One variant's bad flag must not cost the others their measurement.
      print(f"batch {batch} {variant.name}: FAILED {type(e).__name__}: {str(e)[:400]}",
            flush=True)
      report["failed"].append({"variant": variant.name, "batch": batch, "error": str(e)[:2000]})
      continue
    print(f"batch {batch} {variant.name}: compiled in {run['compile_s']:.1f} s "
          f"({time.perf_counter() - t0:.1f} s with init), {run['kernels']} kernels, "
          f"{run['hlo_gb']:.2f} GB per step ({run['hlo_fusion_gb']:.2f} in fusions)", flush=True)
    runs.append(run)
  base = next((r for r in runs if r["variant"].name == "base"), None)
  if base is not None:
    # The noise floor: the same executable on its own state, timed like a variant.
    again = dict(base, variant=variants.Variant("base_again"),
                 runner=step_speed.StepRunner(base["runner"].compiled, base["prepared"].state(),
                                              base["runner"].batches))
    runs.insert(1, again)
  times = {id(r): [] for r in runs}
  timed = list(runs)          # the variants timed every round
  if base is not None:
    # A variant several times slower than base in the warm-up (e.g. without autotuning)
    # keeps its warm-up time and is not timed in the rounds.
    for r in runs:
      if r["warmup_ms"] > 3 * base["warmup_ms"]:
        print(f"batch {batch} {r['variant'].name}: {r['warmup_ms']:.1f} ms/step in the warm-up, "
              "over 3x base; not timed in the rounds", flush=True)
        times[id(r)].append(r["warmup_ms"])
        timed.remove(r)
  start = time.perf_counter()
  for rnd in range(args.rounds):
    k = rnd % len(timed)
    for r in timed[k:] + timed[:k]:
      times[id(r)].append(time_round(r["runner"], args.steps))
    report["results"] = ([x for x in report["results"] if x["batch"] != batch] +
                         summarize_rounds(runs, times, base, batch, report))
    common.write_report(args.out, report)
    print(f"batch {batch} round {rnd + 1}: " + ", ".join(
        f"{r['variant'].name} {times[id(r)][-1]:.2f}" for r in timed) + " ms/step", flush=True)
    if time.perf_counter() - start > args.max_round_seconds:
      print(f"batch {batch}: stopping after {rnd + 1} rounds (--max_round_seconds)", flush=True)
      break
  return [x for x in report["results"] if x["batch"] == batch]


def summarize_rounds(runs, times, base, batch: int, report: dict) -> list[dict]:
  """One result per variant from the rounds timed so far."""
  results = []
  for r in runs:
    ms = times[id(r)]
    res = {"batch": batch, "variant": r["variant"].describe(), "round_ms": ms,
           "step_ms_mean": statistics.fmean(ms), "step_ms_median": statistics.median(ms),
           "step_ms_min": min(ms), "compile_s": r["compile_s"], "kernels": r["kernels"],
           "hlo_gb": r["hlo_gb"], "hlo_fusion_gb": r["hlo_fusion_gb"]}
    res.update(step_speed.step_result(r["prepared"], r["runner"], r["traced"], batch))
    if base is not None:
      ratios = [b / t for b, t in zip(times[id(base)], ms)]
      res["speedup_vs_base_median"] = statistics.median(ratios)
      res["speedup_vs_base_range"] = [min(ratios), max(ratios)]
    results.append(res)
  base_flops = results[0]["flops_per_step"] if base is not None else None
  for res in results:
    # Same model math in every variant: rates use the plain step's FLOPs.
    common.add_rates(res, batch, base_flops or res["flops_per_step"], report.get("peak_tflops"))
  return results


def table(results: list[dict]) -> str:
  head = (f"{'batch':>5} {'variant':<14} {'ms/step':>8} {'img/s':>8} {'%peak':>6} "
          f"{'x base':>7} {'range':>13} {'GB/step':>8} {'kernels':>7} {'loss':>9}")
  lines = [head, "-" * len(head)]
  for r in results:
    frac = r.get("fraction_of_peak")
    sp = r.get("speedup_vs_base_median")
    rng = r.get("speedup_vs_base_range")
    lines.append(
        f"{r['batch']:>5} {r['variant']['name']:<14} {r['step_ms_median']:>8.2f} "
        f"{r['images_per_s_median']:>8.0f} {100 * frac if frac else 0:>6.1f} "
        f"{sp if sp else 0:>7.3f} "
        f"{(f'{rng[0]:.3f}-{rng[1]:.3f}' if rng else '-'):>13} {r['hlo_gb']:>8.2f} "
        f"{r['kernels']:>7} {r['final_loss']:>9.4f}")
  return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
  ap = common.common_parser(__doc__.split("\n\n")[0])
  variants.add_flag(ap)
  ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds")
  ap.add_argument("--max_round_seconds", type=float, default=120.0,
                  help="stop timing rounds of a batch size after this long (what ran is kept)")
  ap.set_defaults(steps=20, warmup=3)
  args, config = common.parse_args(ap, argv)
  if config is None:
    ap.error("--config is required, e.g. --config=configs/agw_baseline.py.")
  try:
    specs = [variants.BASE] + [variants.parse(s) for s in args.variant or ()]
  except ValueError as e:
    ap.error(str(e))
  common.check_batches(ap, args.batch)
  step_speed.apply_overrides(config, args)
  report = step_speed.base_report(args, config, "ab")
  report.update({"rounds": args.rounds, "variants": [v.describe() for v in specs],
                 "failed": []})
  step_speed.add_peak(report, args)
  for batch in sorted(set(args.batch or [64])):
    run_batch(specs, args, batch, report)
    common.write_report(args.out, report)
    print(table([r for r in report["results"] if r["batch"] == batch]), flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
