"""The vectorised metrics against a per-query loop transcribed from AGW's eval code.

`evaluate_sysu` and `evaluate_regdb` are the generic metrics with SYSU-MM01's camera rule
(declared in its module) and with RegDB's plain CMC."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from vireid_jax.data.sysu import protocol as sysu_protocol
from vireid_jax.evaluation import metrics

evaluate_sysu = functools.partial(metrics.evaluate, rule=sysu_protocol.CAMERA_RULE)


def evaluate_regdb(distmat, q_pids, g_pids, max_rank=20):
  return metrics.evaluate(distmat, q_pids, g_pids, distinct_ids=False, max_rank=max_rank)


def _pad(cmc, max_rank):
  """Our documented choice where AGW's arrays would be ragged: repeat the last value."""
  cmc = np.asarray(cmc[:max_rank], np.float64)
  if cmc.size < max_rank:
    cmc = np.concatenate([cmc, np.full(max_rank - cmc.size, cmc[-1] if cmc.size else 0.0)])
  return cmc


def agw_eval_sysu(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=20):
  """AGW `eval_sysu`, line by line, with a stable argsort and float64 sums."""
  num_q, _ = distmat.shape
  indices = np.argsort(distmat, axis=1, kind="stable")
  pred_label = g_pids[indices]
  matches = (g_pids[indices] == q_pids[:, np.newaxis]).astype(np.int32)
  new_all_cmc, all_ap, all_inp = [], [], []
  num_valid_q = 0.
  for q_idx in range(num_q):
    q_pid, q_camid = q_pids[q_idx], q_camids[q_idx]
    order = indices[q_idx]
    remove = (q_camid == 3) & (g_camids[order] == 2)
    keep = np.invert(remove)
    new_cmc = pred_label[q_idx][keep]
    new_index = np.unique(new_cmc, return_index=True)[1]
    new_cmc = np.asarray([new_cmc[index] for index in sorted(new_index)])
    new_match = (new_cmc == q_pid).astype(np.int32)
    new_all_cmc.append(_pad(new_match.cumsum(), max_rank))
    orig_cmc = matches[q_idx][keep]
    if not np.any(orig_cmc):
      continue
    cmc = orig_cmc.cumsum()
    pos_max_idx = np.max(np.where(orig_cmc == 1))
    all_inp.append(cmc[pos_max_idx] / (pos_max_idx + 1.0))
    num_valid_q += 1.
    num_rel = orig_cmc.sum()
    tmp_cmc = orig_cmc.cumsum()
    tmp_cmc = np.asarray([x / (i + 1.) for i, x in enumerate(tmp_cmc)]) * orig_cmc
    all_ap.append(tmp_cmc.sum() / num_rel)
  assert num_valid_q > 0
  return np.asarray(new_all_cmc).sum(0) / num_valid_q, np.mean(all_ap), np.mean(all_inp)


def agw_eval_regdb(distmat, q_pids, g_pids, max_rank=20):
  """AGW `eval_regdb` (its camera rule never removes anything: cams 1 vs 2)."""
  indices = np.argsort(distmat, axis=1, kind="stable")
  matches = (g_pids[indices] == q_pids[:, np.newaxis]).astype(np.int32)
  all_cmc, all_ap, all_inp = [], [], []
  for q_idx in range(distmat.shape[0]):
    raw_cmc = matches[q_idx]
    if not np.any(raw_cmc):
      continue
    cmc = raw_cmc.cumsum()
    pos_max_idx = np.max(np.where(raw_cmc == 1))
    all_inp.append(cmc[pos_max_idx] / (pos_max_idx + 1.0))
    cmc[cmc > 1] = 1
    all_cmc.append(_pad(cmc, max_rank))
    tmp_cmc = np.asarray([x / (i + 1.) for i, x in enumerate(raw_cmc.cumsum())]) * raw_cmc
    all_ap.append(tmp_cmc.sum() / raw_cmc.sum())
  return np.asarray(all_cmc).mean(0), np.mean(all_ap), np.mean(all_inp)


