"""User tools: rank-list pictures, embedding plots, feature export, images in the summaries.

Pure parts on hand-made arrays; the three command lines on one tiny trained run
(synthetic SYSU-layout data, ResNet-10 at 64x32, two steps) shared by the module.
"""

import contextlib
import glob
import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from vireid_jax import config_defaults
from vireid_jax.data import synthetic
from vireid_jax.data.sysu import protocol as sysu_protocol
from vireid_jax.evaluation import rank_lists
from vireid_jax.errors import UserError
from vireid_jax.tools import cli, embeddings, extract, plot_embeddings, visualize_ranks
from vireid_jax.training import run_info, summaries

H, W = 64, 48     # layer4 maps 3 wide: XLA:CPU is very slow on narrower ones
# The tests that read the run of `trained` go to one pytest-xdist worker, which trains it
# once (pyproject.toml: --dist loadgroup).
pytestmark = pytest.mark.xdist_group("trained_tools_run")


# ---------------------------------------------------------------- pure parts

def test_top_k_orders_by_distance_keeps_gallery_order_on_ties_and_skips_excluded():
  d = np.array([[0.5, 0.1, 0.3, 0.1],
                [0.9, 0.8, 0.7, 0.6]])
  idx, dist = rank_lists.top_k(d, 3)
  np.testing.assert_array_equal(idx, [[1, 3, 2], [3, 2, 1]])
  np.testing.assert_allclose(dist, [[0.1, 0.1, 0.3], [0.6, 0.7, 0.8]])
  # SYSU camera rule: the camera-3 query (row 0) may not see camera-2 images.
  excluded = sysu_protocol.CAMERA_RULE.mask(None, np.array([3, 6]), None, np.array([1, 2, 4, 2]))
  np.testing.assert_array_equal(excluded, [[False, True, False, True], [False] * 4])
  idx, _ = rank_lists.top_k(d, 2, excluded)
  np.testing.assert_array_equal(idx, [[2, 0], [3, 2]])
  with pytest.raises(ValueError, match="1 <= k <= 2"):
    rank_lists.top_k(d, 3, excluded)


