"""The two-modality ReID network: modality stems, shared trunk, shared head, intra-modality branches.

docs/method.md, "Network". Both modalities go through one call so that the shared
layers' BatchNorm sees the whole (visible + infrared) batch, as in the AGW
two-stream baseline:

  visible  -> stem_visible  \\                        /-> shared: layer4 -> GeM -> BNNeck -> classifier
                              > trunk (layer1-3) ----<
  infrared -> stem_infrared /     rows of modality m \\-> branch_m (if intra_branches):
                                                          "layer4": own layer4 on the trunk rows of m
                                                          "head":   1x1 conv-BN-ReLU on the shared
                                                                    layer4 rows of m
                                                          -> GeM -> BNNeck -> classifier

With `non_local`, AGW's non-local blocks run inside the trunk after layer2
blocks 2-3 and layer3 blocks 3-5 (ResNet-50; `resnet.non_local_blocks`),
seen by both modalities, as in AGW's `embed_net(no_local='on')`.

Parameter tree (top level): `stem_visible`, `stem_infrared` (or one `stem`
when not `two_stream`), `trunk/{layer1,layer2,layer3}` (non-local blocks as
`trunk/layerL/nonlocal{i}`), `shared/{layer4,
gem, bnneck, classifier}`, `branch_visible/{layer4 | conv, bn; gem, bnneck,
classifier}` and `branch_infrared/...`. ResNet parts use `resnet.py`'s names,
so one converted torchvision ResNet fills every copy (`load_pretrained`).

Mixed precision: parameters float32; convolutions in `dtype`; GeM, BNNecks
and classifiers in float32, so `feat`, `bn` and `logits` are always float32.
"""

from __future__ import annotations

import functools
from typing import Any, Mapping

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vireid_jax.data.records import INFRARED, MODALITY_NAMES, VISIBLE
from vireid_jax.models import non_local as non_local_lib
from vireid_jax.models import resnet
from vireid_jax.models.layers import BatchNorm, BNNeck, GeM, classifier, l2_normalize

Dtype = Any

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}
BRANCHES = ("layer4", "head")
RETRIEVAL_FEATURES = ("shared", "concat")
PRETRAINED_TOP = ("stem", "stem_visible", "stem_infrared", "trunk")


class Trunk(nn.Module):
  """torchvision layer1-3, shared by both modalities; AGW's non-local blocks with `non_local`."""
  depth: int = 50
  dtype: Dtype = jnp.float32
  bn_groups: int = 1
  fused_bn: str = ""
  non_local: bool = False
  non_local_width: str = "reference"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    for layer in (1, 2, 3):
      x = resnet.make_stage(self.depth, layer, None, self.dtype, f"layer{layer}",
                            bn_groups=self.bn_groups, fused_bn=self.fused_bn,
                            non_local=self.non_local,
                            non_local_width=self.non_local_width)(x, train)
    return x


class Head(nn.Module):
  """[layer4 | 1x1 conv-BN-ReLU] -> GeM -> BNNeck -> classifier.

  Returns (feature map, {"feat": pooled, "bn": BNNeck output, "logits"}), the
  map so that the light branches can run on the shared layer4 output.
  """
  num_classes: int
  kind: str = "layer4"              # layer4 | head
  depth: int = 50
  last_stride: int = 1
  head_dim: int = 1024
  gem_p: float = 3.0
  gem_learnable: bool = False
  dtype: Dtype = jnp.float32
  bn_groups: int = 1
  fused_bn: str = ""

  @nn.compact
  def __call__(self, x: jax.Array, train: bool, logits: bool = True):
    if self.kind == "layer4":
      fmap = resnet.make_stage(self.depth, 4, self.last_stride, self.dtype, "layer4",
                               bn_groups=self.bn_groups, fused_bn=self.fused_bn)(x, train)
    else:
      y = nn.Conv(self.head_dim, (1, 1), use_bias=False, dtype=self.dtype,
                  param_dtype=jnp.float32, kernel_init=resnet.conv_init, name="conv")(x)
      fmap = nn.relu(BatchNorm(dtype=self.dtype, groups=self.bn_groups, name="bn")(
          y, use_running_average=not train))
    feat = GeM(self.gem_p, self.gem_learnable, name="gem")(fmap)
    bn = BNNeck(groups=self.bn_groups, name="bnneck")(feat, train)
    out = {"feat": feat, "bn": bn}
    if logits:
      out["logits"] = classifier(self.num_classes, name="classifier")(bn)
    return fmap, out


