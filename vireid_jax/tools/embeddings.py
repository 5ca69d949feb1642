"""Pictures of the embedding space: 2-D projections and per-dimension modality statistics.

The method's claim is that visible and infrared features of one person end up
together and that the two modalities' feature distributions align. Here the
test embeddings are projected to 2-D (PCA; t-SNE when scikit-learn is
installed), coloured by identity with one marker per modality, and the
per-dimension means and variances of the two modalities are compared as
histograms, with the symmetric KL divergence of the two diagonal Gaussians
(the training loss's measure, over the whole test set) in the title.

Pure functions of arrays; matplotlib (Agg, no display) only in `plot_figure`.
"""

from __future__ import annotations

import dataclasses
import textwrap
from typing import Sequence

import numpy as np

from vireid_jax.data.records import INFRARED, VISIBLE
from vireid_jax.losses import distribution

MARKERS = {VISIBLE: "o", INFRARED: "^"}
MODALITY_LABELS = {VISIBLE: "visible", INFRARED: "infrared"}
MODALITY_COLOURS = {VISIBLE: "tab:orange", INFRARED: "tab:purple"}
VAR_FLOOR = 1e-6
TITLE = "Test-set embeddings: are visible and infrared images of one person together?"
LINE_INCHES = 0.25           # one line of the header (title or legend) above the panels


@dataclasses.dataclass(frozen=True)
class Embeddings:
  """Test embeddings of one run."""
  label: str                 # shown in the titles, e.g. "full model"
  features: np.ndarray       # (N, D) float32
  pids: np.ndarray           # (N,) person ids
  modalities: np.ndarray     # (N,) VISIBLE or INFRARED

  def __post_init__(self):
    n = len(self.features)
    if np.ndim(self.features) != 2 or len(self.pids) != n or len(self.modalities) != n:
      raise ValueError(f"{self.label}: features {np.shape(self.features)}, pids "
                       f"{np.shape(self.pids)} and modalities {np.shape(self.modalities)} "
                       "must have one row per image.")


def pca_2d(x: np.ndarray) -> np.ndarray:
  """(N, D) -> (N, 2): coordinates on the two main principal axes (signs fixed).

  Each axis is oriented so that its largest-magnitude loading is positive, so
  the picture does not flip between runs of the SVD.
  """
  x = np.asarray(x, np.float64)
  if x.ndim != 2 or x.shape[0] < 2:
    raise ValueError(f"PCA needs at least 2 rows of a (N, D) matrix, got shape {x.shape}.")
  centred = x - x.mean(axis=0)
  _, _, vt = np.linalg.svd(centred, full_matrices=False)
  axes = vt[:2]
  if axes.shape[0] < 2:                         # D == 1: pad a zero axis
    axes = np.concatenate([axes, np.zeros((2 - axes.shape[0], x.shape[1]))])
  signs = np.sign(axes[np.arange(axes.shape[0]), np.argmax(np.abs(axes), axis=1)])
  axes = axes * np.where(signs == 0, 1.0, signs)[:, None]
  return centred @ axes.T


def tsne_available() -> bool:
  try:
    import sklearn.manifold  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    return False
  return True


def tsne_2d(x: np.ndarray, seed: int = 0) -> np.ndarray:
  """(N, D) -> (N, 2) t-SNE (scikit-learn, an optional extra), cosine metric."""
  from sklearn.manifold import TSNE  # pylint: disable=g-import-not-at-top
  x = np.asarray(x, np.float64)
  perplexity = float(min(30.0, max(2.0, (x.shape[0] - 1) / 3.0)))
  return TSNE(n_components=2, perplexity=perplexity, init="pca", metric="cosine",
              random_state=seed).fit_transform(x)


@dataclasses.dataclass(frozen=True)
class ModalityStats:
  """Per-dimension mean and (biased) variance of each modality's features."""
  mean_visible: np.ndarray
  mean_infrared: np.ndarray
  var_visible: np.ndarray
  var_infrared: np.ndarray

  @property
  def sym_kl(self) -> float:
    """Mean over dimensions of the symmetric KL of the two 1-D Gaussians (floored variances)."""
    return float(np.mean(distribution.gaussian_sym_kl(
        self.mean_visible, np.maximum(self.var_visible, VAR_FLOOR),
        self.mean_infrared, np.maximum(self.var_infrared, VAR_FLOOR))))


def modality_stats(e: Embeddings) -> ModalityStats:
  f = np.asarray(e.features, np.float64)
  vis, ir = f[e.modalities == VISIBLE], f[e.modalities == INFRARED]
  if len(vis) == 0 or len(ir) == 0:
    raise ValueError(f"{e.label}: need images of both modalities, got {len(vis)} visible and "
                     f"{len(ir)} infrared.")
  return ModalityStats(vis.mean(0), ir.mean(0), vis.var(0), ir.var(0))


def shared_identities(runs: Sequence[Embeddings], count: int) -> np.ndarray:
  """Up to `count` ids that every run has in both modalities, spread evenly over the sorted ids.

  One choice for all runs, so that a colour is the same person in every column.
  """
  both = None
  for r in runs:
    ids = np.intersect1d(r.pids[r.modalities == VISIBLE], r.pids[r.modalities == INFRARED])
    both = ids if both is None else np.intersect1d(both, ids)
  if count >= len(both):
    return both
  return both[np.unique(np.round(np.linspace(0, len(both) - 1, count)).astype(np.int64))]


# Text sizes (points) of the embedding figure.
TITLE_SIZE = 12
LABEL_SIZE = 10
TICK_SIZE = 9
LEGEND_SIZE = 9


