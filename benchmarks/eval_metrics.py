"""Benchmark: SYSU-MM01 metrics at real size, ours vs AGW's loop-per-query `eval_sysu`.

The full protocol (3,803 infrared queries; all-search 301 / 3,010 and
indoor-search 112 / 1,120 gallery images for single- / multi-shot; 10 trials
each) on random features with an identity signal. Distance matrices are
computed outside the timers (identical for both); only the metric calls are
timed: ours as the best of --repeats runs over all trials (the CPU may be
shared), the reference once, on --ref_trials trials scaled to --trials.
Also checks that both give the same numbers.

  python -m benchmarks.eval_metrics            # full reference (minutes)
  python -m benchmarks.eval_metrics --ref_trials 2
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from vireid_jax.data.sysu import protocol as sysu_protocol
from vireid_jax.evaluation import metrics

NUM_IDS, NUM_QUERY, POOL, DIM = 96, 3803, 20, 2048


def agw_eval_sysu(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=20):
  """AGW's eval_sysu as published (default argsort, float32 CMC accumulation)."""
  num_q, num_g = distmat.shape
  if num_g < max_rank:
    max_rank = num_g
  indices = np.argsort(distmat, axis=1)
  pred_label = g_pids[indices]
  matches = (g_pids[indices] == q_pids[:, np.newaxis]).astype(np.int32)
  new_all_cmc, all_AP, all_INP = [], [], []
  num_valid_q = 0.
  for q_idx in range(num_q):
    q_pid, q_camid = q_pids[q_idx], q_camids[q_idx]
    order = indices[q_idx]
    remove = (q_camid == 3) & (g_camids[order] == 2)
    keep = np.invert(remove)
    new_cmc = pred_label[q_idx][keep]
    new_index = np.unique(new_cmc, return_index=True)[1]
    new_cmc = [new_cmc[index] for index in sorted(new_index)]
    new_match = (new_cmc == q_pid).astype(np.int32)
    new_cmc = new_match.cumsum()
    new_all_cmc.append(new_cmc[:max_rank])
    orig_cmc = matches[q_idx][keep]
    if not np.any(orig_cmc):
      continue
    cmc = orig_cmc.cumsum()
    pos_max_idx = np.max(np.where(orig_cmc == 1))
    all_INP.append(cmc[pos_max_idx] / (pos_max_idx + 1.0))
    num_valid_q += 1.
    num_rel = orig_cmc.sum()
    tmp_cmc = orig_cmc.cumsum()
    tmp_cmc = [x / (i + 1.) for i, x in enumerate(tmp_cmc)]
    tmp_cmc = np.asarray(tmp_cmc) * orig_cmc
    all_AP.append(tmp_cmc.sum() / num_rel)
  new_all_cmc = np.asarray(new_all_cmc).astype(np.float32).sum(0) / num_valid_q
  return new_all_cmc, np.mean(all_AP), np.mean(all_INP)