def merge_modalities(a: jax.Array, b: jax.Array, shards: int = 1) -> jax.Array:
  """Rows of a and b in one batch, shard by shard: [a_0; b_0; a_1; b_1; ...].

  With the batch split into `shards` contiguous blocks over devices (a_s and
  b_s are device s's rows), joining the modalities this way moves no row
  between devices, where a plain [a; b] makes XLA reshuffle the activations
  across devices (collective-permutes and all-to-alls on the critical path).
  shards=1, or sizes that do not divide, give the plain [a; b].
  """
  if shards <= 1 or a.shape[0] % shards or b.shape[0] % shards:
    return jnp.concatenate([a, b])
  a = a.reshape((shards, -1) + a.shape[1:])
  b = b.reshape((shards, -1) + b.shape[1:])
  return jnp.concatenate([a, b], axis=1).reshape((-1,) + a.shape[2:])


def split_modalities(x: jax.Array, n: int, m: int, shards: int = 1) -> tuple[jax.Array, jax.Array]:
  """Inverse of `merge_modalities(a, b, shards)` for a of n rows and b of m rows."""
  if shards <= 1 or n % shards or m % shards:
    return x[:n], x[n:]
  x = x.reshape((shards, -1) + x.shape[1:])
  k = n // shards
  return (x[:, :k].reshape((n,) + x.shape[2:]), x[:, k:].reshape((m,) + x.shape[2:]))


