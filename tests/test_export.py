"""Deployment export: the ONNX and StableHLO files give tools.extract's features, and bad
input is refused.

Two runs: the demo model (the shared tiny end-to-end run, `runs.make_e2e`) and a
ResNet-50 with two stems, non-local blocks, intra-modality layer4 branches whose
features are part of the embedding (`retrieval_feature=concat`) and flip
averaging, at 64x64, with random weights and BatchNorm statistics (no training).
Each exported file runs on the same resized images as tools.extract, as a batch of 7
and the first two one at a time, for both modalities.
"""

import gc
import os
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from vireid_jax import config_defaults
from vireid_jax.data import images as images_lib
from vireid_jax.models import vireid
from vireid_jax.tools import cli, export, export_formats, extract, lax_replay
from vireid_jax.training import checkpointing, parallel, run_info, setup

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCH = 7
ONE_BY_ONE = 2       # images also run one at a time
R50_SIZE = (64, 64)      # layer4 maps 4 wide at last stride 1: XLA:CPU stays fast


@pytest.fixture(scope="module", autouse=True)
def no_compilation_cache_writes():
  """The programs here hold the weights as constants (up to 200 MB for the ResNet-50) and
  are not used again: writing them to the test run's compilation cache only costs time."""
  before = jax.config.jax_persistent_cache_min_compile_time_secs
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 1e9)
  yield
  jax.config.update("jax_persistent_cache_min_compile_time_secs", before)


@pytest.fixture(autouse=True)
def release_memory():
  """The files' executables hold their weights as constants: free them for the next tests."""
  yield
  jax.clear_caches()
  gc.collect()


def r50_config():
  c = config_defaults.base_config()
  c.data.name = "fake"
  c.data.image_size = R50_SIZE
  c.model.depth, c.model.last_stride, c.model.two_stream = 50, 1, True
  c.model.non_local, c.model.intra_branches = True, True
  c.model.branch, c.model.retrieval_feature = "layer4", "concat"
  c.model.dtype = c.eval.dtype = "float32"
  c.model.pretrained = "none"
  c.eval.flip = True
  c.steps_per_epoch = 1
  return c


def perturbed(variables, seed=0):
  """Random BatchNorm statistics, scales and shifts (non-local blocks' zero scales too),
  so that every layer changes the features: a trained model's kind of weights."""
  rng = np.random.default_rng(seed)

  def change(path, a):
    a, name = np.asarray(a), jax.tree_util.keystr(path)
    if name.endswith("['var']"):
      return (a * rng.uniform(1, 3, a.shape)).astype(a.dtype)
    if name.endswith("['scale']"):
      return (np.where(a == 0, 0.2, a) * rng.uniform(0.5, 1, a.shape)).astype(a.dtype)
    if name.endswith(("['mean']", "['bias']")):
      return (a + rng.normal(0, 0.1, a.shape)).astype(a.dtype)
    return a
  return jax.tree_util.tree_map_with_path(change, variables)


def write_random_run(workdir, config, num_classes=8):
  """A workdir with one checkpoint (step 1) of random weights, as training would leave it."""
  model = setup.build_model(config, num_classes)
  mesh = parallel.make_mesh()
  variables = perturbed(vireid.init_variables(model, jax.random.key(0), config.data.image_size))
  tx = setup.build_optimizer(config, variables["params"], 1)
  state = setup.initial_train_state(config, variables, tx, mesh)
  run_info.write(workdir, config, extra={"num_classes": num_classes, "steps_per_epoch": 1})
  ckpt = checkpointing.Checkpointer(workdir)
  ckpt.save(1, state)
  ckpt.close()
  return str(workdir)


@pytest.fixture(scope="module")
def r50_run(tmp_path_factory):
  return write_random_run(tmp_path_factory.mktemp("r50") / "run", r50_config())


