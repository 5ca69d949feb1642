"""The GPU benchmarks run end to end on the CPU at tiny sizes, and their helpers compute the right numbers.

The subprocess runs use 64x64 images: at 64x32, layer3/4 maps are 2 wide, and
XLA:CPU runs 3x3 convolutions on maps narrower than the kernel ~100x slower.
The scripts run as modules of the `benchmarks` package (`python -m benchmarks.X`).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys

import numpy as np
import pytest

from benchmarks import common as bench
from benchmarks import model_flops
from benchmarks import whole_job_report

import runs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--image_size=64,64", "--depth=18", "--batch=16", "--steps=2", "--warmup=1",
        "--peak_size=64", "--dtype=float32"]


def _env():
  # Cheap XLA:CPU compiles (conftest.py): the smoke run checks plumbing, not speed.
  env = runs.subprocess_env(CUDA_VISIBLE_DEVICES="", PYTHONUNBUFFERED="1")
  env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
  return env


def _run(module, args, out):
  res = subprocess.run([sys.executable, "-m", f"benchmarks.{module}", *args, f"--out={out}"],
                       cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
  assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
  with open(out) as f:
    return json.load(f), res.stdout


def _check_result(report, framework):
  assert report["framework"] == framework
  assert report["peak_tflops"] > 0
  (res,) = report["results"]
  assert (res["batch"], res["identities"], res["instances"]) == (16, 2, 4)
  assert res["images_per_s"] > 0 and res["flops_per_step"] > 0
  assert res["step_ms_mean"] > 0 and len(res["chunk_step_ms"]) == 2
  assert math.isclose(res["images_per_s"], 16 / (res["step_ms_mean"] / 1e3), rel_tol=1e-9)
  assert math.isclose(res["achieved_tflops"],
                      res["flops_per_step"] / (res["step_ms_mean"] / 1e3) / 1e12, rel_tol=1e-9)
  assert math.isfinite(res["final_loss"])
  return res


def test_jax_benchmark_runs_the_real_step(tmp_path):
  report, stdout = _run("step_speed", ["--config=configs/agw_baseline.py", *TINY, "--depth=10"],
                        tmp_path / "jax.json")
  res = _check_result(report, "jax")
  assert report["model"] == "agw" and report["mode"] == "jit" and report["num_devices"] == 1
  assert res["flops_source"] == "jaxpr_conv_matmul"
  # A ResNet-10 step (one block per stage: half the compilation of ResNet-18) on 16 64x64
  # images, last stride 1. Forward convolutions per image, in MFLOP: stem 19 (7x7, 32x32
  # out), layer1 38 (16x16), layer2 29 and layer3 29 (8x8, 4x4, with their 1x1
  # projections), layer4 117 (4x4 at 512 channels): ~233; backward 2x, so 16 * 3 * 0.233 =
  # ~11 GFLOP, less the stem's input gradient, nearly all of it convolution.
  assert 9e9 < res["flops_per_step"] < 12e9, res["flops_per_step"]
  assert res["flops_convolution"] + res["flops_matmul"] == pytest.approx(res["flops_per_step"])
  assert res["flops_matmul"] < 0.05 * res["flops_per_step"]
  assert res["nonfinite_steps"] == 0
  assert "img/s" in stdout and "cpu" in report["device_kind"].lower()


def test_torch_benchmark_full_model_runs(tmp_path):
  pytest.importorskip("torch")
  # 64x32 is fine for torch (the narrow-map slowdown is XLA:CPU's).
  report, _ = _run("torch_reference", ["--mode=eager", "--model=full", "--resnet=builtin",
                                          *TINY, "--image_size=64,32"], tmp_path / "torch.json")
  res = _check_result(report, "torch")
  assert report["model"] == "full" and report["mode"] == "eager"
  assert res["flops_source"] == "torch_flop_counter"
  # Conv/matmul FLOPs of the step at 64x32: the shared ResNet-18 over 16 images
  # (~12 GFLOP, forward + backward) plus two layer4 copies over 8 images each.
  assert 12e9 < res["flops_per_step"] < 30e9, res["flops_per_step"]
  # Our count of the same network's step (traced, not run) agrees with torch's counter,
  # so the two frameworks' TFLOP/s columns compare.
  ours, stdout = _run("step_speed", ["--config=configs/sysu.py", "--flops_only", *TINY,
                                      "--image_size=64,32"], tmp_path / "flops.json")
  assert "GFLOP per step" in stdout
  assert ours["results"][0]["flops_per_step"] == pytest.approx(res["flops_per_step"], rel=1e-3)


def test_model_flops_counts_convolutions_matmuls_and_control_flow():
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  count = lambda f, *a: model_flops.jaxpr_flops(jax.make_jaxpr(f)(*a))
  x, w = jnp.ones((2, 16, 12, 8)), jnp.ones((3, 3, 8, 5))
  for stride in (1, 2):
    conv = lambda x, w, s=stride: jax.lax.conv_general_dilated(
        x, w, (s, s), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"))
    ho, wo = 16 // stride, 12 // stride
    fwd = count(conv, x, w)
    assert fwd == {"convolution": 2 * 2 * ho * wo * 5 * 9 * 8, "matmul": 0.0,
                   "total": 2 * 2 * ho * wo * 5 * 9 * 8}
    # Data and weight gradients each cost a forward pass, also for the strided conv (the
    # zeros a transposed convolution inserts are not counted), as torch counts them.
    grads = count(jax.grad(lambda x, w: jnp.sum(conv(x, w)), argnums=(0, 1)), x, w)
    assert grads["convolution"] == 3 * fwd["convolution"]
  a, b = jnp.ones((4, 6)), jnp.ones((6, 3))
  assert count(jnp.matmul, a, b)["matmul"] == 2 * 4 * 6 * 3
  assert count(jax.jit(jnp.matmul), a, b)["matmul"] == 2 * 4 * 6 * 3        # nested jaxpr
  scan = lambda a: jax.lax.scan(lambda c, _: (c @ jnp.ones((6, 6)), None), a, length=5)[0]
  assert count(scan, a)["matmul"] == 5 * 2 * 4 * 6 * 6
  cond = lambda p, a: jax.lax.cond(p, lambda v: v @ b, lambda v: (v @ jnp.ones((6, 6))) @ b, a)
  assert count(cond, True, a)["matmul"] == 2 * 4 * 6 * 6 + 2 * 4 * 6 * 3   # costlier branch


def test_batch_layout():
  assert bench.batch_layout(64) == (8, 4)
  assert bench.batch_layout(256) == (32, 4)
  for bad in (0, 12, 60, 8):       # not a multiple of 2K, or P < 2
    with pytest.raises(ValueError, match="--batch"):
      bench.batch_layout(bad)


def test_chunks_and_timing():
  assert bench.chunk_sizes(30, 5) == [6] * 5
  assert bench.chunk_sizes(7, 3) == [3, 2, 2]
  assert bench.chunk_sizes(2, 5) == [1, 1]
  calls, blocked = [], []
  res = bench.time_steps(lambda: calls.append(1) or len(calls), blocked.append, steps=7, chunks=3)
  assert len(calls) == 7 and blocked == [3, 5, 7]     # one block per chunk, on its last output
  assert len(res["chunk_step_ms"]) == 3
  assert res["step_ms_min"] <= res["step_ms_median"]
  with pytest.raises(ValueError):
    bench.time_steps(lambda: None, lambda _: None, steps=0)


def test_rates_and_summary():
  res = bench.add_rates({"step_ms_mean": 50.0, "step_ms_median": 40.0}, 64, 2e12, 800.0)
  assert res["images_per_s"] == pytest.approx(1280.0)
  assert res["images_per_s_median"] == pytest.approx(1600.0)
  assert res["achieved_tflops"] == pytest.approx(40.0)
  assert res["fraction_of_peak"] == pytest.approx(0.05)

  def report(fw, mode, ms):
    r = {"step_ms_mean": ms, "step_ms_median": ms, "batch": 64}
    return {"framework": fw, "mode": mode, "model": "agw", "peak_tflops": 800.0,
            "results": [bench.add_rates(r, 64, 2e12, 800.0)]}

  text = bench.summarize([report("jax", "jit", 25.0), report("torch", "eager", 50.0),
                          report("torch", "compile", 20.0)])
  assert "JAX/torch-eager images/s ratio at batch 64 (agw): 2.00x" in text
  assert "JAX/torch-compile images/s ratio at batch 64 (agw): 0.80x" in text
  assert text.count("\njax ") == 1 and text.count("\ntorch ") == 2
  # Two devices at the same per-device batch: 1.8x the images/s of one (its own ratio to torch
  # is not printed: the torch lines compare single-device runs only).
  two = report("jax", "jit", 25.0 / 0.9)
  two["num_devices"] = 2
  two["results"] = [bench.add_rates({"step_ms_mean": 25.0 / 0.9, "step_ms_median": 25.0 / 0.9,
                                     "batch": 128}, 128, 4e12, 800.0)]
  text = bench.summarize([report("jax", "jit", 25.0), two])
  assert "scaling agw, 64 images per device: 2 devices = 1.80x one device (90% efficiency)" in text
  # An A/B: the median of the old runs' images/s (2560, 2133) against the new run's 3200.
  text = bench.summarize([report("jax", "old", 25.0), report("jax", "old", 30.0),
                          report("jax", "new", 20.0)])
  assert "A/B agw, batch 64 on 1 device(s): new/old images/s = 1.364 (2 old and 1 new" in text


def test_summarize_cli_needs_no_framework(tmp_path):
  path = tmp_path / "r.json"
  bench.write_report(str(path), {"framework": "torch", "mode": "eager", "model": "agw",
                                 "results": [{"batch": 64, "step_ms_mean": 10.0,
                                              "step_ms_median": 10.0, "images_per_s": 6400.0}]})
  code = ("import runpy, sys; sys.modules['jax'] = None; sys.modules['torch'] = None; "
          f"sys.argv = ['x', {str(path)!r}]; "
          "runpy.run_module('benchmarks.summarize', run_name='__main__')")
  res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True,
                       text=True, timeout=60)
  assert res.returncode == 0, res.stderr
  assert "6400.0" in res.stdout


def test_torch_losses_match_ours():
  """The torch reference's WRT triplet and distribution loss equal vireid_jax's."""
  torch = pytest.importorskip("torch")
  from vireid_jax.losses import distribution, triplet
  from benchmarks import torch_reference as tr  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  p, k, d = 3, 4, 16
  labels = np.repeat(rng.choice(50, p, replace=False), k).astype(np.int32)
  fv, fi = (rng.normal(size=(p * k, d)).astype(np.float32) for _ in range(2))
  feats = np.concatenate([fv, fi])
  both = np.concatenate([labels, labels])
  ours = float(triplet.weighted_regularized_triplet(feats, both))
  theirs = float(tr.weighted_regularized_triplet(torch.from_numpy(feats), torch.from_numpy(both)))
  assert ours == pytest.approx(theirs, rel=1e-5)
  ours = float(distribution.distribution_consistency(fv, fi, labels, labels, level="identity",
                                                     divergence="sym_kl", normalize="l2"))
  theirs = float(tr.identity_sym_kl(torch.from_numpy(fv), torch.from_numpy(fi), k))
  assert ours == pytest.approx(theirs, rel=1e-4)


def test_torch_last_stride_and_param_groups():
  torch = pytest.importorskip("torch")
  from benchmarks import torch_reference as tr  # pylint: disable=g-import-not-at-top
  for depth, intra in ((18, True), (50, False)):       # basic block and bottleneck strides
    net = tr.TwoStreamNet(depth, num_classes=10, intra=intra, impl="builtin")
    x = torch.zeros(2, 3, 64, 32)
    with torch.no_grad():
      y = net.trunk(net.visible_stem(x))
      assert net.layer4(y).shape[-2:] == y.shape[-2:]      # layer4 keeps layer3's resolution
    new = net.new_layer_params()
    # A BNNeck weight and a classifier per head (1 or 3 heads); BNNeck biases are frozen.
    assert len(new) == (6 if intra else 2) and all(p.requires_grad for p in new)
    assert not net.head.bnneck.bias.requires_grad
    total = sum(1 for p in net.parameters() if p.requires_grad)
    assert len(net.pretrained_params()) + len(new) == total


def test_collectives_parser_counts_ops_and_bytes():
  from benchmarks import collectives as coll  # pylint: disable=g-import-not-at-top
  hlo = "\n".join([
      "  %ar = f32[64,3]{1,0} all-reduce(%x), channel_id=1, to_apply=%add",
      "  %ars = (f32[8]{0}, bf16[2,2]{1,0}) all-reduce-start(%a, %b), channel_id=2",
      "  %ard = (f32[8]{0}, bf16[2,2]{1,0}) all-reduce-done(%ars)",
      "  %cp = bf16[4,6,3,256]{3,2,1,0} collective-permute(%y), source_target_pairs={{0,1}}",
      "  %add = f32[64,3]{1,0} add(%p, %q)"])
  ops = coll.collectives(hlo)
  assert ops == [("all-reduce", 64 * 3 * 4), ("all-reduce", 8 * 4 + 4 * 2),
                 ("collective-permute", 4 * 6 * 3 * 256 * 2)]
  table = coll.summarize(ops + [("all-reduce", 2 << 20)])
  assert "| all-reduce | 3 | 2.00 | 1 | 2.00 |" in table


def test_step_ab_times_variants_side_by_side(tmp_path):
  """base, its noise-floor twin and a rematerialised variant: same loss, one row each."""
  report, stdout = _run("step_ab", ["--config=configs/agw_baseline.py", *TINY, "--depth=10",
                                    "--steps=1", "--rounds=1", "--variant=remat=remat=conv"],
                        tmp_path / "ab.json")
  rows = {r["variant"]["name"]: r for r in report["results"]}
  assert list(rows) == ["base", "base_again", "remat"] and not report["failed"]
  # Recomputing instead of storing changes no number: same loss after the same steps.
  assert rows["remat"]["final_loss"] == pytest.approx(rows["base"]["final_loss"], rel=1e-5)
  assert rows["remat"]["flops_per_step"] == rows["base"]["flops_per_step"]
  assert rows["base"]["speedup_vs_base_median"] == 1.0
  assert all(r["hlo_gb"] > 0 and r["kernels"] > 0 for r in rows.values())
  assert "base_again" in stdout


def test_variant_specs():
  from benchmarks import variants  # pylint: disable=g-import-not-at-top
  v = variants.parse("graphs=xla.xla_gpu_enable_command_buffer=;xla.xla_gpu_autotune_level=0;"
                     "config.model.fused_bn=pallas;remat=conv")
  assert v.name == "graphs" and v.remat == "conv"
  assert v.compiler_options == {"xla_gpu_enable_command_buffer": "",
                                "xla_gpu_autotune_level": 0}
  assert v.config == ("model.fused_bn=pallas",)
  assert variants.option_value("true") is True and variants.option_value("2.5") == 2.5
  for bad in ("noname", "x=config.model", "x=remat=everything", "x=foo.bar=1"):
    with pytest.raises(ValueError, match="--variant"):
      variants.parse(bad)


def test_hlo_bytes_counts_each_kernel_once():
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from benchmarks import hlo_bytes  # pylint: disable=g-import-not-at-top
  x = jnp.ones((256, 128), jnp.float32)
  text = jax.jit(lambda a: jnp.sin(a) * 2.0).lower(x).compile().as_text()
  found = hlo_bytes.kernels(text)
  # One elementwise kernel: reads x once, writes the result once (128 KiB each).
  assert sum(k.read for k in found) == x.nbytes and sum(k.written for k in found) == x.nbytes
  assert hlo_bytes.shape_arrays("(f32[8]{0}, bf16[2,2]{1,0})") == [("f32", 32), ("bf16", 8)]
  assert hlo_bytes.kernel_key("loop_add_fusion.12") == "loop_add_fusion_12"
  assert hlo_bytes.summarize(found).startswith(f"{len(found)} kernels, 0.000 GB")


def test_bn_sites_of_resnet50():
  from benchmarks import bn_sites  # pylint: disable=g-import-not-at-top
  sites = bn_sites.network_sites(50, (288, 144), 64)
  # 53 BatchNorms of a ResNet-50 with the stem's counted twice (one stem per modality).
  assert sum(s.count for s in sites) == 54
  # 10.49 M normalised values per image; the stem's at 144 x 72, layer4's at 18 x 9.
  assert sum(s.count * s.rows * s.channels for s in sites) == 64 * 10_492_416
  assert sites[0].rows == 32 * 144 * 72 and sites[-1].rows == 64 * 18 * 9
  full = bn_sites.network_sites(50, (288, 144), 64, full=True)
  assert sum(s.count for s in full) == 54 + 2 * 10          # two more layer4 copies
  assert [s.min_passes for s in sites if s.name == "layer1_bn3"] == [11]


def test_whole_job_report_reads_a_real_run(e2e, tmp_path):
  """The report's parsers on the console and workdir of a real run of the main job."""
  log = tmp_path / "run.log"
  log.write_text("=== command 1, to the end: python -m vireid_jax.main ...\n" + e2e.log
                 + "=== command 1: exit 0, wall 99999.5 s\n")
  step = tmp_path / "step.json"
  step.write_text(json.dumps({"results": [{"batch": 16, "images_per_s": 100.0}]}))
  out = tmp_path / "summary.json"
  res = subprocess.run([sys.executable, "-m", "benchmarks.whole_job_report",
                        f"--workdir={e2e.reference}", f"--log={log}", f"--step={step}",
                        "--recipe_epochs=10", f"--out={out}"],
                       cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
  assert res.returncode == 0, res.stdout + res.stderr
  summary = json.loads(out.read_text())
  (command,) = summary["commands"]
  assert command["exit"] == 0 and command["wall_s"] == 99999.5
  assert 0 < command["compile_and_first_step_s"] <= command["to_first_step_s"]
  assert [e["step"] for e in command["evals"]] == [2, 4, 6]   # every epoch of 2 steps
  assert all(e["seconds"] > 0 for e in command["evals"]) and command["report_s"] > 0
  checks = summary["continuity"]
  assert checks["evaluations_due"] == checks["evaluations_done"] == [2, 4, 6]
  assert checks["every_due_evaluation_done"] and checks["results_complete"]
  assert checks["log_steps_each_once"] and checks["last_logged_step"] == 6
  main = summary["main_job"]   # steps 2-6 timed (step 1 compiles), the first interval left out
  assert main["intervals"] == 4 and main["images_per_s"] > 0
  assert summary["ratio_to_step_alone"] == main["images_per_s"] / 100.0
  recipe = summary["recipe"]
  assert recipe["epochs"] == 10 and recipe["steps_per_epoch"] == 2
  assert math.isclose(recipe["total_s"], sum(recipe[k] for k in (
      "start_to_first_step_s", "steps_s", "evaluations_s", "saves_s", "report_s")))
  assert math.isclose(recipe["steps_s"], 10 * 2 * 16 / main["images_per_s"])
  first, *later = [e["seconds"] for e in command["evals"]]   # the first decodes the test set
  assert math.isclose(recipe["evaluations_s"], first + 9 * statistics.median(later))
  assert 0 <= main["input_wait_median"] <= 1
  assert main["images_per_s_by_command"] == [main["images_per_s"]]


def test_whole_job_recipe_counts_saves_and_bounds_unrepeated_evaluations():
  """Saves once per checkpoint interval; with no second evaluation in any command, the
  later ones are taken as the fastest first one and the figure is flagged an upper bound."""
  commands = [{"evals": [{"seconds": 9.0}], "to_first_step_s": 70.0},
              {"evals": [{"seconds": 4.0}], "report_s": 3.0}]
  speed = {"images_per_s": 64.0, "save_s": [0.5, 0.7, 0.6]}
  r = whole_job_report.extrapolate(20, 10, 64, speed, commands, eval_every=2, save_every=5)
  assert r["steps_s"] == 200.0
  assert r["saves_s"] == 4 * 0.6                       # epochs 5, 10, 15, 20
  assert r["evaluations_s"] == 9.0 + 9 * 4.0 and r["evaluations_upper_bound"]
  assert r["total_s"] == 70.0 + 200.0 + 2.4 + 45.0 + 3.0
  r = whole_job_report.extrapolate(22, 10, 64, speed, commands, eval_every=2, save_every=5)
  assert math.isclose(r["saves_s"], 5 * 0.6)           # ... and the last epoch, 22
  commands[1]["evals"].append({"seconds": 1.0})
  r = whole_job_report.extrapolate(20, 10, 64, speed, commands, eval_every=2, save_every=1)
  assert r["evaluations_s"] == 9.0 + 9 * 1.0 and not r["evaluations_upper_bound"]
  assert math.isclose(r["saves_s"], 20 * 0.6)
