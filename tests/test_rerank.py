"""The vectorised k-reciprocal re-ranking against the standard loop implementation."""

from __future__ import annotations

import numpy as np
import pytest

from vireid_jax.evaluation import rerank


def reference_re_ranking(prob_fea, gal_fea, k1, k2, lambda_value):
  """The widely used `re_ranking` (AGW/CAJ/fast-reid), loops and all, in float64.

  Transcribed line by line; only V and the Jaccard distance are float64 here
  instead of the original's float16.
  """
  query_num = prob_fea.shape[0]
  feat = np.concatenate([prob_fea, gal_fea]).astype(np.float64)
  all_num = feat.shape[0]
  sq = (feat ** 2).sum(1, keepdims=True)
  original_dist = sq + sq.T - 2 * feat @ feat.T
  gallery_num = original_dist.shape[0]
  original_dist = np.transpose(original_dist / np.max(original_dist, axis=0))
  V = np.zeros_like(original_dist)
  initial_rank = np.argsort(original_dist, kind="stable").astype(np.int32)
  for i in range(all_num):
    forward_k_neigh_index = initial_rank[i, :k1 + 1]
    backward_k_neigh_index = initial_rank[forward_k_neigh_index, :k1 + 1]
    fi = np.where(backward_k_neigh_index == i)[0]
    k_reciprocal_index = forward_k_neigh_index[fi]
    k_reciprocal_expansion_index = k_reciprocal_index
    for j in range(len(k_reciprocal_index)):
      candidate = k_reciprocal_index[j]
      candidate_forward_k_neigh_index = initial_rank[candidate, :int(np.around(k1 / 2)) + 1]
      candidate_backward_k_neigh_index = initial_rank[candidate_forward_k_neigh_index,
                                                      :int(np.around(k1 / 2)) + 1]
      fi_candidate = np.where(candidate_backward_k_neigh_index == candidate)[0]
      candidate_k_reciprocal_index = candidate_forward_k_neigh_index[fi_candidate]
      if len(np.intersect1d(candidate_k_reciprocal_index, k_reciprocal_index)) > \
          2 / 3 * len(candidate_k_reciprocal_index):
        k_reciprocal_expansion_index = np.append(k_reciprocal_expansion_index,
                                                 candidate_k_reciprocal_index)
    k_reciprocal_expansion_index = np.unique(k_reciprocal_expansion_index)
    weight = np.exp(-original_dist[i, k_reciprocal_expansion_index])
    V[i, k_reciprocal_expansion_index] = weight / np.sum(weight)
  original_dist = original_dist[:query_num, ]
  if k2 != 1:
    V_qe = np.zeros_like(V)
    for i in range(all_num):
      V_qe[i, :] = np.mean(V[initial_rank[i, :k2], :], axis=0)
    V = V_qe
  invIndex = [np.where(V[:, i] != 0)[0] for i in range(gallery_num)]
  jaccard_dist = np.zeros_like(original_dist)
  for i in range(query_num):
    temp_min = np.zeros(shape=[1, gallery_num])
    indNonZero = np.where(V[i, :] != 0)[0]
    indImages = [invIndex[ind] for ind in indNonZero]
    for j in range(len(indNonZero)):
      temp_min[0, indImages[j]] = temp_min[0, indImages[j]] + np.minimum(
          V[i, indNonZero[j]], V[indImages[j], indNonZero[j]])
    jaccard_dist[i] = 1 - temp_min / (2 - temp_min)
  final_dist = jaccard_dist * (1 - lambda_value) + original_dist * lambda_value
  return final_dist[:query_num, query_num:]


def _clustered(rng, num_ids, per_id, dim, spread):
  centres = rng.standard_normal((num_ids, dim))
  x = np.repeat(centres, per_id, axis=0) + spread * rng.standard_normal((num_ids * per_id, dim))
  x /= np.linalg.norm(x, axis=1, keepdims=True)
  return x.astype(np.float32)


@pytest.mark.parametrize("k1,k2,lam,spread", [(20, 6, 0.3, 0.6), (5, 3, 0.3, 0.4),
                                              (7, 1, 0.5, 1.0), (4, 8, 0.0, 0.3)])
def test_matches_reference_loop(k1, k2, lam, spread):
  rng = np.random.default_rng(k1 * 10 + k2)
  q = _clustered(rng, 6, 3, 12, spread)
  g = _clustered(rng, 6, 6, 12, spread)[rng.permutation(36)]
  ours = rerank.rerank_distances(q, g, k1=k1, k2=k2, lambda_value=lam)
  ref = reference_re_ranking(q, g, k1, k2, lam)
  assert ours.shape == (18, 36) and ours.dtype == np.float32
  np.testing.assert_allclose(ours, ref, rtol=0, atol=2e-5)


def test_blocked_jaccard_and_k_larger_than_set(monkeypatch):
  monkeypatch.setattr(rerank, "_JACCARD_BLOCK", 1)   # one query per block, with padding
  rng = np.random.default_rng(3)
  q = _clustered(rng, 3, 3, 8, 0.5)
  g = _clustered(rng, 3, 2, 8, 0.5)
  # 15 samples but k1 + 1 = 21 neighbours requested: every list is everything.
  ours = rerank.rerank_distances(q, g, k1=20, k2=6)
  np.testing.assert_allclose(ours, reference_re_ranking(q, g, 20, 6, 0.3), rtol=0, atol=2e-5)


def test_lambda_one_is_normalised_squared_distance():
  rng = np.random.default_rng(4)
  q, g = _clustered(rng, 2, 2, 4, 0.5), _clustered(rng, 2, 3, 4, 0.5)
  feat = np.concatenate([q, g]).astype(np.float64)
  d = ((feat[:, None] - feat[None]) ** 2).sum(-1)
  expected = (d / d.max(0)).T[:4, 4:]
  np.testing.assert_allclose(rerank.rerank_distances(q, g, lambda_value=1.0), expected,
                             atol=1e-5)


def test_bad_shapes_raise():
  with pytest.raises(ValueError, match="features"):
    rerank.rerank_distances(np.zeros((2, 3)), np.zeros((2, 4)))