def test_rank_grid_has_the_exact_size_and_green_red_frames_where_identities_match():
  h, w, k = 20, 10, 3
  queries = np.full((2, h, w, 3), 90, np.uint8)
  gallery = np.full((2, k, h, w, 3), 160, np.uint8)
  matches = np.array([[True, False, True], [False, False, True]])
  grid = rank_lists.draw_rank_grid(queries, gallery, np.full((2, k), 0.5), matches,
                                   query_labels=["id 1", "id 2"])
  # Cells 4 + 16 + 12 + 3 * (16 + 4) = 92 px wide, narrower than the widest legend entry
  # (the 204-px caption note + 2 * 4): 212 wide. Legend: one entry per line at that
  # width, 4 * 13 + 4 = 56 px; then 4 + 2 * (20 + 6 + 24 + 4) for the rows.
  assert grid.shape == (56 + 112, 212, 3) == rank_lists.grid_size(2, k, h, w) + (3,)
  assert grid.dtype == np.uint8
  for row in range(2):
    y, x = rank_lists.cell_origin(row, 0, h, w, k)
    assert tuple(grid[y, x]) == rank_lists.QUERY
    assert tuple(grid[y + rank_lists.BORDER + 5, x + rank_lists.BORDER + 5]) == (90, 90, 90)
    for r in range(k):
      y, x = rank_lists.cell_origin(row, r + 1, h, w, k)
      want = rank_lists.CORRECT if matches[row, r] else rank_lists.WRONG
      # All four sides of the frame, and the image inside it.
      for yy, xx in ((y, x), (y + h + 5, x + w + 5), (y + 10, x + 1), (y + 1, x + w + 4)):
        assert tuple(grid[yy, xx]) == want, (row, r, yy, xx)
      assert tuple(grid[y + 3 + h // 2, x + 3 + w // 2]) == (160, 160, 160)
  # Captions are drawn (black text somewhere under the first gallery cell).
  y, x = rank_lists.cell_origin(0, 1, h, w, k)
  assert (grid[y + h + 6:y + h + 6 + rank_lists.CAPTION, x:x + w + 6] == 0).any()


def test_rank_grid_legend_names_each_frame_colour_above_the_rows():
  h, w, k = 96, 48, 8
  grid = rank_lists.draw_rank_grid(np.full((1, h, w, 3), 90, np.uint8),
                                   np.full((1, k, h, w, 3), 160, np.uint8), np.zeros((1, k)),
                                   np.zeros((1, k), bool))
  width = grid.shape[1]
  assert width == rank_lists.grid_size(1, k, h, w)[1] == 534       # the cells set the width
  lines = rank_lists.legend_lines(width - 2 * rank_lists.GAP)
  # The three frame colours fit on the first line, the caption note goes to the second.
  assert [[t for _, t in line] for line in lines] == [
      ["infrared query", "same person", "another person"], ["under each: rank, feature distance"]]
  legend = grid[:rank_lists.cell_origin(0, 0, h, w, k)[0]]
  swatches = [tuple(legend[rank_lists.GAP, x]) for x in range(width)]
  for colour in (rank_lists.QUERY, rank_lists.CORRECT, rank_lists.WRONG):
    assert colour in swatches, colour                             # each swatch's top edge
  assert (legend[rank_lists.GAP:, :, :] == 0).all(axis=-1).any()  # and black text
  # Narrower than the widest entry: one entry per line, every entry on the canvas.
  assert len(rank_lists.legend_lines(50)) == len(rank_lists.LEGEND)


def test_rank_grid_refuses_mismatched_shapes():
  q = np.zeros((1, 8, 4, 3), np.uint8)
  with pytest.raises(ValueError, match="gallery must be"):
    rank_lists.draw_rank_grid(q, np.zeros((1, 2, 8, 5, 3), np.uint8), np.zeros((1, 2)),
                              np.zeros((1, 2), bool))


def test_pca_recovers_the_main_axes_with_fixed_signs():
  t = np.linspace(-2.0, 2.0, 9)
  s = np.tile([0.3, -0.3], 5)[:9]
  # Points along (1, 1, 0)/sqrt2 (spread 2) and (0, 0, -1) (spread 0.3).
  x = np.stack([t / np.sqrt(2), t / np.sqrt(2), -s], axis=1) + 5.0
  xy = embeddings.pca_2d(x)
  np.testing.assert_allclose(xy[:, 0], t, atol=1e-9)
  np.testing.assert_allclose(xy[:, 1], -s - np.mean(-s), atol=1e-9)
  np.testing.assert_allclose(embeddings.pca_2d(-x)[:, 0], -t, atol=1e-9)  # orientation follows data


def test_tsne_keeps_two_distant_clusters_apart():
  pytest.importorskip("sklearn")
  rng = np.random.default_rng(0)
  x = np.concatenate([rng.normal(0, 0.1, (12, 8)) + 5.0, rng.normal(0, 0.1, (12, 8)) - 5.0])
  xy = embeddings.tsne_2d(x, seed=0)
  assert xy.shape == (24, 2)
  a, b = xy[:12], xy[12:]
  spread = max(np.linalg.norm(a - a.mean(0), axis=1).max(), np.linalg.norm(b - b.mean(0), axis=1).max())
  assert np.linalg.norm(a.mean(0) - b.mean(0)) > 2 * spread


def test_modality_stats_and_their_symmetric_kl():
  feats = np.array([[1.0, 0.0], [3.0, 0.0], [2.0, 1.0], [2.0, 3.0]])
  e = embeddings.Embeddings("x", feats, np.array([1, 1, 1, 1]), np.array([0, 0, 1, 1]))
  st = embeddings.modality_stats(e)
  np.testing.assert_allclose(st.mean_visible, [2.0, 0.0])
  np.testing.assert_allclose(st.mean_infrared, [2.0, 2.0])
  np.testing.assert_allclose(st.var_visible, [1.0, 0.0])
  np.testing.assert_allclose(st.var_infrared, [0.0, 1.0])
  # Dimension 0: variances 1 and 1e-6, equal means; dimension 1: 1e-6 and 1, means 0 and 2.
  f = 1e-6
  kl0 = 0.25 * (1 / f + f - 2)
  kl1 = 0.25 * (f + 1 / f - 2 + 4 * (1 / f + 1))
  assert st.sym_kl == pytest.approx((kl0 + kl1) / 2, rel=1e-9)
  same = embeddings.Embeddings("y", np.array([[0.0], [1.0], [0.0], [1.0]]), np.zeros(4),
                               np.array([0, 0, 1, 1]))
  assert embeddings.modality_stats(same).sym_kl == pytest.approx(0.0, abs=1e-12)


def test_saved_config_round_trips_and_new_keys_keep_defaults():
  c = config_defaults.base_config()
  c.data.image_size = (64, 32)
  c.loss.w_dist = 0.25
  saved = json.loads(c.to_json_best_effort())
  del saved["eval"]["rank_list_images"]          # a run from before the key existed
  saved["eval"]["retired_key"] = 1
  back = run_info.config_from_json(json.dumps(saved))
  assert back.data.image_size == (64, 32) and isinstance(back.data.image_size, tuple)
  assert back.loss.w_dist == 0.25
  assert back.eval.rank_list_images == config_defaults.base_config().eval.rank_list_images
  assert back.optim.decay_epochs == c.optim.decay_epochs
  with pytest.raises(run_info.NotAWorkdirError, match="not a training workdir"):
    run_info.read_config("/nonexistent/workdir")


def test_find_images_walks_sorted_and_skips_other_files(tmp_path):
  for rel in ("b/2.png", "b/10.JPG", "a.bmp", "c/d/e.jpeg", "notes.txt", ".hidden.png"):
    p = tmp_path / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"x")
  assert extract.find_images(str(tmp_path)) == ["a.bmp", "b/10.JPG", "b/2.png", "c/d/e.jpeg"]
  (tmp_path / "empty").mkdir()
  with pytest.raises(FileNotFoundError, match="No image files"):
    extract.find_images(str(tmp_path / "empty"))


def test_writer_without_tensorboard_saves_images_as_png(tmp_path):
  writer = summaries.create_writer(str(tmp_path), tensorboard=False)
  img = np.zeros((1, 6, 5, 3), np.uint8)
  img[..., 1] = 200
  writer.write_images(7, {"eval/rank_list": img})
  writer.flush()
  with Image.open(tmp_path / "images" / "eval_rank_list_7.png") as png:
    assert png.size == (5, 6)
    assert png.getpixel((2, 3)) == (0, 200, 0)


# ---------------------------------------------------------------- on a trained run

def tiny_config(root):
  c = config_defaults.synthetic_demo(config_defaults.base_config())
  c.data.name = "sysu"                # an existing SYSU-layout folder, read as real data
  c.data.root = root
  c.data.image_size = (H, W)
  c.data.cache_decoded = False
  c.model.depth = 10                  # one block per stage: half the compilation time
  c.model.branch_head_dim = 32
  c.batch.identities = 4
  c.batch.instances = 2
  c.num_epochs = 1
  c.steps_per_epoch = 2
  c.log_every_steps = 1
  c.optim.warmup_epochs = 1
  c.optim.decay_epochs = (1,)
  c.eval.every_epochs = 0             # the final report alone evaluates (and draws a rank list)
  c.eval.trials = 1
  c.eval.batch_size = 16
  c.eval.rank_list_images = 2
  return c


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  from vireid_jax.training import trainer  # pylint: disable=g-import-not-at-top
  base = tmp_path_factory.mktemp("tools")
  root = str(base / "sysu")
  synthetic.generate("sysu", root, num_ids=12, seed=0, images_per_cam=(2, 3), image_size=(H, W))
  workdir = str(base / "run")
  trainer.train_and_evaluate(tiny_config(root), workdir)
  return workdir, root


def summary_tags(workdir):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tags = set()
  for path in glob.glob(os.path.join(workdir, "events.out.tfevents.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      tags.update(v.tag for v in event.summary.value)
  return tags


def test_training_logs_each_loss_term_and_a_rank_list_image(trained):
  workdir, _ = trained
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    keys = set().union(*(json.loads(line) for line in f))
  assert {"loss/id", "loss/tri", "loss/dist", "loss/intra_id_visible", "loss/intra_tri_visible",
          "loss/intra_id_infrared", "loss/intra_tri_infrared", "loss/total"} <= keys
  assert "test/rank_list" in summary_tags(workdir)


def pid_of(path):
  return int(os.path.basename(os.path.dirname(path)))   # SYSU layout: camK/PPPP/NNNN.jpg


def test_visualize_ranks_draws_frames_that_match_the_identities(trained, tmp_path):
  workdir, _ = trained
  out = str(tmp_path / "ranks.png")
  visualize_ranks.main(["--workdir", workdir, "--num_queries", "3", "--topk", "4", "--out", out])
  with Image.open(out) as png:
    grid = np.asarray(png.convert("RGB"))
  assert grid.shape[:2] == rank_lists.grid_size(3, 4, H, W)
  with open(str(tmp_path / "ranks.json")) as f:
    rows = json.load(f)
  assert len(rows) == 3
  # The .json beside an explicit --out is checked too, before any work; a folder never replaced.
  mine = tmp_path / "mine.json"
  mine.write_text("my notes")
  with pytest.raises(UserError, match="mine.json already exists"):
    visualize_ranks.main(["--workdir", workdir, "--out", str(tmp_path / "mine.png")])
  with pytest.raises(UserError, match="is a folder"):
    visualize_ranks.main(["--workdir", workdir, "--out", str(tmp_path), "--overwrite"])
  assert mine.read_text() == "my notes" and not (tmp_path / "mine.png").exists()
  # Each frame against the identities in the file paths (SYSU layout camK/PPPP/NNNN.jpg).
  for q, row in enumerate(rows):
    assert "/cam3/" in row["query"] or "/cam6/" in row["query"]      # infrared queries
    assert len(row["gallery"]) == 4
    for r, g in enumerate(row["gallery"]):
      assert "/cam3/" not in g["path"] and "/cam6/" not in g["path"]  # visible gallery
      correct = pid_of(g["path"]) == pid_of(row["query"])
      assert g["match"] == correct
      y, x = rank_lists.cell_origin(q, r + 1, H, W, 4)
      assert tuple(grid[y, x]) == (rank_lists.CORRECT if correct else rank_lists.WRONG)
    distances = [g["distance"] for g in row["gallery"]]
    assert distances == sorted(distances) and 0.0 <= distances[0] <= 2.0


def test_extract_writes_features_with_relative_names(trained, tmp_path):
  workdir, root = trained
  folder = tmp_path / "footage"
  sources = sorted(glob.glob(os.path.join(root, "cam1", "*", "*.jpg")))[:2]
  sources = [sources[0], sources[1], sources[0]]       # the last file is a copy of the first
  names = ["cam_a/0001.jpg", "cam_a/0002.jpg", "cam_b/x.jpg"]
  for src, name in zip(sources, names):
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, folder / name)
  (folder / "readme.txt").write_text("not an image")
  out = str(tmp_path / "features.npz")
  extract.main(["--workdir", workdir, "--images", str(folder), "--modality", "visible",
                "--out", out, "--batch_size", "2"])
  with np.load(out) as z:
    assert set(z.files) == {"features", "paths", "modality", "step"}
    feats, paths = z["features"], list(z["paths"])
    assert str(z["modality"]) == "visible" and int(z["step"]) == 2
  assert paths == names
  assert feats.shape == (3, 512) and feats.dtype == np.float32
  np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, rtol=1e-5)
  np.testing.assert_allclose(feats[2], feats[0], atol=1e-6)   # same image, same feature
  assert np.abs(feats[1] - feats[0]).max() > 1e-4

  # An existing --out is the user's: refused, untouched, unless --overwrite.
  before = open(out, "rb").read()
  args = ["--workdir", workdir, "--images", str(folder), "--modality", "infrared", "--out", out]
  stderr = io.StringIO()
  with contextlib.redirect_stderr(stderr):
    status = cli.run_cli(extract.main, args)
  assert status == 1 and "already exists" in stderr.getvalue() and "--overwrite" in stderr.getvalue()
  assert open(out, "rb").read() == before

  (folder / "cam_b" / "broken.png").write_bytes(b"not a png")
  stderr = io.StringIO()
  with contextlib.redirect_stderr(stderr):
    status = cli.run_cli(extract.main, args + ["--overwrite"])
  assert status == 1 and "broken.png" in stderr.getvalue()
  assert open(out, "rb").read() == before


def test_plot_embeddings_draws_baseline_and_full_model_side_by_side(trained, tmp_path):
  workdir, _ = trained
  out = str(tmp_path / "emb.png")
  plot_embeddings.main(["--workdir", workdir, "--baseline_workdir", workdir, "--tsne", "off",
                        "--max_images", "16", "--out", out])
  with Image.open(out) as png:
    # Two columns of 4.6 x 100 px; PCA + two histograms of 3.6 x 100 px, and a header of
    # one title line and one legend line (0.25 x 100 px each) + 0.2 x 100 px.
    assert png.size == (920, 1150)


def toy_run(label, offset, ids=range(6), seed=0):
  """Embeddings of 4 visible + 4 infrared images per id; infrared shifted by `offset`."""
  rng = np.random.default_rng(seed)
  pids = np.repeat(np.array(list(ids)), 8)
  modalities = np.tile(np.repeat([0, 1], 4), len(ids))
  feats = rng.normal(size=(len(ids), 16))[np.searchsorted(np.unique(pids), pids)]
  feats = feats + offset * modalities[:, None] + 0.3 * rng.normal(size=feats.shape)
  return embeddings.Embeddings(label, feats.astype(np.float32), pids, modalities)


def test_embedding_figure_explains_itself_and_compares_runs_on_shared_axes():
  runs = [toy_run("baseline", 1.0), toy_run("full model", 0.1, seed=1)]
  fig = embeddings.plot_figure(runs, num_ids=4)
  axes = np.array(fig.axes).reshape(3, 2)
  legend = [t.get_text() for t in fig.legends[0].get_texts()]
  assert legend[:2] == ["visible image", "infrared image"]
  assert "colour: one person (4 test identities" in legend[2]
  assert fig._suptitle.get_text() == embeddings.TITLE                 # pylint: disable=protected-access
  for ax in axes.flat:
    assert ax.get_xlabel() and ax.get_title()
  assert all(ax.get_ylabel() for ax in axes[:, 0])
  for row in axes:                     # each row shares its axes across the two runs
    assert row[0].get_shared_x_axes().joined(row[0], row[1])
    assert row[0].get_shared_y_axes().joined(row[0], row[1])
  # The histograms of both runs use the same bins, and the titles carry each run's KL.
  edges = [sorted({p.get_x() for p in ax.patches}) for ax in axes[1]]
  assert edges[0] == edges[1]
  assert "symmetric KL" in axes[1, 0].get_title() and runs[0].label in axes[1, 0].get_title()
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  plt.close(fig)
  # One column: the title wraps and the legend stacks, both inside the figure's width.
  fig = embeddings.plot_figure(runs[:1], num_ids=4)
  fig.canvas.draw()
  box = fig.get_window_extent()
  for artist in (fig._suptitle, fig.legends[0]):                      # pylint: disable=protected-access
    extent = artist.get_window_extent()
    assert box.x0 <= extent.x0 and extent.x1 <= box.x1, artist
  assert fig._suptitle.get_text().replace("\n", " ") == embeddings.TITLE  # pylint: disable=protected-access
  assert fig.legends[0]._ncols == 1                                   # pylint: disable=protected-access
  plt.close(fig)


def test_shared_identities_are_the_same_people_in_every_run():
  a = toy_run("a", 0.0, ids=range(10))
  b = toy_run("b", 0.0, ids=range(3, 13))
  ids = embeddings.shared_identities([a, b], 4)
  assert len(ids) == 4 and set(ids) <= set(range(3, 10)) and ids[0] == 3 and ids[-1] == 9
  # An id seen in one modality only is never chosen.
  c = embeddings.Embeddings("c", a.features, a.pids, np.where(a.pids == 0, 0, a.modalities))
  assert 0 not in embeddings.shared_identities([c], 10)


def write_config(workdir, **data):
  c = config_defaults.base_config()
  for key, value in data.items():
    c.data[key] = value
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, run_info.CONFIG_FILE), "w") as f:
    f.write(c.to_json_best_effort())
  return str(workdir)