def _random_case(rng, ties=False):
  num_q = int(rng.integers(1, 40))
  num_g = int(rng.integers(1, 60))
  num_ids = int(rng.integers(1, 12))
  q_pids = rng.integers(0, num_ids + 3, num_q)          # some ids missing from the gallery
  g_pids = rng.integers(0, num_ids, num_g) * 7 + 100     # unsorted, sparse ids
  q_pids = np.where(rng.random(num_q) < 0.8, rng.choice(g_pids, num_q), q_pids)
  q_cams = rng.choice([3, 6], num_q)
  g_cams = rng.choice([1, 2, 4, 5], num_g, p=[0.2, 0.4, 0.2, 0.2])
  if ties:
    d = rng.integers(0, 5, (num_q, num_g)).astype(np.float32)
  else:
    d = rng.standard_normal((num_q, num_g))
  return d, q_pids, g_pids, q_cams, g_cams


def _assert_same(ours, ref):
  cmc, m_ap, m_inp = ref
  np.testing.assert_allclose(ours["cmc"], cmc, rtol=0, atol=1e-12)
  np.testing.assert_allclose(ours["mAP"], m_ap, rtol=0, atol=1e-12)
  np.testing.assert_allclose(ours["mINP"], m_inp, rtol=0, atol=1e-12)


@pytest.mark.parametrize("ties", [False, True])
def test_sysu_matches_agw_loop_on_random_cases(ties):
  rng = np.random.default_rng(1 if ties else 0)
  checked = 0
  for _ in range(300):
    d, q_pids, g_pids, q_cams, g_cams = _random_case(rng, ties)
    max_rank = int(rng.choice([1, 5, 20]))
    has_pos = [np.any((g_pids == p) & ~((c == 3) & (g_cams == 2))) for p, c in zip(q_pids, q_cams)]
    if not any(has_pos):
      with pytest.raises(ValueError, match="No query has a positive"):
        evaluate_sysu(d, q_pids, g_pids, q_cams, g_cams, max_rank=max_rank)
      continue
    ours = evaluate_sysu(d, q_pids, g_pids, q_cams, g_cams, max_rank=max_rank)
    assert ours["cmc"].shape == (max_rank,)
    _assert_same(ours, agw_eval_sysu(d, q_pids, g_pids, q_cams, g_cams, max_rank))
    checked += 1
  assert checked > 200


@pytest.mark.parametrize("ties", [False, True])
def test_regdb_matches_agw_loop_on_random_cases(ties):
  rng = np.random.default_rng(2 if ties else 3)
  for _ in range(150):
    d, q_pids, g_pids, _, _ = _random_case(rng, ties)
    if not np.isin(q_pids, g_pids).any():
      continue
    max_rank = int(rng.choice([1, 5, 20]))
    ours = evaluate_regdb(d, q_pids, g_pids, max_rank)
    _assert_same(ours, agw_eval_regdb(d, q_pids, g_pids, max_rank))


def test_larger_case_crosses_chunks(monkeypatch):
  monkeypatch.setattr(metrics, "_CHUNK_ELEMENTS", 500)   # several row chunks per block
  rng = np.random.default_rng(5)
  q_pids = rng.integers(0, 30, 150)
  g_pids = np.repeat(np.arange(30), 8)
  q_cams = rng.choice([3, 6], 150)
  g_cams = rng.choice([1, 2, 4, 5], g_pids.size)
  d = rng.random((150, g_pids.size)).astype(np.float32)
  _assert_same(evaluate_sysu(d, q_pids, g_pids, q_cams, g_cams),
               agw_eval_sysu(d, q_pids, g_pids, q_cams, g_cams))
  _assert_same(evaluate_regdb(d, q_pids, g_pids), agw_eval_regdb(d, q_pids, g_pids))