class ViReIDNet(nn.Module):
  """Visible-infrared ReID network (see the module docstring).

  `__call__(visible (N,H,W,3), infrared (M,H,W,3), train)` -> {"shared":
  {"feat", "bn", "logits"} over the N + M rows (visible first), "visible" and
  "infrared": the branches' outputs over their N or M rows (only with
  `intra_branches`)}. Inputs are ImageNet-normalised floats.

  `batch_shards` (the data-parallel device count) decides how the two
  modalities are laid out inside the step (`merge_modalities`); with
  `sync_batchnorm` every value gives the same numbers. `sync_batchnorm=False`
  gives every BatchNorm one group of statistics per shard (device), each
  holding its visible and infrared rows: PyTorch DDP without SyncBatchNorm.
  """
  num_classes: int
  depth: int = 50
  last_stride: int = 1
  dtype: Dtype = jnp.float32
  two_stream: bool = True
  gem_p: float = 3.0
  gem_learnable: bool = False
  intra_branches: bool = True
  branch: str = "layer4"
  branch_head_dim: int = 1024
  retrieval_feature: str = "shared"
  batch_shards: int = 1
  sync_batchnorm: bool = True
  fused_bn: str = ""
  non_local: bool = False
  non_local_width: str = "reference"

  @classmethod
  def from_config(cls, model_cfg: Mapping[str, Any], num_classes: int,
                  batch_shards: int = 1) -> "ViReIDNet":
    """From the `config.model` ConfigDict (dtype given by name)."""
    name = str(model_cfg["dtype"])
    if name not in DTYPES:
      raise ValueError(f"model.dtype={name!r}: use one of {sorted(DTYPES)}.")
    return cls(num_classes=int(num_classes), depth=int(model_cfg["depth"]),
               last_stride=int(model_cfg["last_stride"]), dtype=DTYPES[name],
               two_stream=bool(model_cfg["two_stream"]), gem_p=float(model_cfg["gem_p"]),
               gem_learnable=bool(model_cfg["gem_learnable"]),
               intra_branches=bool(model_cfg["intra_branches"]), branch=str(model_cfg["branch"]),
               branch_head_dim=int(model_cfg["branch_head_dim"]),
               retrieval_feature=str(model_cfg["retrieval_feature"]),
               batch_shards=int(batch_shards),
               sync_batchnorm=bool(model_cfg.get("sync_batchnorm", True)),
               fused_bn=str(model_cfg.get("fused_bn", "")),
               non_local=bool(model_cfg.get("non_local", False)),
               non_local_width=str(model_cfg.get("non_local_width", "reference")))

  def setup(self):
    resnet.stage_spec(self.depth)   # fails clearly on an unknown depth
    if self.branch not in BRANCHES:
      raise ValueError(f"model.branch={self.branch!r}: use one of {BRANCHES}.")
    if self.retrieval_feature not in RETRIEVAL_FEATURES:
      raise ValueError(f"model.retrieval_feature={self.retrieval_feature!r}: use one of "
                       f"{RETRIEVAL_FEATURES}.")
    if self.retrieval_feature == "concat" and not self.intra_branches:
      raise ValueError("model.retrieval_feature=concat needs model.intra_branches=True.")
    groups = 1 if self.sync_batchnorm else max(1, self.batch_shards)
    fused = self.fused_bn
    if self.two_stream:
      self.stem_visible = resnet.ResNetStem(self.dtype, groups, fused)
      self.stem_infrared = resnet.ResNetStem(self.dtype, groups, fused)
    else:
      self.stem = resnet.ResNetStem(self.dtype, groups, fused)
    non_local_lib.inner_width(64, self.non_local_width)   # fails clearly on an unknown width
    self.trunk = Trunk(self.depth, self.dtype, groups, fused, self.non_local,
                       self.non_local_width)
    head = functools.partial(Head, self.num_classes, depth=self.depth,
                             last_stride=self.last_stride, head_dim=self.branch_head_dim,
                             gem_p=self.gem_p, gem_learnable=self.gem_learnable, dtype=self.dtype,
                             bn_groups=groups, fused_bn=fused)
    self.shared = head(kind="layer4")
    if self.intra_branches:
      self.branch_visible = head(kind=self.branch)
      self.branch_infrared = head(kind=self.branch)

  def _stem(self, images: jax.Array, modality: int, train: bool) -> jax.Array:
    if not self.two_stream:
      return self.stem(images, train)
    return (self.stem_visible if modality == VISIBLE else self.stem_infrared)(images, train)

  def _branch(self, modality: int) -> Head:
    return self.branch_visible if modality == VISIBLE else self.branch_infrared

  def __call__(self, visible: jax.Array, infrared: jax.Array, train: bool) -> dict:
    n, m = visible.shape[0], infrared.shape[0]
    if n == 0 or m == 0 or visible.shape[1:] != infrared.shape[1:]:
      raise ValueError(f"ViReIDNet needs images of both modalities of one size, got visible "
                       f"{visible.shape} and infrared {infrared.shape}.")
    shards = self.batch_shards
    if self.two_stream:
      x = merge_modalities(self._stem(visible, VISIBLE, train),
                           self._stem(infrared, INFRARED, train), shards)
    else:
      x = self._stem(merge_modalities(visible, infrared, shards), VISIBLE, train)
    x = self.trunk(x, train)
    fmap, shared = self.shared(x, train)
    # Back to visible-first rows for the losses (small pooled features only).
    out = {"shared": {k: jnp.concatenate(split_modalities(v, n, m, shards))
                      for k, v in shared.items()}}
    if self.intra_branches:
      src_visible, src_infrared = split_modalities(
          x if self.branch == "layer4" else fmap, n, m, shards)
      _, out[MODALITY_NAMES[VISIBLE]] = self.branch_visible(src_visible, train)
      _, out[MODALITY_NAMES[INFRARED]] = self.branch_infrared(src_infrared, train)
    return out

  def embed(self, images: jax.Array, modality: int, train: bool = False) -> jax.Array:
    """Retrieval feature (float32) of images of one modality (0 visible, 1 infrared).

    "shared": the L2-normalised shared BN feature; "concat": it, concatenated
    with the L2-normalised BN feature of the modality's branch. Only that
    modality's stem is used.
    """
    if modality not in MODALITY_NAMES:
      raise ValueError(f"modality={modality!r}: use {VISIBLE} (visible) or {INFRARED} (infrared).")
    x = self.trunk(self._stem(images, modality, train), train)
    fmap, shared = self.shared(x, train, logits=False)
    feat = l2_normalize(shared["bn"])
    if self.retrieval_feature == "concat":
      _, own = self._branch(modality)(x if self.branch == "layer4" else fmap, train, logits=False)
      feat = jnp.concatenate([feat, l2_normalize(own["bn"])], axis=-1)
    return feat


def embedding_dim(model: ViReIDNet) -> int:
  """Length of `model.embed`'s feature."""
  dim = resnet.out_channels(model.depth)
  if model.retrieval_feature == "concat":
    dim += dim if model.branch == "layer4" else model.branch_head_dim
  return dim


MODALITY_SPECIFIC = ("stem", "branch")


def select_modality(variables: Mapping, modality: jax.Array) -> dict:
  """`variables` whose visible stem and branch hold those of `modality` (0 or 1, may be traced).

  `embed(..., VISIBLE)` on the result is `embed(..., modality)` on `variables`:
  one graph serves both modalities, with the modality a runtime input and no
  control flow (the exported model, `tools.export`). Parts that both
  modalities share are left as they are.
  """
  pick = lambda visible, infrared: jnp.where(modality == INFRARED, infrared, visible)
  out = {}
  for collection, tree in variables.items():
    tree = dict(tree)
    for part in MODALITY_SPECIFIC:
      visible, infrared = f"{part}_{MODALITY_NAMES[VISIBLE]}", f"{part}_{MODALITY_NAMES[INFRARED]}"
      if visible in tree and infrared in tree:
        tree[visible] = jax.tree.map(pick, tree[visible], tree[infrared])
    out[collection] = tree
  return out


