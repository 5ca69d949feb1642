"""torchvision ResNet checkpoints convert to our Flax ResNet exactly (features equal to 1e-4)."""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vireid_jax.models import pretrained, resnet

torch = pytest.importorskip("torch")
tnn = torch.nn


# ---------------------------------------------------------------------------
# A torchvision-compatible ResNet in plain torch (torchvision is not installed).

class TorchBasic(tnn.Module):
  expansion = 1

  def __init__(self, inplanes, planes, stride=1, downsample=None):
    super().__init__()
    self.conv1 = tnn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
    self.bn1 = tnn.BatchNorm2d(planes)
    self.conv2 = tnn.Conv2d(planes, planes, 3, 1, 1, bias=False)
    self.bn2 = tnn.BatchNorm2d(planes)
    self.relu = tnn.ReLU()
    self.downsample = downsample

  def forward(self, x):
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.bn2(self.conv2(out))
    identity = x if self.downsample is None else self.downsample(x)
    return self.relu(out + identity)


class TorchBottleneck(tnn.Module):
  expansion = 4

  def __init__(self, inplanes, planes, stride=1, downsample=None):
    super().__init__()
    self.conv1 = tnn.Conv2d(inplanes, planes, 1, bias=False)
    self.bn1 = tnn.BatchNorm2d(planes)
    self.conv2 = tnn.Conv2d(planes, planes, 3, stride, 1, bias=False)   # v1.5
    self.bn2 = tnn.BatchNorm2d(planes)
    self.conv3 = tnn.Conv2d(planes, planes * 4, 1, bias=False)
    self.bn3 = tnn.BatchNorm2d(planes * 4)
    self.relu = tnn.ReLU()
    self.downsample = downsample

  def forward(self, x):
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.relu(self.bn2(self.conv2(out)))
    out = self.bn3(self.conv3(out))
    identity = x if self.downsample is None else self.downsample(x)
    return self.relu(out + identity)


class TorchResNet(tnn.Module):
  """torchvision.models.resnet.ResNet's layout and forward, up to layer4 (plus an unused fc)."""

  def __init__(self, depth, last_stride=2):
    super().__init__()
    block, layers = {18: (TorchBasic, [2, 2, 2, 2]), 34: (TorchBasic, [3, 4, 6, 3]),
                     50: (TorchBottleneck, [3, 4, 6, 3])}[depth]
    self.inplanes = 64
    self.conv1 = tnn.Conv2d(3, 64, 7, 2, 3, bias=False)
    self.bn1 = tnn.BatchNorm2d(64)
    self.relu = tnn.ReLU()
    self.maxpool = tnn.MaxPool2d(3, 2, 1)
    self.layer1 = self._make_layer(block, 64, layers[0], 1)
    self.layer2 = self._make_layer(block, 128, layers[1], 2)
    self.layer3 = self._make_layer(block, 256, layers[2], 2)
    self.layer4 = self._make_layer(block, 512, layers[3], last_stride)
    self.fc = tnn.Linear(512 * block.expansion, 10)

  def _make_layer(self, block, planes, blocks, stride):
    downsample = None
    if stride != 1 or self.inplanes != planes * block.expansion:
      downsample = tnn.Sequential(
          tnn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
          tnn.BatchNorm2d(planes * block.expansion))
    layers = [block(self.inplanes, planes, stride, downsample)]
    self.inplanes = planes * block.expansion
    layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
    return tnn.Sequential(*layers)

  def forward(self, x):
    x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
    return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def random_torch_resnet(depth, last_stride, seed=0):
  """Random conv weights and non-trivial BN affine parameters and running statistics."""
  torch.manual_seed(seed)
  model = TorchResNet(depth, last_stride)
  g = torch.Generator().manual_seed(seed + 1)
  with torch.no_grad():
    for m in model.modules():
      if isinstance(m, tnn.BatchNorm2d):
        c = m.num_features
        m.weight.copy_(0.5 + torch.rand(c, generator=g))
        m.bias.copy_(0.2 * torch.randn(c, generator=g))
        m.running_mean.copy_(0.2 * torch.randn(c, generator=g))
        m.running_var.copy_(0.5 + torch.rand(c, generator=g))
        m.num_batches_tracked.fill_(7)
  return model.eval()


def rel_err(a, b):
  return float(np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b))