@pytest.fixture(scope="module")
def crops(tmp_path_factory):
  """7 random person crops of another size than the runs' (the caller resizes them)."""
  folder = tmp_path_factory.mktemp("crops")
  rng = np.random.default_rng(3)
  for i in range(BATCH):
    pixels = rng.integers(0, 256, (80 + 4 * i, 40 + 2 * i, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / f"{i}.png")
  return str(folder)


def extracted(workdir, folder, modality, out):
  extract.main(["--workdir", workdir, "--images", folder, "--modality", modality,
                "--out", str(out), "--batch_size", "8"])
  with np.load(out) as z:
    return list(z["paths"]), z["features"]


@pytest.mark.parametrize("which", ["demo", "r50"])
def test_exported_files_give_the_features_of_tools_extract(which, request, crops, tmp_path):
  workdir = request.getfixturevalue("e2e").reference if which == "demo" else \
      request.getfixturevalue("r50_run")
  config = run_info.read_config(workdir)
  size = tuple(config.data.image_size)
  wanted = {}
  for modality, name in ((0, "visible"), (1, "infrared")):
    names, feats = extracted(workdir, crops, name, tmp_path / f"{name}.npz")
    wanted[modality] = feats
  pixels = images_lib.load_images([os.path.join(crops, n) for n in names], size)
  assert pixels.shape == (BATCH,) + size + (3,)
  if which == "r50":   # the modality matters: two stems and the branches' features
    assert np.abs(wanted[0] - wanted[1]).max() > 1e-3
  for fmt in export_formats.FORMATS:
    out = tmp_path / f"model.{fmt}"
    export.main(["--workdir", workdir, "--format", fmt, "--out", str(out)])
    run = export_formats.RUNNERS[fmt](out.read_bytes())
    for modality in (0, 1):
      batch = run(pixels, modality)
      # Batch 1 on the first images: the symbolic batch dimension at its smallest.
      one_by_one = np.concatenate([run(pixels[i:i + 1], modality) for i in range(ONE_BY_ONE)])
      assert batch.dtype == np.float32 and batch.shape == wanted[modality].shape
      for got in (batch, one_by_one):
        diff = float(np.abs(got - wanted[modality][:len(got)]).max())
        print(f"{which} {fmt} modality {modality}: max |file - tools.extract| = {diff:.2e}")
        assert diff <= 1e-4, (which, fmt, modality, diff)
    assert np.isnan(run(pixels[:1], 2)).all()          # an unknown modality: NaN, never a guess
  if which == "demo":   # a service runs the files without our code (ONNX: without JAX)
    np.save(tmp_path / "pixels.npy", pixels[:2])
    for fmt, blocked, load in (
        ("onnx", "vireid_jax jax",
         "import onnxruntime as ort; s = ort.InferenceSession(path); "
         "run = lambda x, m: s.run(None, {'images': x, 'modality': np.array(m, np.int32)})[0]"),
        ("stablehlo", "vireid_jax",
         "import jax; e = jax.export.deserialize(bytearray(open(path, 'rb').read())); "
         "run = lambda x, m: np.asarray(e.call(x, np.int32(m)))")):
      code = (f"import sys\nfor m in {blocked!r}.split(): sys.modules[m] = None\n"
              f"import numpy as np\npath = {str(tmp_path / f'model.{fmt}')!r}\n{load}\n"
              f"np.save({str(tmp_path / f'{fmt}.npy')!r}, run(np.load("
              f"{str(tmp_path / 'pixels.npy')!r}), 1))")
      res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=300, cwd=str(tmp_path))
      assert res.returncode == 0, res.stderr[-2000:]
      np.testing.assert_allclose(np.load(tmp_path / f"{fmt}.npy"), wanted[1][:2], atol=1e-4)
  if which == "r50":
    import onnx  # pylint: disable=g-import-not-at-top
    model = onnx.load(str(tmp_path / "model.onnx"))
    dims = [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in list(model.graph.input) + list(model.graph.output)]
    assert dims == [["batch", 64, 64, 3], [], ["batch", 4096]]
    props = {p.key: p.value for p in model.metadata_props}
    assert props["vireid_jax.flip"] == "True" and props["vireid_jax.image_size"] == "64x64"


def test_replay_slices_max_pools_exactly_and_drops_what_the_output_does_not_read():
  x = jax.random.normal(jax.random.key(0), (2, 9, 8, 3))
  for window, stride, pad in ((3, 2, 1), (2, 2, 0), (3, 1, 1)):
    args = dict(window_dimensions=(1, window, window, 1), window_strides=(1, stride, stride, 1),
                padding=((0, 0), (pad, pad), (pad, pad), (0, 0)))
    want = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, **args)
    got = lax_replay.max_pool_by_slices(x, base_dilation=(1,) * 4, window_dilation=(1,) * 4,
                                        **args)
    np.testing.assert_array_equal(got, want)

  def fn(weights, x):
    unused = weights["classifier"] * 2.0            # traced, never read by the output
    del unused
    return vireid_pool(jnp.maximum(x * weights["scale"], 0.0))

  def vireid_pool(y):
    return jax.lax.reduce_window(y, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 2, 2, 1),
                                 ((0, 0), (1, 1), (1, 1), (0, 0)))

  weights = {"scale": np.full((3,), 2.0, np.float32), "classifier": np.ones((5, 3), np.float32)}
  spec = jax.ShapeDtypeStruct((2, 9, 8, 3), jnp.float32)
  replayed = lax_replay.replay(fn, weights, spec, slice_max_pools=True)
  np.testing.assert_array_equal(replayed(x), fn(weights, x))
  jaxpr = jax.make_jaxpr(replayed)(spec).jaxpr
  names = {e.primitive.name for e in jaxpr.eqns}
  assert "reduce_window_max" not in names and "slice" in names
  consts = jax.make_jaxpr(replayed)(spec).consts
  assert all(np.shape(c) != (5, 3) for c in consts)      # the unread weights are left out