def test_plot_embeddings_refuses_runs_of_different_datasets_before_any_work(tmp_path, capsys):
  demo = write_config(tmp_path / "demo", name="synthetic", synthetic_num_ids=40)
  other_demo = write_config(tmp_path / "demo2", name="synthetic", synthetic_num_ids=40)
  bigger = write_config(tmp_path / "big", name="synthetic", synthetic_num_ids=100)
  sysu = write_config(tmp_path / "sysu", name="sysu", root=str(tmp_path / "SYSU"))
  # Two demo workdirs each generated the same synthetic data: nothing to refuse.
  plot_embeddings.check_same_data(demo, other_demo, allow_different=False)
  for baseline in (bigger, sysu):
    with pytest.raises(cli.UsageError, match="different data.*--allow_different_data"):
      plot_embeddings.check_same_data(demo, baseline, allow_different=False)
  # The command line stops there with the message (no checkpoint is ever opened).
  status = cli.run_cli(plot_embeddings.main, ["--workdir", demo, "--baseline_workdir", sysu])
  assert status == 1 and "sysu at " in capsys.readouterr().err
  plot_embeddings.check_same_data(demo, sysu, allow_different=True)
  assert "warning: the two runs were trained on different data" in capsys.readouterr().err
  # RegDB: another trial split is another test set.
  t1 = write_config(tmp_path / "r1", name="regdb", root="/data/RegDB", trial=1)
  t2 = write_config(tmp_path / "r2", name="regdb", root="/data/RegDB", trial=2)
  with pytest.raises(cli.UsageError, match="trial 2"):
    plot_embeddings.check_same_data(t1, t2, allow_different=False)