def test_hand_computed_sysu_example():
  # One query (id 1, cam 3). Gallery, ranked by distance:
  #   g0 id2 cam1 (0.1), g1 id1 cam2 (0.2: removed), g2 id2 cam4 (0.3),
  #   g3 id1 cam1 (0.4), g4 id3 cam5 (0.5), g5 id1 cam5 (0.6)
  d = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]])
  g_pids = np.array([2, 1, 2, 1, 3, 1])
  g_cams = np.array([1, 2, 4, 1, 5, 5])
  out = evaluate_sysu(d, np.array([1]), g_pids, np.array([3]), g_cams, max_rank=4)
  # After removal: [2, 2, 1, 3, 1]; distinct ids: [2, 1, 3] -> found at rank 2.
  np.testing.assert_allclose(out["cmc"], [0, 1, 1, 1])
  # Positives at ranks 3 and 5: AP = (1/3 + 2/5) / 2, INP = 2 / 5.
  assert out["mAP"] == pytest.approx((1 / 3 + 2 / 5) / 2, abs=1e-15)
  assert out["mINP"] == pytest.approx(0.4, abs=1e-15)
  # The same query from camera 6 keeps g1: positives at 2, 4, 6; found at rank 2.
  out6 = evaluate_sysu(d, np.array([1]), g_pids, np.array([6]), g_cams, max_rank=4)
  assert out6["mAP"] == pytest.approx((1 / 2 + 2 / 4 + 3 / 6) / 3, abs=1e-15)
  assert out6["mINP"] == pytest.approx(3 / 6, abs=1e-15)
  np.testing.assert_allclose(out6["cmc"], [0, 1, 1, 1])
  # RegDB rule: no removal, no de-duplication: first positive at rank 2.
  reg = evaluate_regdb(d, np.array([1]), g_pids, max_rank=3)
  np.testing.assert_allclose(reg["cmc"], [0, 1, 1])


def test_short_distinct_list_pads_with_last_value():
  # 2 distinct gallery ids but max_rank 20: found at rank 2 stays found.
  d = np.array([[0.1, 0.2, 0.3], [0.3, 0.2, 0.1]])
  out = evaluate_sysu(d, np.array([5, 7]), np.array([7, 7, 5]), np.array([6, 6]),
                              np.array([1, 1, 1]), max_rank=20)
  expected = np.ones(20)
  expected[0] = 0.0   # query 0 (id 5) is 2nd distinct; query 1 (id 7) is 2nd too
  np.testing.assert_allclose(out["cmc"], expected)


def test_queries_without_positive_are_left_out():
  d = np.array([[0.1, 0.2], [0.2, 0.1], [0.5, 0.6]])
  g_pids, g_cams = np.array([1, 2]), np.array([2, 1])
  # Query 0 (id 1, cam 3) only has a camera-2 positive: left out. Query 2: id absent.
  out = evaluate_sysu(d, np.array([1, 2, 9]), g_pids, np.array([3, 6, 6]), g_cams, max_rank=2)
  np.testing.assert_allclose(out["cmc"], [1.0, 1.0])
  assert out["mAP"] == 1.0 and out["mINP"] == 1.0


def test_bad_inputs_raise_clear_errors():
  d = np.zeros((2, 3))
  with pytest.raises(ValueError, match="q_pids"):
    evaluate_regdb(d, np.zeros(3), np.zeros(3))
  with pytest.raises(ValueError, match="NaN"):
    evaluate_regdb(np.full((2, 3), np.nan), np.zeros(2), np.zeros(3))
  with pytest.raises(ValueError, match="No query has a positive"):
    evaluate_regdb(d, np.array([1, 2]), np.array([3, 4, 5]))
  with pytest.raises(ValueError, match="g_cams"):
    evaluate_sysu(d, np.zeros(2), np.zeros(3), np.zeros(2), np.zeros(2))


def test_no_tensorflow_import():
  import subprocess
  import sys
  code = ("import sys; import vireid_jax.evaluation.metrics, vireid_jax.evaluation.rerank, "
          "vireid_jax.evaluation.protocols, vireid_jax.evaluation.report; "
          "assert 'tensorflow' not in sys.modules and 'clu' not in sys.modules")
  subprocess.run([sys.executable, "-c", code], check=True)