@pytest.mark.parametrize("depth", [18, 50])
def test_converted_features_match_torch(depth):
  # Eager (not jitted): XLA:CPU compiles a whole ResNet slower than it runs op by op,
  # and the second last_stride reuses the compiled ops of the first.
  for last_stride in (1, 2):
    tmodel = random_torch_resnet(depth, last_stride)
    x = np.random.default_rng(depth + last_stride).normal(size=(2, 64, 32, 3)).astype(np.float32)
    with torch.no_grad():
      ref = tmodel(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy().transpose(0, 2, 3, 1)
    variables = pretrained.convert_torchvision_resnet(tmodel.state_dict(), depth)
    ours = resnet.ResNet(depth, last_stride).apply(variables, x, train=False)
    s = 16 * last_stride
    assert ours.shape == ref.shape == (2, 64 // s, 32 // s, resnet.out_channels(depth))
    assert np.abs(ref).max() > 0.1    # a meaningful comparison, not all zeros
    assert rel_err(ours, ref) < 1e-4, (depth, last_stride, rel_err(ours, ref))


def test_converted_tree_is_exactly_the_flax_resnet_tree():
  for depth in (18, 34, 50):
    sd = {k: np.zeros(shape, np.float32) for k, (shape, _) in pretrained.expected_keys(depth).items()}
    conv = pretrained.convert_torchvision_resnet(sd, depth)
    ref = jax.eval_shape(lambda: resnet.ResNet(depth).init(
        jax.random.key(0), jnp.zeros((1, 64, 32, 3)), train=False))
    assert jax.tree.structure(conv) == jax.tree.structure(ref)
    for a, b in zip(jax.tree.leaves(conv), jax.tree.leaves(ref)):
      assert a.shape == b.shape and a.dtype == np.float32


def test_state_dict_keys_match_torch_model_and_kernels_are_hwio():
  tmodel = random_torch_resnet(18, 2)
  sd = tmodel.state_dict()
  real = {k for k in sd if not k.endswith("num_batches_tracked") and not k.startswith("fc.")}
  assert real == set(pretrained.expected_keys(18))
  conv = pretrained.convert_torchvision_resnet(sd, 18)
  w = sd["layer2.0.conv1.weight"].numpy()     # (O, I, H, W)
  k = conv["params"]["layer2"]["block0"]["conv1"]["kernel"]
  assert k.shape == (3, 3, 64, 128)
  np.testing.assert_array_equal(k[1, 2, 5, 7], w[7, 5, 1, 2])
  np.testing.assert_array_equal(conv["batch_stats"]["layer2"]["block0"]["downsample_bn"]["var"],
                                sd["layer2.0.downsample.1.running_var"].numpy())
  np.testing.assert_array_equal(conv["params"]["stem"]["bn1"]["scale"], sd["bn1.weight"].numpy())


def _np_state(depth, seed=0):
  rng = np.random.default_rng(seed)
  sd = {k: rng.normal(size=shape).astype(np.float32)
        for k, (shape, _) in pretrained.expected_keys(depth).items()}
  sd["fc.weight"] = np.zeros((10, resnet.out_channels(depth)), np.float32)
  sd["bn1.num_batches_tracked"] = np.array(3, np.int64)
  return sd


def test_clear_errors_for_missing_unexpected_and_mismatched_keys():
  sd = _np_state(18)
  bad = dict(sd)
  del bad["layer1.0.conv1.weight"]
  bad["layer9.0.conv1.weight"] = np.zeros((1,), np.float32)
  bad["bn1.weight"] = np.zeros((65,), np.float32)
  with pytest.raises(ValueError) as e:
    pretrained.convert_torchvision_resnet(bad, 18)
  msg = str(e.value)
  assert "missing keys (1): layer1.0.conv1.weight" in msg
  assert "unexpected keys (1): layer9.0.conv1.weight" in msg
  assert "bn1.weight: checkpoint (65,) != expected (64,)" in msg
  with pytest.raises(ValueError, match="looks like a ResNet-18: set model.depth=18"):
    pretrained.convert_torchvision_resnet(sd, 34)


def test_wrappers_and_module_prefix_are_removed():
  sd = _np_state(18)
  wrapped = {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in sd.items()}}
  a = pretrained.convert_torchvision_resnet(wrapped, 18)
  b = pretrained.convert_torchvision_resnet(sd, 18)
  jax.tree.map(np.testing.assert_array_equal, a, b)


def test_file_round_trips_npz_safetensors_pth_and_cli(tmp_path):
  from safetensors.numpy import save_file
  sd = _np_state(18, seed=3)
  ref = pretrained.convert_torchvision_resnet(sd, 18)
  npz, st, pth = tmp_path / "r.npz", tmp_path / "r.safetensors", tmp_path / "r.pth"
  pretrained.save_npz(sd, str(npz))
  save_file(sd, str(st))
  torch.save({"model": {f"module.{k}": torch.from_numpy(v) for k, v in sd.items()}}, str(pth))
  for path in (npz, st, pth):
    jax.tree.map(np.testing.assert_array_equal, pretrained.load_resnet_weights(str(path), 18), ref)
  out = tmp_path / "sub" / "converted.npz"
  assert pretrained.main(["--in", str(pth), "--out", str(out)]) == 0
  with np.load(out) as data:
    assert "layer1.0.conv1.weight" in data.files and "bn1.num_batches_tracked" not in data.files
  jax.tree.map(np.testing.assert_array_equal, pretrained.load_resnet_weights(str(out), 18), ref)
  # An existing --out is refused (status 1, untouched) unless --overwrite.
  out.write_bytes(b"mine")
  with pytest.raises(SystemExit) as stop:
    pretrained.main(["--in", str(pth), "--out", str(out)])
  assert stop.value.code == 1 and out.read_bytes() == b"mine"
  assert pretrained.main(["--in", str(pth), "--out", str(out), "--overwrite"]) == 0
  jax.tree.map(np.testing.assert_array_equal, pretrained.load_resnet_weights(str(out), 18), ref)
  with pytest.raises(ValueError, match="r.npz"):
    pretrained.load_resnet50_weights(str(npz))   # a ResNet-18 file


def test_bad_paths_and_missing_torch(tmp_path, monkeypatch):
  with pytest.raises(FileNotFoundError, match="download.pytorch.org"):
    pretrained.load_resnet50_weights(str(tmp_path / "nope.pth"))
  odd = tmp_path / "w.h5"
  odd.write_bytes(b"x")
  with pytest.raises(ValueError, match="Unknown checkpoint format"):
    pretrained.load_resnet50_weights(str(odd))
  pth = tmp_path / "w.pth"
  pth.write_bytes(b"x")
  monkeypatch.setitem(sys.modules, "torch", None)     # `import torch` now fails
  with pytest.raises(ImportError, match="--out resnet.npz"):
    pretrained.load_resnet50_weights(str(pth))
