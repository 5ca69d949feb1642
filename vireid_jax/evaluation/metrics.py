"""CMC, mAP and mINP exactly as the VI-ReID community computes them (AGW's code).

`evaluate` gives the numbers of AGW's `eval_sysu` and `eval_regdb` (also used
by CAJ, DEEN and most later VI-ReID code, and DEEN's `eval_llcm`) without
their per-query python loop: the 40 evaluations of the full SYSU-MM01
protocol (4 settings x 10 trials) cost ~1.8 CPU-seconds instead of ~7 minutes
(BENCHMARKS.md). What differs between those functions is which gallery
images a query ignores (the dataset's `rule`, declared in its module) and
whether the CMC counts distinct identities.

Definitions (docs/method.md, "Evaluation protocols"), for one query, over the gallery ranked by
ascending distance with a stable sort (ties keep gallery order):
  * The rule removes some gallery images from the query's list (e.g. a query
    from camera 3 ignores every camera-2 image; or the images of its own
    identity from its own camera).
  * CMC: the query is "found at rank r" when its identity is the r-th distinct
    identity of the ranked list after the rule (`distinct_ids`: keeping the
    first occurrence of each identity), or else at the position of its first
    positive. CMC[k-1] = fraction of valid queries found at rank <= k.
  * AP = mean over positives of (positives so far / rank); INP = (number of
    positives) / (rank of the last positive), on the full list after the
    rule (no de-duplication).
  * Queries without a positive are left out of every average.

Where we differ from AGW's code, on purpose:
  * AGW truncates each query's de-duplicated CMC to `max_rank`, which breaks
    (a ragged array) when fewer than `max_rank` distinct identities remain, and
    shortens the CMC to the gallery size when the gallery has fewer than
    `max_rank` images. We always return `max_rank` values and a query found at
    rank r stays found at every later rank ("pad with the last value"); the
    first values equal AGW's wherever AGW's are defined.
  * AGW accumulates the CMC in float32; we return float64 fractions (the same
    count / number of valid queries, so the two differ by < 1e-7).
  * AGW uses numpy's default (unstable) argsort; we use stable order. The
    numbers only differ when distances tie exactly.

How: rows are processed in chunks (in parallel threads: numpy releases the
GIL); within a chunk the rows are sorted (values, not indices, which numpy
sorts with SIMD, ~10x faster than argsort) and each positive's rank is found by
a vectorised binary search; the de-duplicated CMC compares each identity's
smallest distance with the query's closest positive. These shortcuts are exact
unless a positive ties with another kept entry (or an identity's minimum ties
with the first positive); such rows are recomputed with a full stable argsort,
so the result equals the stable-sort definition on every input.
"""

from __future__ import annotations

import concurrent.futures
import os

import numpy as np

# The percentages every protocol reports, in table order.
METRIC_KEYS = ("rank1", "rank10", "rank20", "mAP", "mINP")

# Most threads that run row chunks in parallel.
_MAX_THREADS = 8
# Rows per chunk are chosen so that one chunk holds about this many distances.
_CHUNK_ELEMENTS = 1 << 19


def evaluate(distmat, q_pids, g_pids, q_cams=None, g_cams=None, *, rule=None,
             distinct_ids: bool = True, max_rank: int = 20) -> dict:
  """Rank-k, mAP and mINP of one query set against one gallery (see module docstring).

  Args:
    distmat: (Q, G) distances, smaller is closer.
    q_pids, g_pids: (Q,) and (G,) person ids.
    q_cams, g_cams: (Q,) and (G,) camera numbers (needed when a rule reads them).
    rule: which gallery images each query ignores: `blocks(q_pids, q_cams,
      g_pids, g_cams)` -> [(query rows, the gallery columns they see)] (the
      rules of `vireid_jax.data.protocol`); None: every query sees everything.
    distinct_ids: CMC over the distinct identities of the ranked list (AGW's
      `eval_sysu`); False: the rank of the first positive (`eval_regdb`).
    max_rank: length of the returned CMC.

  Returns:
    {"cmc": float64 (max_rank,), "mAP": float, "mINP": float}, fractions.

  Raises:
    ValueError: bad shapes, NaN distances, or no query with a positive.
  """
  d, q_pids, g_pids = _check(distmat, q_pids, g_pids, max_rank)
  if rule is None:
    blocks = [(np.arange(d.shape[0]), np.arange(d.shape[1]))]
  else:
    q_cams = _vector(q_cams, d.shape[0], "q_cams")
    g_cams = _vector(g_cams, d.shape[1], "g_cams")
    blocks = rule.blocks(q_pids, q_cams, g_pids, g_cams)
  return _evaluate(d, q_pids, g_pids, blocks, dedup=distinct_ids, max_rank=max_rank)