def make_test_set(seed: int = 0):
  """Query pids/cams/features and a pool of gallery images per (id, camera)."""
  rng = np.random.default_rng(seed)
  centres = rng.standard_normal((NUM_IDS, DIM)).astype(np.float32)

  def feats(pids, noise):
    x = centres[pids] + noise * rng.standard_normal((len(pids), DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)

  q_pids = np.sort(rng.integers(0, NUM_IDS, NUM_QUERY))
  q_cams = rng.choice([3, 6], NUM_QUERY, p=[0.4, 0.6])
  q_feat = feats(q_pids, 6.0)
  # 112 indoor (cams 1, 2) and 189 outdoor (cams 4, 5) (id, camera) folders: 301 in all.
  indoor = [(p, c) for p in range(NUM_IDS) for c in (1, 2)]
  outdoor = [(p, c) for p in range(NUM_IDS) for c in (4, 5)]
  pairs = sorted([indoor[i] for i in rng.choice(len(indoor), 112, replace=False)]
                 + [outdoor[i] for i in rng.choice(len(outdoor), 189, replace=False)])
  pools = {pc: feats(np.full(POOL, pc[0]), 6.0) for pc in pairs}
  return q_pids, q_cams, q_feat, pools


def draw(pools, cams, shots, trial):
  rng = np.random.default_rng(1000 + trial)
  keys = [pc for pc in sorted(pools) if pc[1] in cams]
  picks = [(pc, i) for pc in keys for i in rng.choice(POOL, shots, replace=False)]
  g_feat = np.stack([pools[pc][i] for pc, i in picks])
  return g_feat, np.array([pc[0] for pc, _ in picks]), np.array([pc[1] for pc, _ in picks])


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--trials", type=int, default=10)
  parser.add_argument("--ref_trials", type=int, default=10,
                      help="trials run through the slow reference (its time is scaled to --trials)")
  parser.add_argument("--repeats", type=int, default=3, help="ours: best of this many runs")
  args = parser.parse_args()
  q_pids, q_cams, q_feat, pools = make_test_set()
  rows, total_ours, total_cpu, total_ref = [], 0.0, 0.0, 0.0
  for mode, cams in (("all", (1, 2, 4, 5)), ("indoor", (1, 2))):
    for shot, k in (("single", 1), ("multi", 10)):
      draws = [draw(pools, cams, k, trial) for trial in range(args.trials)]
      dists = [-(q_feat @ g_feat.T) for g_feat, _, _ in draws]
      num_g = len(draws[0][1])
      t_ours = cpu_ours = float("inf")
      for _ in range(args.repeats):   # best of `repeats`: the CPU is shared
        t0, c0 = time.perf_counter(), time.process_time()
        ours = [metrics.evaluate(dist, q_pids, g_pids, q_cams, g_cams,
                                 rule=sysu_protocol.CAMERA_RULE)
                for dist, (_, g_pids, g_cams) in zip(dists, draws)]
        t_ours = min(t_ours, time.perf_counter() - t0)
        cpu_ours = min(cpu_ours, time.process_time() - c0)
      t0 = time.perf_counter()
      refs = [agw_eval_sysu(dist, q_pids, g_pids, q_cams, g_cams)
              for dist, (_, g_pids, g_cams) in zip(dists[:args.ref_trials], draws)]
      t_ref = time.perf_counter() - t0
      diff = max([0.0] + [max(float(np.max(np.abs(o["cmc"] - cmc))), abs(o["mAP"] - m_ap),
                              abs(o["mINP"] - m_inp)) for o, (cmc, m_ap, m_inp) in zip(ours, refs)])
      ours = ours[-1]
      del dists
      ref_trials = min(args.ref_trials, args.trials)
      t_ref_scaled = t_ref * args.trials / max(ref_trials, 1)
      total_ours += t_ours
      total_cpu += cpu_ours
      total_ref += t_ref_scaled
      rows.append((f"{mode}_{shot}", num_g, t_ours, cpu_ours, t_ref_scaled, t_ref_scaled / t_ours, diff,
                   100 * ours["cmc"][0], 100 * ours["mAP"]))
  print(f"SYSU-MM01 metrics, {NUM_QUERY} queries, {args.trials} trials per protocol "
        f"(reference timed on {min(args.ref_trials, args.trials)} trials, scaled)\n")
  print("| protocol | gallery | ours wall (s) | ours CPU (s) | AGW loop wall (s) | speed-up (wall) "
        "| max abs diff | R1 % | mAP % |")
  print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
  for name, g, to, co, tr, su, df, r1, m_ap in rows:
    print(f"| {name} | {g} | {to:.3f} | {co:.3f} | {tr:.2f} | {su:.0f}x | {df:.1e} | {r1:.2f} "
          f"| {m_ap:.2f} |")
  print(f"| **total** | | **{total_ours:.3f}** | **{total_cpu:.3f}** | **{total_ref:.2f}** | "
        f"**{total_ref / total_ours:.0f}x** | | | |")


if __name__ == "__main__":
  main()