def test_eval_with_other_settings_writes_its_own_results_file(trained):
  """`--config.mode=eval --config.eval.rerank=True` keeps the training's results.json."""
  from vireid_jax.training import reporting  # pylint: disable=g-import-not-at-top
  workdir, root = trained
  with open(os.path.join(workdir, "results.json"), "rb") as f:
    before = f.read()
  settings = json.loads(before)["settings"]
  assert settings["rerank"] is False and settings["checkpoint"] in ("best", "latest")
  c = config_defaults.base_config()       # another config file: only the overrides count
  c.mode, c.eval.rerank = "eval", True
  assert reporting.evaluate_run(c, workdir, ["mode", "eval.rerank"]) == 0
  with open(os.path.join(workdir, "results.json"), "rb") as f:
    assert f.read() == before
  assert "test_rerank/all_single/rank1" in summary_tags(workdir)
  with open(os.path.join(workdir, "results_rerank.json")) as f:
    reranked = json.load(f)
  assert reranked["settings"]["rerank"] is True and reranked["settings"]["step"] == 2
  assert set(reranked) - {"dataset", "settings"} == {"all_single", "all_multi", "indoor_single",
                                                     "indoor_multi"}


# ---------------------------------------------------------------- results files and aggregation

def test_every_setting_that_changes_the_numbers_names_its_own_file_and_tags():
  from vireid_jax.evaluation import report, suites  # pylint: disable=g-import-not-at-top
  c = config_defaults.base_config()
  sysu, regdb = suites.suite_for("sysu"), suites.suite_for("regdb")
  ref = report.evaluation_settings(c, sysu, "best", 300)
  assert ref["trials"] == 10 and "split" not in ref
  assert report.variant_tags(ref, ref) == []
  assert report.results_filename([]) == "results.json" and report.summary_prefix([]) == "test"
  c.eval.rerank = True
  tags = report.variant_tags(report.evaluation_settings(c, sysu, "best", 300), ref)
  assert report.results_filename(tags) == "results_rerank.json"
  assert report.summary_prefix(tags) == "test_rerank"
  c.eval.flip, c.eval.gallery_rule, c.eval.trials = True, "official", 3
  c.data.image_size, c.eval.dtype = (256, 128), "float32"
  tags = report.variant_tags(report.evaluation_settings(c, sysu, "300", 300), ref)
  assert report.results_filename(tags) == (
      "results_ckpt300_rerank_flip_official_trials3_256x128_float32.json")
  # RegDB: one gallery per split; the split is recorded and a different one is named.
  r = config_defaults.base_config()
  r.data.trial = 4
  reg = report.evaluation_settings(r, regdb, "best", 10)
  assert reg["trials"] == 1 and reg["split"] == 4
  r.data.trial = 5
  assert report.variant_tags(report.evaluation_settings(r, regdb, "latest", 10), reg) == [
      "latest", "split5"]