def _vector(x, n: int, name: str) -> np.ndarray:
  x = np.asarray(x)
  if x.shape != (n,):
    raise ValueError(f"{name} has shape {x.shape}; expected ({n},) to match distmat.")
  return x


def _check(distmat, q_pids, g_pids, max_rank):
  d = np.asarray(distmat)
  if d.ndim != 2 or min(d.shape) == 0:
    raise ValueError(f"distmat must be a non-empty (num_query, num_gallery) matrix, got shape {d.shape}.")
  if not np.issubdtype(d.dtype, np.floating):
    d = d.astype(np.float64)
  if np.isnan(d).any():
    raise ValueError("distmat contains NaN: the features or the distance computation are broken "
                     "(check for non-finite embeddings).")
  if int(max_rank) < 1:
    raise ValueError(f"max_rank must be >= 1, got {max_rank}.")
  return d, _vector(q_pids, d.shape[0], "q_pids"), _vector(g_pids, d.shape[1], "g_pids")


def _evaluate(d, q_pids, g_pids, blocks, *, dedup: bool, max_rank: int) -> dict:
  """Runs each (query rows, kept gallery columns) block in row chunks and averages."""
  num_q = d.shape[0]
  found_rank = np.zeros(num_q, np.int64)
  ap = np.zeros(num_q, np.float64)
  inp = np.zeros(num_q, np.float64)
  valid = np.zeros(num_q, bool)
  tasks = []
  # Every column sorted by identity once; each block keeps its columns of that order.
  order = np.argsort(g_pids, kind="stable")
  sorted_pids = g_pids[order]
  for rows, cols in blocks:
    if rows.size == 0 or cols.size == 0:
      continue
    gcols, groups = _grouped_columns(np.asarray(cols), order, sorted_pids)
    everything = np.array_equal(gcols, np.arange(d.shape[1]))
    chunk = max(1, _CHUNK_ELEMENTS // cols.size)
    for start in range(0, rows.size, chunk):
      tasks.append((rows[start:start + chunk], cols, gcols, everything, groups))

  def run(task):
    r, cols, gcols, everything, groups = task
    sub = d.take(r, axis=0)
    if not everything:
      sub = sub.take(gcols, axis=1)   # two takes: ~3x faster than d[np.ix_(r, gcols)]
    qp = q_pids[r]
    found_rank[r], ap[r], inp[r], valid[r], tied = _grouped_metrics(sub, qp, groups, dedup)
    if tied.any():   # exact stable-order recomputation, in the original column order
      t = r[tied]
      found_rank[t], ap[t], inp[t], valid[t] = _sorted_metrics(
          d.take(t, axis=0).take(cols, axis=1), q_pids[t], g_pids[cols], dedup)

  # numpy's sorts and gathers release the GIL: chunks run in parallel threads.
  workers = min(len(tasks), _MAX_THREADS, os.cpu_count() or 1)
  if workers > 1 and d.size > _CHUNK_ELEMENTS:
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
      list(pool.map(run, tasks))
  else:
    for task in tasks:
      run(task)

  num_valid = int(valid.sum())
  if num_valid == 0:
    raise ValueError("No query has a positive in the gallery (after the camera rule): every "
                     "query identity is missing from the gallery. Check that query and gallery "
                     "come from the same test identities.")
  ks = np.arange(1, int(max_rank) + 1)
  cmc = (found_rank[valid][:, None] <= ks[None, :]).sum(0) / float(num_valid)
  return {"cmc": cmc.astype(np.float64), "mAP": float(np.mean(ap[valid])),
          "mINP": float(np.mean(inp[valid]))}


def _grouped_columns(cols, order, sorted_pids):
  """The block's columns grouped by identity (a contiguous run each), and the runs.

  Returns (columns in identity order, (ids, starts, counts)): the columns of
  `order` (every column, stably sorted by identity) that are in `cols`. Within
  an identity the columns are in index order; no result depends on that order.
  O(gallery) per block: no sort.
  """
  if cols.size == order.size:
    gcols, spids = order, sorted_pids
  else:
    keep = np.zeros(order.size, bool)
    keep[cols] = True
    kept = keep[order]
    gcols, spids = order[kept], sorted_pids[kept]
  starts = np.flatnonzero(np.concatenate([[True], spids[1:] != spids[:-1]]))
  counts = np.diff(np.append(starts, spids.size))
  return gcols, (spids[starts], starts, counts)


def _query_groups(qp, ids):
  """Index of each query's identity among the gallery identities, -1 if absent."""
  u = np.searchsorted(ids, qp)
  u = np.minimum(u, ids.size - 1)
  return np.where(ids[u] == qp, u, -1)


def _grouped_metrics(dg, qp, groups, dedup: bool):
  """Per-query (found rank, AP, INP, valid, tied) for columns grouped by identity.

  Rows flagged `tied` have a tie that the shortcuts cannot order; the caller
  recomputes them with a stable sort.
  """
  ids, starts, counts = groups
  uq = _query_groups(qp, ids)
  valid = uq >= 0
  n_rows, n_cols = dg.shape
  found = np.zeros(n_rows, np.int64)
  ap = np.zeros(n_rows, np.float64)
  inp = np.zeros(n_rows, np.float64)
  tied = np.zeros(n_rows, bool)
  vrows = np.flatnonzero(valid)
  if vrows.size == 0:
    return found, ap, inp, valid, tied

  # Every positive as a flat (row, column) list.
  npos = counts[uq[vrows]]
  row_end = np.cumsum(npos)
  row_start = row_end - npos
  prow = np.repeat(vrows, npos)
  offsets = np.arange(prow.size) - np.repeat(row_start, npos)
  pcol = np.repeat(starts[uq[vrows]], npos) + offsets
  pdist = dg.reshape(-1)[prow * n_cols + pcol]

  srt = np.sort(dg, axis=1)
  n_lt = _count_below(srt, prow, pdist)
  # srt[row, n_lt] is the positive itself; an equal next value is a tie.
  after = np.minimum(n_lt + 1, n_cols - 1)
  tied[prow[(n_lt + 1 < n_cols) & (srt[prow, after] == pdist)]] = True

  if dedup:
    # An identity comes before the query's first positive iff its closest
    # image is closer than the query's closest positive.
    id_min = _group_min(dg if vrows.size == n_rows else dg[vrows], starts, counts)
    first_pos = id_min[np.arange(vrows.size), uq[vrows]][:, None]
    found[vrows] = (id_min < first_pos).sum(1) + 1
    tied[vrows[(id_min == first_pos).sum(1) > 1]] = True

  # Rank of each positive; its ordinal among the row's positives by sorting ranks.
  # prow is ascending, so sorting row * (n_cols + 1) + rank sorts ranks within rows.
  stride = n_cols + 1
  rank_s = np.sort(prow * stride + n_lt + 1) - prow * stride
  ap_sum = np.bincount(prow, weights=(offsets + 1) / rank_s, minlength=n_rows)
  ap[vrows] = ap_sum[vrows] / npos
  inp[vrows] = npos / rank_s[row_end - 1]                    # rank of each row's last positive
  if not dedup:
    found[vrows] = rank_s[row_start]                          # rank of each row's first positive
  return found, ap, inp, valid, tied


def _group_min(x, starts, counts):
  """Row-wise minimum over each column group: (rows, groups)."""
  if counts.max() > 8:
    return np.minimum.reduceat(x, starts, axis=1)
  # Small groups (single-shot galleries): a few whole-matrix gathers beat reduceat.
  last = starts + counts - 1
  out = x[:, starts]
  for j in range(1, int(counts.max())):
    out = np.minimum(out, x[:, np.minimum(starts + j, last)])
  return out


def _count_below(srt, rows, x):
  """Per (row, x): number of entries of the sorted row srt[row] that are < x.

  A branch-free binary search over all (row, x) pairs at once: each step
  tries to advance every position by the same power of two.
  """
  n = srt.shape[1]
  flat = srt.reshape(-1)
  base = rows.astype(np.int64) * n - 1
  pos = np.zeros(rows.shape, np.int64)
  step = 1 << (n.bit_length() - 1)
  while step:
    cand = pos + step
    ok = (cand <= n) & (flat[base + np.minimum(cand, n)] < x)
    pos = np.where(ok, cand, pos)
    step >>= 1
  return pos


def _sorted_metrics(d, qp, gp, dedup: bool):
  """Exact per-query metrics through a full stable argsort (the tie fallback)."""
  n_rows, n_cols = d.shape
  order = np.argsort(d, axis=1, kind="stable")
  match = gp[order] == qp[:, None]
  npos = match.sum(1)
  valid = npos > 0
  cum = np.cumsum(match, axis=1)
  ranks = np.arange(1, n_cols + 1, dtype=np.float64)
  ap = (cum / ranks * match).sum(1) / np.maximum(npos, 1)
  last = n_cols - np.argmax(match[:, ::-1], axis=1)          # 1-based rank
  inp = npos / last
  first = np.argmax(match, axis=1)                           # 0-based position
  if dedup:
    # Position of every column in the ranking, then each identity's first one.
    position = np.empty_like(order)
    np.put_along_axis(position, order, np.arange(n_cols)[None, :], axis=1)
    perm = np.argsort(gp, kind="stable")
    _, starts = np.unique(gp[perm], return_index=True)
    id_first = np.minimum.reduceat(position[:, perm], starts, axis=1)
    found = (id_first <= first[:, None]).sum(1)
  else:
    found = first + 1
  ap = np.where(valid, ap, 0.0)
  inp = np.where(valid, inp, 0.0)
  return np.where(valid, found, 0), ap, inp, valid
