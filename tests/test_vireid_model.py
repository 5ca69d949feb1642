"""The two-modality network: outputs per switch, embed, ImageNet loading into every copy, groups."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vireid_jax import config_defaults
from vireid_jax.models import resnet, vireid

H, W = 64, 48     # layer4 maps 3 wide: XLA:CPU is very slow on narrower ones


def random_variables(model, seed=0, image_size=(H, W)):
  """Random, non-trivial variables without running (and compiling) the init."""
  abstract = jax.eval_shape(lambda: vireid.init_variables(model, jax.random.key(0), image_size))
  rng = np.random.default_rng(seed)

  def fill(path, leaf):
    name = getattr(path[-1], "key", "")
    if name == "kernel":
      fan_in = int(np.prod(leaf.shape[:-1]))
      return rng.normal(0, np.sqrt(2.0 / fan_in), leaf.shape).astype(np.float32)
    if name in ("scale", "var"):
      return rng.uniform(0.5, 1.5, leaf.shape).astype(np.float32)
    if name == "p":
      return np.asarray(3.0, np.float32)
    return rng.normal(0, 0.1, leaf.shape).astype(np.float32)

  return jax.tree_util.tree_map_with_path(fill, abstract)


def images(n, seed):
  return jax.random.normal(jax.random.key(seed), (n, H, W, 3))


SWITCHES = [
    dict(two_stream=True, intra_branches=True, branch="layer4", retrieval_feature="shared"),
    dict(two_stream=True, intra_branches=True, branch="head", retrieval_feature="concat",
         gem_learnable=True),
    dict(two_stream=False, intra_branches=True, branch="layer4", retrieval_feature="concat"),
    dict(two_stream=True, intra_branches=False, branch="layer4", retrieval_feature="shared"),
    dict(two_stream=False, intra_branches=False, branch="head", retrieval_feature="shared"),
]


@pytest.mark.parametrize("switches", SWITCHES)
def test_output_shapes_and_dtypes_for_each_switch(switches):
  model = vireid.ViReIDNet(num_classes=7, depth=18, dtype=jnp.bfloat16, branch_head_dim=96,
                           **switches)
  v = jax.eval_shape(lambda: vireid.init_variables(model, jax.random.key(0), (H, W)))
  assert {x.dtype for x in jax.tree.leaves(v)} == {jnp.dtype(jnp.float32)}
  stems = {"stem_visible", "stem_infrared"} if switches["two_stream"] else {"stem"}
  branches = {"branch_visible", "branch_infrared"} if switches["intra_branches"] else set()
  assert set(v["params"]) == stems | branches | {"trunk", "shared"}
  assert ("p" in v["params"]["shared"].get("gem", {})) == switches.get("gem_learnable", False)
  n, m = 3, 5
  out, _ = jax.eval_shape(
      lambda v: model.apply(v, jnp.zeros((n, H, W, 3)), jnp.zeros((m, H, W, 3)), train=True,
                            mutable=["batch_stats"]), v)
  heads = {"shared": (n + m, 512)}
  if switches["intra_branches"]:
    dim = 512 if switches["branch"] == "layer4" else 96
    heads.update(visible=(n, dim), infrared=(m, dim))
  assert set(out) == set(heads)
  for name, (rows, dim) in heads.items():
    assert set(out[name]) == {"feat", "bn", "logits"}
    assert out[name]["feat"].shape == out[name]["bn"].shape == (rows, dim)
    assert out[name]["logits"].shape == (rows, 7)
    assert {x.dtype for x in out[name].values()} == {jnp.dtype(jnp.float32)}
  for modality in (0, 1):
    e = jax.eval_shape(lambda v, mod=modality: model.apply(
        v, jnp.zeros((4, H, W, 3)), mod, method=vireid.ViReIDNet.embed), v)
    assert e.shape == (4, vireid.embedding_dim(model)) and e.dtype == jnp.float32
  concat_dim = 512 + (512 if switches["branch"] == "layer4" else 96)
  assert vireid.embedding_dim(model) == (concat_dim if switches["retrieval_feature"] == "concat"
                                         else 512)


def test_default_model_size_at_reid_resolution():
  c = config_defaults.base_config()
  model = vireid.ViReIDNet.from_config(c.model, num_classes=395)
  assert (model.depth, model.dtype, model.branch, model.two_stream) == (50, jnp.bfloat16, "layer4", True)
  v = jax.eval_shape(lambda: vireid.init_variables(model, jax.random.key(0), c.data.image_size))
  count = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(v["params"]))
  resnet50 = 23_508_032
  layer4 = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(v["params"]["shared"]["layer4"]))
  stem = 7 * 7 * 3 * 64 + 2 * 64
  heads = 3 * (2048 + 2048 * 395)              # BNNeck scales + bias-free classifiers
  # AGW's non-local blocks (inner width 1): g, theta, phi (C -> 1, bias), W (1 -> C, bias),
  # BN (scale, shift): 7C + 3 each, 2 on layer2 (C = 512) and 3 on layer3 (C = 1024).
  non_local = 2 * (7 * 512 + 3) + 3 * (7 * 1024 + 3)
  assert count == resnet50 + stem + 2 * layer4 + heads + non_local == 55_908_751
  fmap = jax.eval_shape(lambda v: model.apply(v, jnp.zeros((2, 288, 144, 3)), 0,
                                              method=vireid.ViReIDNet.embed), v)
  assert fmap.shape == (2, 2048)


def test_from_config_and_bad_switches():
  c = config_defaults.base_config().model
  c.depth, c.dtype, c.branch, c.branch_head_dim, c.gem_p = 18, "float32", "head", 64, 4.0
  model = vireid.ViReIDNet.from_config(c, num_classes=11)
  assert (model.num_classes, model.depth, model.dtype, model.branch, model.branch_head_dim,
          model.gem_p, model.last_stride) == (11, 18, jnp.float32, "head", 64, 4.0, 1)
  c.dtype = "float64"
  with pytest.raises(ValueError, match="model.dtype"):
    vireid.ViReIDNet.from_config(c, 11)
  for bad, msg in ((dict(branch="neck"), "model.branch"),
                   (dict(retrieval_feature="concat", intra_branches=False), "intra_branches"),
                   (dict(depth=42), "depth 42")):
    with pytest.raises(ValueError, match=msg):
      jax.eval_shape(lambda m=vireid.ViReIDNet(5, **{"depth": 18, **bad}): vireid.init_variables(
          m, jax.random.key(0), (H, W)))


@pytest.fixture(scope="module")
def small():
  """One small model for the numeric tests (sharing it shares XLA's compiled ops)."""
  model = vireid.ViReIDNet(num_classes=5, depth=18, branch="head", branch_head_dim=32,
                           retrieval_feature="concat")
  return model, random_variables(model)


def test_embed_matches_call_and_uses_only_its_stem(small):
  model, v = small
  vis, ir = images(2, 1), images(2, 2)
  out = model.apply(v, vis, ir, train=False)
  embed = lambda v, x, mod: model.apply(v, x, mod, method=vireid.ViReIDNet.embed)
  l2 = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)
  e_vis, e_ir = np.asarray(embed(v, vis, 0)), np.asarray(embed(v, ir, 1))
  assert e_vis.shape == (2, 512 + 32)
  np.testing.assert_allclose(e_vis[:, :512], l2(out["shared"]["bn"][:2]), rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(e_vis[:, 512:], l2(out["visible"]["bn"]), rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(e_ir[:, :512], l2(out["shared"]["bn"][2:]), rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(e_ir[:, 512:], l2(out["infrared"]["bn"]), rtol=1e-4, atol=1e-6)
  # Perturbing the infrared stem changes infrared embeddings only.
  w = jax.tree.map(lambda x: x, v)
  w["params"]["stem_infrared"]["conv1"]["kernel"] = v["params"]["stem_infrared"]["conv1"]["kernel"] * 2
  w["batch_stats"]["stem_infrared"]["bn1"]["mean"] = v["batch_stats"]["stem_infrared"]["bn1"]["mean"] + 1
  np.testing.assert_array_equal(embed(w, vis, 0), e_vis)
  assert np.abs(np.asarray(embed(w, ir, 1)) - e_ir).max() > 1e-3


def test_each_stem_batchnorm_sees_only_its_modality(small):
  model, v = small
  vis = images(2, 1)
  run = lambda ir: model.apply(v, vis, ir, train=True, mutable=["batch_stats"])[1]["batch_stats"]
  a, b = run(images(2, 2)), run(images(2, 3) * 2.0)
  for key in ("mean", "var"):
    np.testing.assert_array_equal(a["stem_visible"]["bn1"][key], b["stem_visible"]["bn1"][key])
    assert not np.allclose(a["stem_infrared"]["bn1"][key], b["stem_infrared"]["bn1"][key])
    assert not np.allclose(a["trunk"]["layer1"]["block0"]["bn1"][key],
                           b["trunk"]["layer1"]["block0"]["bn1"][key])
  # The running statistics moved from their old values (momentum 0.9).
  assert not np.allclose(a["stem_visible"]["bn1"]["mean"], v["batch_stats"]["stem_visible"]["bn1"]["mean"])


def _resnet_vars(depth, seed):
  abstract = jax.eval_shape(lambda: resnet.ResNet(depth).init(
      jax.random.key(0), jnp.zeros((1, H, W, 3)), train=False))
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda x: rng.normal(size=x.shape).astype(np.float32), abstract)


@pytest.mark.parametrize("branch", ["layer4", "head"])
def test_load_pretrained_fills_every_resnet_copy(branch):
  model = vireid.ViReIDNet(num_classes=5, depth=18, branch=branch, branch_head_dim=16)
  v = random_variables(model, seed=1)
  before = jax.tree.map(np.copy, v)
  conv = _resnet_vars(18, seed=2)
  out = vireid.load_pretrained(v, conv, model)
  jax.tree.map(np.testing.assert_array_equal, v, before)       # input untouched
  copies = [("stem_visible",), ("stem_infrared",), ("trunk", "layer1"), ("trunk", "layer2"),
            ("trunk", "layer3"), ("shared", "layer4")]
  if branch == "layer4":
    copies += [("branch_visible", "layer4"), ("branch_infrared", "layer4")]
  for coll in ("params", "batch_stats"):
    for path in copies:
      src = conv[coll]["stem" if path[0].startswith("stem") else path[-1]]
      dst = out[coll]
      for name in path:
        dst = dst[name]
      jax.tree.map(np.testing.assert_array_equal, dst, src)
  # Heads (and the light branches) keep their own initialisation.
  for coll in ("params", "batch_stats"):
    for head in ("branch_visible", "branch_infrared", "shared"):
      for name, sub in before[coll][head].items():
        if name != "layer4":
          jax.tree.map(np.testing.assert_array_equal, out[coll][head][name], sub)
  if branch == "head":
    assert "layer4" not in out["params"]["branch_visible"]


def test_load_pretrained_refuses_another_depth():
  model = vireid.ViReIDNet(num_classes=5, depth=18, intra_branches=False)
  v = random_variables(model)
  with pytest.raises(ValueError, match="ResNet-34 but model.depth=18"):
    vireid.load_pretrained(v, _resnet_vars(34, 0), model)


def test_param_groups_label_resnet_parts_pretrained():
  model = vireid.ViReIDNet(num_classes=5, depth=18, branch="head", branch_head_dim=16,
                           gem_learnable=True)
  params = jax.eval_shape(lambda: vireid.init_variables(model, jax.random.key(0), (H, W)))["params"]
  labels = vireid.param_groups(params)
  flat = {"/".join(k.key for k in path): lab
          for path, lab in jax.tree_util.tree_leaves_with_path(labels)}
  new = {k for k, lab in flat.items() if lab == "new"}
  assert set(flat.values()) == {"pretrained", "new"}
  assert new == {f"{h}/{leaf}" for h in ("shared", "branch_visible", "branch_infrared")
                 for leaf in ("gem/p", "bnneck/scale", "classifier/kernel")} | {
                     f"branch_{m}/{leaf}" for m in ("visible", "infrared")
                     for leaf in ("conv/kernel", "bn/scale", "bn/bias")}
  assert flat["stem_visible/conv1/kernel"] == flat["trunk/layer3/block1/bn2/bias"] == "pretrained"
  assert flat["shared/layer4/block0/downsample_conv/kernel"] == "pretrained"
  tx = optax.multi_transform({"pretrained": optax.sgd(0.01), "new": optax.sgd(0.1)}, labels)
  tx.init(params)   # the labels fit the parameter tree


def test_merge_and_split_modalities_round_trip_per_shard():
  a = np.arange(8)[:, None] * np.ones((1, 2))            # rows 0..7
  b = 100 + np.arange(4)[:, None] * np.ones((1, 2))      # rows 100..103
  merged = vireid.merge_modalities(jnp.asarray(a), jnp.asarray(b), shards=2)
  # Shard 0 holds a's first half and b's first half, shard 1 the second halves.
  np.testing.assert_array_equal(merged[:, 0], [0, 1, 2, 3, 100, 101, 4, 5, 6, 7, 102, 103])
  back_a, back_b = vireid.split_modalities(merged, 8, 4, shards=2)
  np.testing.assert_array_equal(back_a, a)
  np.testing.assert_array_equal(back_b, b)
  # Sizes that do not divide fall back to the plain concatenation.
  np.testing.assert_array_equal(vireid.merge_modalities(jnp.asarray(a), jnp.asarray(b[:3]), 2)[:, 0],
                                list(range(8)) + [100, 101, 102])


def test_batch_shards_change_the_layout_not_the_numbers(small):
  """Training outputs and BN statistics are the same for any batch_shards (order restored)."""
  model, v = small
  vis, ir = images(4, 1), images(4, 2)
  run = lambda m: m.apply(v, vis, ir, train=True, mutable=["batch_stats"])
  (out1, st1), (out4, st4) = run(model), run(model.clone(batch_shards=4))
  for x, y in zip(jax.tree.leaves((out1, st1)), jax.tree.leaves((out4, st4))):
    # Only the summation order differs; a row mix-up would differ by O(1).
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-3, atol=1e-4)