def _results(path, dataset, rank1, mAP, rerank=False, split=None):
  from vireid_jax.evaluation import report  # pylint: disable=g-import-not-at-top
  metrics = {"rank1": rank1, "rank10": 90.0, "rank20": 95.0, "mAP": mAP, "mINP": 30.0,
             "trials": 1}
  settings = {"rerank": rerank, "flip": False, "gallery_rule": "baseline",
              "checkpoint": "best", "step": 10}
  if split is not None:
    settings["split"] = split
  report.write_results_json(str(path), dataset, {"thermal_to_visible": metrics}, settings)
  return str(path)


def test_aggregate_gives_mean_and_std_over_runs_and_refuses_mixed_runs(tmp_path, capsys):
  from vireid_jax.tools import aggregate  # pylint: disable=g-import-not-at-top
  a = _results(tmp_path / "a.json", "regdb", 70.0, 60.0, split=1)
  b = _results(tmp_path / "b.json", "regdb", 80.0, 64.0, split=2)
  out = tmp_path / "all.json"
  text = aggregate.main([a, b, f"--out={out}"])
  assert "regdb, 2 of the 10 splits (1, 2) results (%, mean ± std over runs)" in text
  assert "| thermal_to_visible | 2 | 75.00 ± 5.00 | 90.00 ± 0.00 | 95.00 ± 0.00 | " \
         "62.00 ± 2.00 | 30.00 ± 0.00 |" in text
  saved = json.loads(out.read_text())
  assert saved["thermal_to_visible"]["mAP"] == 62.0 and saved["thermal_to_visible"]["trials"] == 2
  assert saved["settings"]["runs"] == [a, b]
  assert oct(os.stat(out).st_mode & 0o777) == oct(0o666 & ~current_umask())
  # The second time, --out is refused (untouched) unless --overwrite.
  before = out.read_text()
  assert cli.run_cli(aggregate.main, [a, b, f"--out={out}"]) == 1
  assert "already exists" in capsys.readouterr().err and out.read_text() == before
  aggregate.main([b, a, f"--out={out}", "--overwrite"])
  assert json.loads(out.read_text())["settings"]["runs"] == [b, a]
  capsys.readouterr()
  # Refused, with exit status 1 and a message, no traceback.
  c = _results(tmp_path / "c.json", "regdb", 75.0, 61.0, rerank=True, split=3)
  d = _results(tmp_path / "d.json", "sysu", 75.0, 61.0)
  e = _results(tmp_path / "e.json", "regdb", 71.0, 61.0)
  for args, message in (([a, c], "different rerank"), ([a, d], "different datasets"),
                        ([a], "at least two"), ([a, str(tmp_path / "none.json")], "does not exist"),
                        ([a, a], "both RegDB split 1"), ([a, e], "does not record its RegDB split")):
    assert cli.run_cli(aggregate.main, args) == 1
    assert message in capsys.readouterr().err


def current_umask() -> int:
  mask = os.umask(0)
  os.umask(mask)
  return mask


def test_aggregate_imports_neither_jax_nor_tensorflow(tmp_path):
  a = _results(tmp_path / "a.json", "regdb", 70.0, 60.0, split=1)
  b = _results(tmp_path / "b.json", "regdb", 80.0, 64.0, split=2)
  code = ("import sys; sys.modules['jax'] = None; sys.modules['tensorflow'] = None; "
          f"sys.argv = ['aggregate', {a!r}, {b!r}]; "
          "import runpy; runpy.run_module('vireid_jax.tools.aggregate', run_name='__main__')")
  res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
  assert res.returncode == 0, res.stderr
  assert "| thermal_to_visible | 2 | 75.00 ± 5.00" in res.stdout