def run_export(args, capsys):
  status = cli.run_cli(export.main, args, bad_input_status=2)
  return status, capsys.readouterr().err


def test_export_refuses_bad_input_with_one_line_and_status_2(tmp_path, capsys, monkeypatch):
  out = tmp_path / "model.onnx"
  bare = tmp_path / "untrained"
  run_info.write(bare, r50_config(), extra={"num_classes": 8, "steps_per_epoch": 1})
  for args, message in (
      (["--workdir", str(bare), "--format", "stablehlo"], "No checkpoint in"),
      (["--workdir", str(bare), "--format", "tflite"], "--format='tflite': use one of onnx"),
      (["--workdir", str(tmp_path / "none"), "--format", "onnx"], "not a training workdir"),
      (["--workdir", str(bare), "--format", "onnx", "--dtype", "int8"], "--dtype='int8'"),
      (["--workdir", str(bare), "--format", "onnx", "--checkpoint", "last"],
       "--checkpoint='last'")):
    status, err = run_export(args + ["--out", str(out)], capsys)
    assert status == 2 and message in err and err.count("\n") == 1, (args, err)
    assert not out.exists()
  # A missing optional dependency names the install command.
  monkeypatch.setitem(sys.modules, "jax2onnx", None)
  status, err = run_export(["--workdir", str(bare), "--format", "onnx", "--out", str(out)], capsys)
  assert status == 2 and "pip install -e .[export]" in err and err.count("\n") == 1, err
  assert not out.exists()
  # An existing --out is the user's: refused, untouched.
  out.write_bytes(b"mine")
  status, err = run_export(["--workdir", str(bare), "--format", "stablehlo", "--out", str(out)],
                           capsys)
  assert status == 2 and "already exists" in err and out.read_bytes() == b"mine"
  # The command line itself: the same line and status.
  res = subprocess.run([sys.executable, "-m", "vireid_jax.tools.export", "--workdir", str(bare),
                        "--format", "tflite", "--out", str(tmp_path / "x")], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
  assert res.returncode == 2 and res.stderr.strip().splitlines() == [
      "error: --format='tflite': use one of onnx, stablehlo."], res.stderr
  assert not (tmp_path / "x").exists()


def test_export_in_the_runs_precision(e2e, crops, tmp_path, capsys):
  """--dtype=run computes in the run's eval.dtype (here bfloat16): the StableHLO file gives
  tools.extract's bfloat16 features; ONNX in bfloat16, which onnxruntime cannot run on the
  CPU (no bfloat16 convolution), is refused."""
  workdir = tmp_path / "run"
  shutil.copytree(e2e.reference, workdir)
  config = run_info.read_config(workdir)
  config.eval.dtype = "bfloat16"
  (workdir / run_info.CONFIG_FILE).write_text(config.to_json_best_effort(indent=2))
  names, wanted = extracted(str(workdir), crops, "infrared", tmp_path / "infrared.npz")
  pixels = images_lib.load_images([os.path.join(crops, n) for n in names],
                                  tuple(config.data.image_size))
  out = tmp_path / "model.stablehlo"
  export.main(["--workdir", str(workdir), "--format", "stablehlo", "--dtype", "run",
               "--out", str(out)])
  got = export_formats.RUNNERS["stablehlo"](out.read_bytes())(pixels, 1)
  diff = float(np.abs(got - wanted).max())
  print(f"bfloat16 stablehlo: max |file - tools.extract| = {diff:.2e}")
  assert diff <= export.TOLERANCE["bfloat16"]
  status, err = run_export(["--workdir", str(workdir), "--format", "onnx", "--dtype", "run",
                            "--out", str(tmp_path / "model.onnx")], capsys)
  assert status == 2 and "cannot run this graph" in err and err.count("\n") == 1, err
  assert not (tmp_path / "model.onnx").exists()
