"""The exported model's file formats: ONNX (through jax2onnx) and StableHLO (jax.export).

Each format turns the serving function and its weights into the bytes of one
file, and loads such bytes back to run them, so that the exporter checks a
file by running it before writing it. ONNX needs the `export` extra
(jax2onnx, onnx, onnxruntime), imported here only when that format is asked
for; StableHLO needs JAX alone. Why jax2onnx: docs/deploy.md.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Callable

import jax
import numpy as np

from vireid_jax.evaluation import serving
from vireid_jax.tools import cli, lax_replay

FORMATS = ("onnx", "stablehlo")
EXTRA = "pip install -e .[export]"
INPUT_NAMES = ("images", "modality")
OUTPUT_NAMES = ("features",)
# jax.export lowers for every one of these; the file then runs on any of them.
STABLEHLO_PLATFORMS = ("cpu", "cuda", "tpu")
# (uint8 images, modality) -> float32 features, from a file's bytes.
Runner = Callable[[np.ndarray, int], np.ndarray]


def check_format(name: str) -> str:
  """`name` if it is a format whose dependencies are installed; else a UsageError saying why."""
  if name not in FORMATS:
    raise cli.UsageError(f"--format={name!r}: use one of {', '.join(FORMATS)}.")
  if name == "onnx":
    onnx_modules()
  return name


def onnx_modules():
  """(jax2onnx, onnx, onnxruntime), or a UsageError naming the install command."""
  try:
    import jax2onnx  # pylint: disable=g-import-not-at-top
    import onnx  # pylint: disable=g-import-not-at-top
    import onnxruntime  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise cli.UsageError(f"--format=onnx needs the export extra ({e.name} is not installed): "
                         f"{EXTRA}") from e
  return jax2onnx, onnx, onnxruntime


@contextlib.contextmanager
def _quiet(*names: str):
  """Silences the converter's per-node warnings (about values it leaves untyped)."""
  loggers = [logging.getLogger(n) for n in names]
  levels = [lg.level for lg in loggers]
  for lg in loggers:
    lg.setLevel(logging.ERROR)
  try:
    yield
  finally:
    for lg, level in zip(loggers, levels):
      lg.setLevel(level)


def onnx_bytes(serve: serving.ServingFn, weights: Any, metadata: dict[str, str],
               image_size) -> bytes:
  """The ONNX file: the serving function's lax primitives converted by jax2onnx."""
  jax2onnx, onnx, _ = onnx_modules()
  specs = serving.input_specs(image_size)
  fn = lax_replay.replay(serve, weights, *specs, slice_max_pools=True)
  with _quiet("onnx_ir", "jax2onnx"):
    model = jax2onnx.to_onnx(fn, list(specs), model_name="vireid_jax_features",
                             input_names=list(INPUT_NAMES), output_names=list(OUTPUT_NAMES))
  onnx.helper.set_model_props(model, metadata)
  return model.SerializeToString()


def run_onnx(data: bytes) -> Runner:
  """Runs ONNX bytes with onnxruntime on the CPU."""
  _, _, ort = onnx_modules()
  options = ort.SessionOptions()
  options.log_severity_level = 3
  try:
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
  except ort.capi.onnxruntime_pybind11_state.NotImplemented as e:   # e.g. bfloat16 convolutions
    raise cli.UsageError(f"onnxruntime cannot run this graph on the CPU ({str(e).strip()}), so "
                         "it cannot be checked: export it in float32 (the default --dtype) or "
                         "as StableHLO.") from e
  return lambda images, modality: session.run(
      None, {INPUT_NAMES[0]: images, INPUT_NAMES[1]: np.asarray(modality, np.int32)})[0]


def stablehlo_bytes(serve: serving.ServingFn, weights: Any, metadata: dict[str, str],
                    image_size) -> bytes:
  """The StableHLO file: `jax.export` of the serving function (replayed: only the weights
  the features read), serialized."""
  del metadata           # the serialized Exported has no place for it
  specs = serving.input_specs(image_size)
  fn = lax_replay.replay(serve, jax.tree.map(np.asarray, weights), *specs)
  exported = jax.export.export(jax.jit(fn), platforms=STABLEHLO_PLATFORMS)(*specs)
  return bytes(exported.serialize())


def run_stablehlo(data: bytes) -> Runner:
  """Runs StableHLO bytes with `jax.export.deserialize` (no vireid_jax code involved)."""
  exported = jax.export.deserialize(bytearray(data))
  call = jax.jit(exported.call)   # compiled once per batch size, not at every call
  return lambda images, modality: np.asarray(call(images, np.int32(modality)))


WRITERS = {"onnx": onnx_bytes, "stablehlo": stablehlo_bytes}
RUNNERS = {"onnx": run_onnx, "stablehlo": run_stablehlo}
