"""Idle time of the GPU in a profile of the main job (`--config.profile_steps=N`).

  python -m benchmarks.gpu_gaps WORKDIR/profile [--top=5]

Reads the newest `*.xplane.pb` under the folder (what `jax.profiler` writes),
takes the GPU plane's stream lines (kernels and copies), and reports, over
the span from the first to the last of them: the fraction of time no stream
was busy, how many idle gaps there were by length, the longest ones, and the
gaps between consecutive executions of the same XLA module (the train step):
time the device waited for the host between steps. Needs TensorFlow's copy
of the profiler's protocol buffers (`tensorflow.tsl.profiler.protobuf`).
"""

from __future__ import annotations

import argparse
import glob
import os
import statistics

GAP_BUCKETS_US = (10, 100, 1000, 10000)


def load_xspace(folder: str):
  from tensorflow.tsl.profiler.protobuf import xplane_pb2  # pylint: disable=g-import-not-at-top
  files = sorted(glob.glob(os.path.join(folder, "**", "*.xplane.pb"), recursive=True),
                 key=os.path.getmtime)
  if not files:
    raise SystemExit(f"no *.xplane.pb under {folder}")
  space = xplane_pb2.XSpace()
  with open(files[-1], "rb") as f:
    space.ParseFromString(f.read())
  return files[-1], space


def intervals(line) -> list[tuple[int, int]]:
  """(start, end) in picoseconds of every event of an XLine."""
  base = line.timestamp_ns * 1000
  return [(base + e.offset_ps, base + e.offset_ps + e.duration_ps) for e in line.events]


def union(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
  merged = []
  for start, end in sorted(spans):
    if merged and start <= merged[-1][1]:
      merged[-1] = (merged[-1][0], max(merged[-1][1], end))
    else:
      merged.append((start, end))
  return merged


def gaps(busy: list[tuple[int, int]]) -> list[int]:
  return [b[0] - a[1] for a, b in zip(busy, busy[1:])]


def module_gaps(plane) -> dict[str, list[int]]:
  """Per XLA module name: idle time (ps) between the end of one execution and the next start."""
  out = {}
  for line in plane.lines:
    if line.name != "XLA Modules":
      continue
    by_name = {}
    base = line.timestamp_ns * 1000
    for e in line.events:
      name = plane.event_metadata[e.metadata_id].name
      by_name.setdefault(name, []).append((base + e.offset_ps, base + e.offset_ps + e.duration_ps))
    for name, spans in by_name.items():
      spans.sort()
      if len(spans) > 1:
        out[name] = [b[0] - a[1] for a, b in zip(spans, spans[1:])]
  return out


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("folder")
  ap.add_argument("--top", type=int, default=5)
  args = ap.parse_args()
  path, space = load_xspace(args.folder)
  planes = [p for p in space.planes if p.name.startswith("/device:GPU")]
  if not planes:
    raise SystemExit(f"{path}: no GPU plane (planes: {[p.name for p in space.planes]})")
  for plane in planes:
    streams = [ln for ln in plane.lines if ln.name.startswith("Stream")]
    busy = union([s for ln in streams for s in intervals(ln)])
    if not busy:
      print(f"{plane.name}: no stream events")
      continue
    span = busy[-1][1] - busy[0][0]
    idle = gaps(busy)
    print(f"{os.path.basename(path)} {plane.name}: {len(streams)} streams, span "
          f"{span / 1e9:.1f} ms, busy {100 * (span - sum(idle)) / span:.1f}%, idle "
          f"{sum(idle) / 1e9:.2f} ms in {len(idle)} gaps")
    for lo, hi in zip((0,) + GAP_BUCKETS_US, GAP_BUCKETS_US + (None,)):
      chosen = [g for g in idle if g >= lo * 1e6 and (hi is None or g < hi * 1e6)]
      label = f">= {lo} us" if hi is None else f"{lo}-{hi} us"
      print(f"  gaps {label:>12}: {len(chosen):6d}, {sum(chosen) / 1e9:8.2f} ms")
    print("  longest gaps (ms):", ", ".join(f"{g / 1e9:.2f}" for g in sorted(idle)[-args.top:][::-1]))
    for name, between in sorted(module_gaps(plane).items(), key=lambda kv: -len(kv[1])):
      print(f"  module {name[:60]}: {len(between) + 1} runs, gap between runs median "
            f"{statistics.median(between) / 1e6:.0f} us, max {max(between) / 1e6:.0f} us")


if __name__ == "__main__":
  main()
