"""Evaluators: what the training loop and `--config.mode=eval` run on a model's weights.

An evaluator is made once per run: it loads (and so checks) its test set up
front, before any training step, and knows its settings and the summary tag
prefix its numbers go under. `run(variables)` embeds the test images with the
given weights and returns an `Evaluation`: every protocol's metrics, the
headline number that picks the best checkpoint, and optionally a rank-list
picture. Nothing here writes files; the caller decides where results go.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vireid_jax.data import datasets
from vireid_jax.evaluation import features, rank_lists, suites
from vireid_jax.models import vireid

METRICS_IN_SUMMARIES = ("rank1", "rank10", "rank20", "mAP", "mINP")
RANK_LIST_TOP_K = 10
TEST_IMAGES = object()     # make_test_extractor's default image source: the config's test images


def make_embed_fn(model: vireid.ViReIDNet, dtype_name: str = "float32") -> features.EmbedFn:
  """(variables, images float32 NHWC normalised, modality) -> embeddings in float32."""
  dtype = vireid.DTYPES[dtype_name]
  eval_model = model.clone(dtype=dtype)

  def embed(variables, images, modality: int):
    out = eval_model.apply(variables, images.astype(dtype), modality, train=False,
                           method=vireid.ViReIDNet.embed)
    return out.astype(jnp.float32)

  return embed


def make_test_extractor(config: ml_collections.ConfigDict, model, *, mesh=None,
                        batch_size: int | None = None, cache_images: bool = False,
                        image_source=TEST_IMAGES) -> features.Extractor:
  """`extract(paths, modality, variables) -> (N, D)` with the run's evaluation settings.

  Runs on this host's devices (`config.eval`: dtype, batch size, flip). Shared
  by the evaluation and the user tools (rank lists, plots, feature export).
  `image_source`: where pixels come from (default: the test images of
  `config.data`; None: the files at the paths; or prepared images).
  """
  if image_source is TEST_IMAGES:
    image_source = datasets.test_image_source(config.data)
  if mesh is None:
    mesh = jax.sharding.Mesh(jax.local_devices(), ("data",))
  return features.make_extractor(
      make_embed_fn(model, config.eval.dtype), tuple(config.data.image_size),
      int(batch_size or config.eval.batch_size), flip=bool(config.eval.flip), mesh=mesh,
      image_source=image_source, cache_images=cache_images)


def make_run_extractor(config: ml_collections.ConfigDict, model) -> features.Extractor:
  """The extractor of a run's evaluations, caching test images as `eval.cache_images` says."""
  return make_test_extractor(config, model, cache_images=bool(config.eval.cache_images))


@dataclasses.dataclass(frozen=True)
class Evaluation:
  results: dict                      # {protocol: {"rank1": ..., "std": ..., ...}}
  headline: float                    # the suite's headline metric (Rank-1 in %)
  rank_list: np.ndarray | None       # uint8 (H, W, 3) picture, or None


class RetrievalEvaluator:
  """The protocols of one suite on its image sets, with one set of evaluation settings.

  Attributes:
    prefix: summary tag prefix ("eval" during training, "test" for the
      report, "test_rerank" etc. for other evaluation settings, "val" for the
      held-out training identities).
    trials: gallery draws averaged in the results (rows drawn per trial).
    image_source: where the images' pixels come from (default: the test
      images of `config.data`; the training images' source for validation).
  """

  def __init__(self, config: ml_collections.ConfigDict, model, suite, test_set, *,
               trials: int, prefix: str, extract: features.Extractor | None = None,
               image_source=TEST_IMAGES):
    self.config = config
    self.model = model
    self.suite = suite
    self.test_set = test_set
    self.trials = int(trials)
    self.prefix = prefix
    self.image_source = (datasets.test_image_source(config.data) if image_source is TEST_IMAGES
                         else image_source)
    # One extractor for every evaluation of a run (`extract`, shared by the periodic
    # evaluations and the report): compiled once, the test images decoded once.
    self._extract = extract or make_test_extractor(
        config, model, cache_images=bool(config.eval.cache_images),
        image_source=self.image_source)

  def run(self, variables, *, rank_list_queries: int = 0) -> Evaluation:
    """Evaluates `variables` ({"params", "batch_stats"}): host arrays, or device arrays
    replicated over this host's devices."""
    extract = functools.partial(self._extract, weights=variables)
    results = suites.evaluate(self.suite, self.test_set, extract, self.config.eval, self.trials)
    picture = None
    if rank_list_queries > 0:
      ranks = rank_lists.build_rank_list(self.suite, self.test_set, self.config.eval, extract,
                                         num_queries=rank_list_queries, k=RANK_LIST_TOP_K)
      picture = rank_lists.render(ranks, tuple(self.config.data.image_size),
                                  self.image_source)
    return Evaluation(results, suites.headline_value(self.suite, results), picture)

  def scalars(self, evaluation: Evaluation) -> dict[str, float]:
    """{f"{prefix}/{protocol}/{metric}": value} for the summaries."""
    return {f"{self.prefix}/{proto}/{k}": float(r[k])
            for proto, r in evaluation.results.items() for k in METRICS_IN_SUMMARIES if k in r}

  def one_line(self, evaluation: Evaluation) -> str:
    """`all_single R1 36.4 mAP 47.1 | ...`: every protocol's Rank-1 and mAP."""
    return " | ".join(f"{proto} R1 {r['rank1']:.2f} mAP {r['mAP']:.2f}"
                      for proto, r in evaluation.results.items())