def init_variables(model: ViReIDNet, rng: jax.Array, image_size, batch: int = 2) -> dict:
  """{"params", "batch_stats"} of `model` for images of `image_size` = (height, width)."""
  h, w = (int(s) for s in image_size)
  x = jnp.zeros((batch, h, w, 3), jnp.float32)
  variables = model.init(rng, x, x, train=False)
  return {"params": variables["params"], "batch_stats": variables["batch_stats"]}


def resnet_copies(model: ViReIDNet) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
  """(path in ViReIDNet's variables, path in a `resnet.ResNet`'s) for every ResNet copy."""
  stems = ("stem_visible", "stem_infrared") if model.two_stream else ("stem",)
  pairs = [((s,), ("stem",)) for s in stems]
  pairs += [(("trunk", f"layer{i}"), (f"layer{i}",)) for i in (1, 2, 3)]
  heads = ["shared"]
  if model.intra_branches and model.branch == "layer4":
    heads += ["branch_visible", "branch_infrared"]
  pairs += [((h, "layer4"), ("layer4",)) for h in heads]
  return pairs


def _get(tree: Mapping, path: tuple[str, ...], what: str):
  for name in path:
    if not isinstance(tree, Mapping) or name not in tree:
      raise KeyError(f"{what} has no {'/'.join(path)}.")
    tree = tree[name]
  return tree


def _tree_depth(converted: Mapping) -> int | None:
  """Depth of the `resnet.ResNet` whose variables `converted` are."""
  params = converted.get("params", {})
  try:
    sizes = tuple(len(params[f"layer{i}"]) for i in (1, 2, 3, 4))
    bottleneck = "conv3" in params["layer1"]["block0"]
  except (KeyError, TypeError):
    return None
  for depth, (block, spec) in resnet.STAGE_SIZES.items():
    if spec == sizes and (block is resnet.Bottleneck) == bottleneck:
      return depth
  return None


def _resnet_part(tree: Mapping) -> dict:
  """A stage's variables without its non-local blocks (which no ImageNet ResNet has)."""
  return {k: v for k, v in tree.items() if not str(k).startswith("nonlocal")}


def load_pretrained(variables: Mapping, converted: Mapping, model: ViReIDNet) -> dict:
  """Copies one converted torchvision ResNet into every ResNet copy of `model`.

  Both stems (or the one stem), trunk layer1-3, the shared layer4 and the
  branch layer4 copies get the same ImageNet weights and BN statistics;
  heads, light branches and non-local blocks keep their initialisation.
  Returns a new tree.
  """
  depth = _tree_depth(converted)
  if depth != model.depth:
    raise ValueError(
        f"The ImageNet weights are of a ResNet-{depth if depth else '?'} but model.depth="
        f"{model.depth}: convert a ResNet-{model.depth} checkpoint, or set model.depth={depth}.")
  out = flax.core.unfreeze(variables)
  for coll in ("params", "batch_stats"):
    for dst, src in resnet_copies(model):
      source = _get(converted[coll], src, "The converted ResNet")
      target = _get(out[coll], dst, "The model's variables")
      own = _resnet_part(target)
      s_struct, t_struct = jax.tree.structure(source), jax.tree.structure(own)
      if s_struct != t_struct:
        raise ValueError(f"{coll}/{'/'.join(dst)}: the converted ResNet's {'/'.join(src)} has "
                         f"another structure ({s_struct} vs {t_struct}).")

      def copy(s, t, dst=dst):
        if tuple(np.shape(s)) != tuple(np.shape(t)):
          raise ValueError(f"{coll}/{'/'.join(dst)}: shape {np.shape(s)} of the ImageNet "
                           f"weights != {np.shape(t)} in the model.")
        return np.asarray(s, dtype=getattr(t, "dtype", np.float32))

      new = dict(jax.tree.map(copy, source, own))
      new.update({k: v for k, v in target.items() if k not in own})
      parent = _get(out[coll], dst[:-1], "The model's variables")
      parent[dst[-1]] = new
  return out


def param_groups(params) -> Any:
  """Pytree of "pretrained" (stems, trunk, every layer4) | "new" (heads, BNNecks, GeM p).

  "pretrained" is AGW's base group (0.1 x its learning rate): everything but the
  BNNecks and classifiers, the trunk's non-local blocks included.
  """

  def label(path, _):
    names = [getattr(k, "key", getattr(k, "name", str(k))) for k in path]
    return "pretrained" if names[0] in PRETRAINED_TOP or "layer4" in names else "new"

  return jax.tree_util.tree_map_with_path(label, params)