def plot_figure(runs: Sequence[Embeddings], num_ids: int = 12, tsne: bool = False,
                panel_size: tuple[float, float] = (4.6, 3.6), dpi: int = 100):
  """One column per run: PCA (and t-SNE) of `num_ids` identities, then mean/variance histograms.

  Meant to be read without any other text: a title and a legend say what
  colours and markers are, every axis is labelled, and each row shares its
  axes across the columns, so two runs compare at a glance. Returns a
  matplotlib Figure of (columns * panel width) by (rows * panel height + a
  header of `LINE_INCHES` per line of title and legend, + 0.2) inches at `dpi`.
  """
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  from matplotlib.lines import Line2D  # pylint: disable=g-import-not-at-top
  from matplotlib.patches import Patch  # pylint: disable=g-import-not-at-top
  from matplotlib.ticker import MaxNLocator  # pylint: disable=g-import-not-at-top

  if not runs:
    raise ValueError("plot_figure needs at least one run.")
  projections = [("PCA", pca_2d, "principal component")]
  if tsne:
    projections.append(("t-SNE", tsne_2d, "t-SNE axis"))
  rows, cols = len(projections) + 2, len(runs)
  width = panel_size[0] * cols
  # The header: the title, wrapped to the figure's width, then the legend (one line of
  # entries beside each other, or one entry per line in a single column).
  heading = textwrap.fill(TITLE, width=int(width * 72 / ((TITLE_SIZE + 1) * 0.6)))
  title_lines, legend_lines = heading.count("\n") + 1, (1 if cols > 1 else 3)
  header = LINE_INCHES * (title_lines + legend_lines) + 0.2
  total = panel_size[1] * rows + header
  fig, axes = plt.subplots(rows, cols, squeeze=False, dpi=dpi, sharex="row", sharey="row",
                           figsize=(width, total))
  ids = shared_identities(runs, num_ids)
  stats = [modality_stats(run) for run in runs]
  # One set of bins per histogram row, over every run: bars of equal width compare.
  bins = {key: np.histogram_bin_edges(np.concatenate(
              [getattr(st, f"{key}_{MODALITY_LABELS[m]}") for st in stats for m in (VISIBLE, INFRARED)]),
              bins=40) for key in ("mean", "var")}
  cmap = plt.get_cmap("tab20")
  colour_of = {pid: cmap(i % 20) for i, pid in enumerate(ids)}

  for col, run in enumerate(runs):
    shown = np.isin(run.pids, ids)
    for row, (name, project, axis_name) in enumerate(projections):
      ax = axes[row, col]
      if shown.sum() >= 3:
        xy = project(run.features[shown])
        for m in (VISIBLE, INFRARED):
          sel = run.modalities[shown] == m
          ax.scatter(xy[sel, 0], xy[sel, 1], s=26, marker=MARKERS[m], linewidths=0.4,
                     c=[colour_of[p] for p in run.pids[shown][sel]], edgecolors="k")
      ax.set_title(f"{run.label}: {name}" if row else f"{run.label}\n{name}",
                   fontsize=TITLE_SIZE if not row else LABEL_SIZE + 1)
      ax.set_xlabel(f"{axis_name} 1", fontsize=LABEL_SIZE)
      if col == 0:
        ax.set_ylabel(f"{axis_name} 2", fontsize=LABEL_SIZE)
      ax.tick_params(labelsize=TICK_SIZE)
      if name == "t-SNE":             # t-SNE coordinates have no unit worth reading
        ax.set_xticks([])
        ax.set_yticks([])

    st = stats[col]
    for row, (what, key) in enumerate((("mean", "mean"), ("variance", "var")),
                                      start=len(projections)):
      ax = axes[row, col]
      for m in (VISIBLE, INFRARED):
        ax.hist(getattr(st, f"{key}_{MODALITY_LABELS[m]}"), bins=bins[key], alpha=0.55,
                color=MODALITY_COLOURS[m], label=MODALITY_LABELS[m])
      title = f"{run.label}: per-dimension {what}"
      if what == "mean":
        title += f"\nsymmetric KL(visible, infrared) = {st.sym_kl:.3g}"
      ax.set_title(title, fontsize=LABEL_SIZE + 1)
      ax.set_xlabel(f"{what} of a feature dimension over the test images", fontsize=LABEL_SIZE)
      if col == 0:
        ax.set_ylabel("number of dimensions", fontsize=LABEL_SIZE)
      ax.tick_params(labelsize=TICK_SIZE)
      ax.xaxis.get_major_formatter().set_useOffset(False)
      ax.xaxis.set_major_locator(MaxNLocator(5))
      ax.legend(fontsize=LEGEND_SIZE, title="modality", title_fontsize=LEGEND_SIZE)

  # Laid out first, so that the header (placed by hand) does not count twice.
  fig.tight_layout(rect=(0, 0, 1, 1.0 - header / total))
  fig.suptitle(heading, fontsize=TITLE_SIZE + 1, y=1.0 - 0.05 / total, va="top")
  handles = [Line2D([], [], marker=MARKERS[m], linestyle="", color="lightgray",
                    markeredgecolor="k", markersize=8, label=f"{MODALITY_LABELS[m]} image")
             for m in (VISIBLE, INFRARED)]
  same = ", the same people in every column" if cols > 1 else ""
  handles.append(Patch(facecolor="none", edgecolor="none",
                       label=f"colour: one person ({len(ids)} test identities{same})"))
  fig.legend(handles=handles, loc="upper center", ncol=len(handles) if cols > 1 else 1,
             fontsize=LEGEND_SIZE + 1, frameon=False, handletextpad=0.3, columnspacing=1.2,
             labelspacing=0.3, bbox_to_anchor=(0.5, 1.0 - (0.1 + LINE_INCHES * title_lines) / total))
  return fig
