"""LLCM's protocol written again from its definition, for the tests (tests/test_llcm*.py).

The definition (docs/method.md, "LLCM"), as DEEN's data_manager.py, eval_metrics.py and
test.py compute it (read there, written here in our own loops):
  * query of a modality: every test image of it; ids in sorted "%04d" order, cameras in
    order (visible 1..9, near-infrared 1, 2, 4..9), files sorted;
  * gallery of a modality for trial t: random.seed(t), then in that order one
    random.choice of the sorted files of each (id, camera) folder that exists;
  * metric: per query, gallery images of its identity AND its camera are removed; CMC over
    distinct identities; AP and INP over the kept list; queries without a match skipped;
  * rows: infrared-to-visible, visible-to-infrared, and DEEN's "VIS to IR", whose
    distance matrix is the transpose: the drawn infrared images query every visible image.
"""

import os
import random
import zlib

import numpy as np
import pytest

from vireid_jax.data.records import INFRARED, VISIBLE

FOLDERS = {VISIBLE: ("test_vis", ["cam1", "cam2", "cam3", "cam4", "cam5", "cam6", "cam7",
                                  "cam8", "cam9"]),
           INFRARED: ("test_nir", ["cam1", "cam2", "cam4", "cam5", "cam6", "cam7", "cam8",
                                   "cam9"])}
ROWS = ("infrared_to_visible", "visible_to_infrared", "deen_visible_to_infrared")


def _folders(root, modality):
  """Sorted file lists of every existing (id, camera) folder, ids in sorted "%04d" order."""
  with open(os.path.join(root, "idx", "test_id.txt")) as f:
    ids = ["%04d" % int(y) for y in f.read().splitlines()[0].split(",")]
  folder, cams = FOLDERS[modality]
  for pid in sorted(ids):
    for cam in cams:
      d = os.path.join(root, folder, cam, pid)
      if os.path.isdir(d):
        yield sorted(os.path.join(d, name) for name in os.listdir(d))


def _with_ids(files):
  """(paths, person ids, cameras), read from the paths (camK/PPPP/name)."""
  return files, np.array([int(p.split(os.sep)[-2]) for p in files]), \
      np.array([int(p.split(os.sep)[-3][3:]) for p in files])


def reference_query(root, modality):
  """Every test image of the modality: (paths, person ids, cameras), in the definition's order."""
  return _with_ids([p for files in _folders(root, modality) for p in files])


def reference_gallery(root, modality, trial):
  """random.seed(trial), then one random.choice per existing (id, camera) folder."""
  random.seed(trial)
  return _with_ids([random.choice(files) for files in _folders(root, modality)])


def reference_metrics(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=20):
  """Per-query loop: same identity and camera removed, distinct-id CMC, AP/INP on the rest."""
  cmc_sum, aps, inps = np.zeros(max_rank), [], []
  for i in range(distmat.shape[0]):
    order = np.argsort(distmat[i], kind="stable")
    keep = ~((g_pids[order] == q_pids[i]) & (g_cams[order] == q_cams[i]))
    ranked = g_pids[order][keep]
    hits = ranked == q_pids[i]
    if not hits.any():
      continue
    distinct = []
    for pid in ranked:
      if pid not in distinct:
        distinct.append(pid)
    found = distinct.index(q_pids[i])          # 0-based rank among distinct identities
    cmc_sum[found:] += 1
    positions = np.flatnonzero(hits) + 1
    aps.append(np.mean(np.arange(1, len(positions) + 1) / positions))
    inps.append(len(positions) / positions[-1])
  return cmc_sum / len(aps), float(np.mean(aps)), float(np.mean(inps))


def hashed_features(noise):
  """Features: one-hot identity plus per-image noise (a hash of the path), unit length."""
  def extract(paths, modality):
    del modality
    out = np.zeros((len(paths), 16), np.float32)
    for i, p in enumerate(paths):
      rng = np.random.default_rng(zlib.crc32(p.encode()))
      out[i, int(p.split(os.sep)[-2]) % 16] = 1.0
      out[i] += noise * rng.standard_normal(16)
    return out / np.linalg.norm(out, axis=1, keepdims=True)
  return extract


def reference_rows(root, features, trials):
  """The three rows, per trial, as (cmc, mAP, mINP) fractions, from `features(paths, modality)`."""
  vis, vis_pids, vis_cams = reference_query(root, VISIBLE)
  nir, nir_pids, nir_cams = reference_query(root, INFRARED)
  f_vis, f_nir = features(vis, VISIBLE), features(nir, INFRARED)
  out = {row: [] for row in ROWS}
  for t in range(trials):
    g_vis, gv_pids, gv_cams = reference_gallery(root, VISIBLE, t)
    g_nir, gn_pids, gn_cams = reference_gallery(root, INFRARED, t)
    fg_vis, fg_nir = features(g_vis, VISIBLE), features(g_nir, INFRARED)
    out["infrared_to_visible"].append(
        reference_metrics(-(f_nir @ fg_vis.T), nir_pids, gv_pids, nir_cams, gv_cams))
    out["visible_to_infrared"].append(
        reference_metrics(-(f_vis @ fg_nir.T), vis_pids, gn_pids, vis_cams, gn_cams))
    transposed = (fg_nir @ f_vis.T)   # DEEN's test_mode [2, 1]: gall_feat x query_feat^T
    out["deen_visible_to_infrared"].append(
        reference_metrics(-transposed, gn_pids, vis_pids, gn_cams, vis_cams))
  return out


def assert_rows_match(results, reference):
  for row in ROWS:
    assert results[row]["trials"] == len(reference[row])
    for ours, (cmc, m_ap, m_inp) in zip(results[row]["per_trial"], reference[row]):
      assert ours["rank1"] == pytest.approx(100 * cmc[0], abs=1e-6)
      assert ours["rank10"] == pytest.approx(100 * cmc[9], abs=1e-6)
      assert ours["rank20"] == pytest.approx(100 * cmc[19], abs=1e-6)
      assert ours["mAP"] == pytest.approx(100 * m_ap, abs=1e-6)
      assert ours["mINP"] == pytest.approx(100 * m_inp, abs=1e-6)
    values = [t["mAP"] for t in results[row]["per_trial"]]
    assert results[row]["mAP"] == pytest.approx(np.mean(values))
    assert results[row]["std"]["mAP"] == pytest.approx(np.std(values))
