"""Every BatchNorm (+ residual) + ReLU site of the network, timed alone: plain autodiff against the fused op.

  python -m benchmarks.bn_sites --batch=64 --impl=plain --impl=xla --impl=pallas \
      [--model=agw|full] [--detail=layer1_bn3] --out=bench_out/bn_sites.json

For one training step's worth of sites (the ResNet-50's BatchNorms at their
row and channel counts, grouped by shape) it compiles, per implementation, one
program that runs the site's forward pass and its backward pass as the train
step does (`layers.BatchNorm` with `fused` = "" / "xla" / "pallas"; inputs x,
residual and the output's gradient dy, outputs y, dx, d(residual), d(scale),
d(bias)) and reports:
- its time (median of chunks of calls, the device waited on per chunk);
- the bytes its kernels move (`hlo_bytes.py` on the optimised HLO) in units of
  one pass over the bfloat16 activation, against the fewest such a site needs
  (forward: read x for the statistics, read x [and the residual] and write y;
  backward: read dy and x [and y] for the sums, read them again and write dx
  [and the residual's gradient]);
- the bandwidth that gives, and the sums over the step (each shape times how
  often the network has it), i.e. what a fused kernel can still win per step.
`--detail=SITE` prints the kernel list of one site's programs: the passes the
compiler makes, with each kernel's bytes.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time

import jax
import jax.numpy as jnp

from benchmarks import common, hlo_bytes
from vireid_jax.models import fused_batchnorm, layers, resnet

IMPL_FLAGS = {"plain": "", "xla": "xla", "pallas": "pallas"}


@dataclasses.dataclass(frozen=True)
class Site:
  name: str          # e.g. layer1_bn3 (the first block with this shape)
  rows: int          # N * H * W
  channels: int
  relu: bool
  residual: bool
  count: int = 1     # how many sites of the network have this shape and kind

  @property
  def min_passes(self) -> int:
    """Fewest passes over the activation (bf16 reads + writes, in activation sizes).

    Forward: read x for the statistics; read x (and r), write y. Backward: read dy and
    x (and y, the mask's source after a residual add) for the two sums; read dy and x
    (and y), write dx (and dr). With a residual, writing dm = dr during the sums pass
    and reading it back instead of dy and y saves one: 4 + 4 + 3 = 11.
    """
    if self.residual:
      return 4 + 4 + 3
    return 3 + 2 + 3


def _out(n: int, stride: int) -> int:
  return (n - 1) // stride + 1


def network_sites(depth: int, image_size, batch: int, last_stride: int = 1,
                  full: bool = False) -> list[Site]:
  """The BatchNorm sites of one training step, grouped by (rows, channels, relu, residual).

  Two stems of batch/2 images each; layer1-4 on the whole batch; with `full`,
  two more layer4 copies (the intra-modality branches) on batch/2 images each.
  """
  block, sizes = resnet.stage_spec(depth)
  h, w = _out(image_size[0], 2), _out(image_size[1], 2)
  found = [("stem_bn1", batch // 2 * h * w, 64, True, False)] * 2
  h, w = _out(h, 2), _out(w, 2)
  cin = 64
  for layer, blocks in enumerate(sizes, start=1):
    feats = resnet.STAGE_WIDTHS[layer - 1]
    stride = 1 if layer == 1 else (last_stride if layer == 4 else 2)
    out = feats * block.expansion
    copies = [("", batch)]
    if full and layer == 4:
      copies += [("branch_", batch // 2)] * 2
    h_in, w_in, c_in = h, w, cin
    for prefix, n in copies:
      h, w, cin = h_in, w_in, c_in
      for b in range(blocks):
        s = stride if b == 0 else 1
        ho, wo = _out(h, s), _out(w, s)
        pre = f"{prefix}layer{layer}_"
        if block is resnet.Bottleneck:
          found.append((pre + "bn1", n * h * w, feats, True, False))
          found.append((pre + "bn2", n * ho * wo, feats, True, False))
          found.append((pre + "bn3", n * ho * wo, out, True, True))
        else:
          found.append((pre + "bn1", n * ho * wo, feats, True, False))
          found.append((pre + "bn2", n * ho * wo, out, True, True))
        if b == 0 and (s != 1 or cin != out):
          found.append((pre + "downsample_bn", n * ho * wo, out, False, False))
        h, w, cin = ho, wo, out
  grouped: dict[tuple, Site] = {}
  for name, rows, c, relu, res in found:
    key = (rows, c, relu, res)
    if key in grouped:
      grouped[key] = dataclasses.replace(grouped[key], count=grouped[key].count + 1)
    else:
      grouped[key] = Site(name, rows, c, relu, res)
  return list(grouped.values())


def site_program(site: Site, fused: str):
  """jit(x, residual, dy -> y, grads) of one BatchNorm layer in training, as the model runs it."""
  bn = layers.BatchNorm(dtype=jnp.bfloat16, fused=fused)
  x0 = jnp.zeros((site.rows, site.channels), jnp.bfloat16)
  variables = bn.init(jax.random.key(0), x0, use_running_average=False)

  def forward(params, x, *r):
    y, _ = bn.apply({"params": params, "batch_stats": variables["batch_stats"]}, x,
                    use_running_average=False, residual=r[0] if r else None,
                    relu=site.relu, mutable=["batch_stats"])
    return y

  def program(x, r, g):
    inputs = (variables["params"], x) + ((r,) if site.residual else ())
    y, vjp = jax.vjp(forward, *inputs)
    # In the network y feeds the next convolution before the backward pass starts; the
    # barrier keeps XLA from computing y inside a backward kernel, as it could here.
    y, g = jax.lax.optimization_barrier((y, g))
    return y, vjp(g)

  return jax.jit(program)


def time_calls(fn, args, reps: int, chunks: int = 5) -> float:
  """Median over `chunks` of the mean seconds per call over `reps` back-to-back calls."""
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(chunks):
    t0 = time.perf_counter()
    for _ in range(reps):
      out = fn(*args)
    jax.block_until_ready(out)
    times.append((time.perf_counter() - t0) / reps)
  return statistics.median(times)


def copy_bandwidth(gib: float = 1.0) -> float:
  """GB/s of an elementwise pass over `gib` GiB of bf16 (bytes read plus written)."""
  n = int(gib * 2 ** 30 / 2)
  a = jax.random.normal(jax.random.key(0), (n,), jnp.float32).astype(jnp.bfloat16)
  inc = jax.jit(lambda v: v + jnp.bfloat16(1))
  t = time_calls(inc, (a,), reps=10)
  return 2 * a.nbytes / t / 1e9


def measure(site: Site, impls, reps: int, detail: bool) -> dict:
  keys = jax.random.split(jax.random.key(site.rows * 7 + site.channels), 3)
  shape = (site.rows, site.channels)
  args = [jax.random.normal(k, shape, jnp.float32).astype(jnp.bfloat16) for k in keys]
  act_bytes = site.rows * site.channels * 2
  row = {"site": dataclasses.asdict(site), "min_passes": site.min_passes, "impls": {}}
  for impl in impls:
    fused = IMPL_FLAGS[impl]
    effective = layers.fused_impl(fused, args[0]) if fused else "plain"
    try:
      compiled = site_program(site, fused).lower(*args).compile()
    except Exception as e:  # pylint: disable=broad-except
      # A kernel that does not compile here must not cost the other implementations' numbers.
      print(f"{site.name} {impl}: FAILED {type(e).__name__}: {str(e)[:600]}", flush=True)
      row["impls"][impl] = {"effective": effective, "error": str(e)[:2000]}
      continue
    found = hlo_bytes.kernels(compiled.as_text())
    t = time_calls(compiled, args, reps)
    moved = sum(k.bytes for k in found)
    row["impls"][impl] = {"effective": effective, "seconds": t, "bytes": moved,
                          "passes": moved / act_bytes, "kernels": len(found),
                          "gb_per_s": moved / t / 1e9}
    if detail:
      print(f"--- {site.name} ({site.rows} x {site.channels}, relu={site.relu}, "
            f"residual={site.residual}), {impl} ({effective}): {len(found)} kernels, "
            f"{moved / act_bytes:.2f} passes, {1e6 * t:.1f} us")
      for k in found:
        if k.bytes >= 0.05 * act_bytes:
          print(f"  read {k.read / act_bytes:5.2f} write {k.written / act_bytes:5.2f} "
                f"{k.category:<8} {k.name[:40]:<40} {k.op_name[-70:]}")
  return row


def table(rows: list[dict], impls, bandwidth: float | None) -> str:
  head = (f"{'site':<20} {'rows x C':>14} {'n':>2} {'min':>4} " +
          " ".join(f"{impl + ' us':>10} {'passes':>6}" for impl in impls) + "  best vs plain")
  out = [head, "-" * len(head)]
  totals = {impl: 0.0 for impl in impls}
  floor = 0.0
  for r in rows:
    s = r["site"]
    cells = []
    ok = [i for i in impls if "seconds" in r["impls"][i]]
    for impl in impls:
      m = r["impls"][impl]
      if impl not in ok:
        cells.append(f"{'failed':>10} {'-':>6}")
        continue
      totals[impl] += s["count"] * m["seconds"]
      cells.append(f"{1e6 * m['seconds']:>10.1f} {m['passes']:>6.2f}")
    if bandwidth:
      floor += s["count"] * r["min_passes"] * s["rows"] * s["channels"] * 2 / (bandwidth * 1e9)
    best = min(r["impls"][i]["seconds"] for i in ok) if ok else float("nan")
    gain = r["impls"][impls[0]]["seconds"] / best if impls[0] in ok else float("nan")
    out.append(f"{s['name']:<20} {s['rows']:>8}x{s['channels']:<5} {s['count']:>2} "
               f"{r['min_passes']:>4} " + " ".join(cells) + f"  {gain:.2f}x")
  out.append("per step (each shape x its count): " +
             ", ".join(f"{impl} {1e3 * t:.2f} ms" for impl, t in totals.items()) +
             (f"; at the measured bandwidth the fewest passes take {1e3 * floor:.2f} ms"
              if bandwidth else ""))
  return "\n".join(out)


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("--batch", type=int, default=64)
  ap.add_argument("--image_size", type=common.parse_image_size, default=(288, 144))
  ap.add_argument("--depth", type=int, default=50)
  ap.add_argument("--model", default="agw", choices=("agw", "full"))
  ap.add_argument("--impl", action="append", default=None, choices=tuple(IMPL_FLAGS))
  ap.add_argument("--reps", type=int, default=20, help="calls per timed chunk")
  ap.add_argument("--detail", action="append", default=[], help="print this site's kernels")
  ap.add_argument("--bandwidth_gib", type=float, default=1.0,
                  help="GiB of the elementwise pass that measures bandwidth (0 skips it)")
  ap.add_argument("--out", default=None)
  args = ap.parse_args(argv)
  impls = args.impl or ["plain", "xla"]
  sites = network_sites(args.depth, args.image_size, args.batch, full=args.model == "full")
  bandwidth = copy_bandwidth(args.bandwidth_gib) if args.bandwidth_gib else None
  report = {"framework": "jax", "mode": "bn_sites", "device_kind": jax.devices()[0].device_kind,
            "batch": args.batch, "image_size": list(args.image_size), "depth": args.depth,
            "model": args.model, "bandwidth_gb_per_s": bandwidth, "sites": []}
  if bandwidth:
    print(f"elementwise bf16 pass over {args.bandwidth_gib} GiB: {bandwidth:.0f} GB/s "
          "(read + write)", flush=True)
  for site in sites:
    report["sites"].append(measure(site, impls, args.reps, site.name in args.detail))
    common.write_report(args.out, report)
  print(table(report["sites"], impls, bandwidth))
  return 0


if __name__ == "__main__":
  sys.exit(main())
