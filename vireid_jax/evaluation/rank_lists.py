"""Rank lists: infrared queries and their closest visible gallery images, as one picture.

Pure parts (`top_k`, `draw_rank_grid`, `grid_size`) take arrays and return
arrays, so they are tested on hand-made cases without a model. `build_rank_list`
glues them to a dataset's test protocol (the queries and gallery of one
infrared-to-visible row's trial, from its suite) and an extractor; the evaluators put the
picture into the run's summaries, `tools/visualize_ranks` into a PNG file.

Drawn with PIL and its built-in bitmap font, so the size of the picture is a
simple formula of the image size and the grid shape.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vireid_jax.data import images as images_lib
from vireid_jax.data.records import INFRARED, VISIBLE
from vireid_jax.evaluation import protocols

# Frame colours (RGB) and layout, in pixels.
CORRECT = (0, 200, 0)
WRONG = (230, 0, 0)
QUERY = (40, 90, 255)
BACKGROUND = (255, 255, 255)
TEXT = (0, 0, 0)
BORDER = 3          # frame width around every image
GAP = 4             # space between cells and around the grid
QUERY_GAP = 12      # extra space between the query column and the gallery
LINE_HEIGHT = 11    # the PIL bitmap font
CAPTION = 2 * LINE_HEIGHT + 2   # two caption lines under every cell
# The legend above the grid: a framed swatch per frame colour, then a note on the captions.
LEGEND = ((QUERY, "infrared query"), (CORRECT, "same person"), (WRONG, "another person"),
          (None, "under each: rank, feature distance"))
SWATCH = (16, LINE_HEIGHT)      # (width, height) of a legend swatch
SWATCH_GAP = 4                  # between a swatch and its text
LEGEND_SPACING = 12             # between legend entries on one line


def top_k(distances: np.ndarray, k: int, excluded: np.ndarray | None = None
          ) -> tuple[np.ndarray, np.ndarray]:
  """The k closest gallery columns per query row, closest first (ties: gallery order).

  Args:
    distances: (Q, G), smaller is closer.
    k: list length; at most the number of gallery images left after `excluded`.
    excluded: optional (Q, G) bool, True where a gallery image may not be
      returned for that query (the dataset's rule, `rule.mask`).

  Returns:
    (indices int64 (Q, k), their distances (Q, k)).
  """
  d = np.asarray(distances, np.float64)
  if d.ndim != 2:
    raise ValueError(f"distances must be (queries, gallery), got shape {d.shape}.")
  if excluded is not None:
    excluded = np.asarray(excluded, bool)
    if excluded.shape != d.shape:
      raise ValueError(f"excluded has shape {excluded.shape}; expected {d.shape}.")
    d = np.where(excluded, np.inf, d)
    allowed = int((~excluded).sum(axis=1).min()) if d.shape[0] else d.shape[1]
  else:
    allowed = d.shape[1]
  if not 1 <= int(k) <= allowed:
    raise ValueError(f"k={k}: the gallery has {allowed} images available to every query; "
                     f"use 1 <= k <= {allowed}.")
  order = np.argsort(d, axis=1, kind="stable")[:, :int(k)]
  return order, np.take_along_axis(d, order, axis=1)


def _font():
  return ImageFont.load_default_imagefont()


def _legend_width(colour, text: str) -> int:
  return (SWATCH[0] + SWATCH_GAP if colour else 0) + int(_font().getlength(text))


def legend_lines(width: int) -> list[list[tuple]]:
  """LEGEND's entries on lines of at most `width` pixels (one entry per line at least)."""
  lines, used = [[]], 0
  for colour, text in LEGEND:
    w = _legend_width(colour, text)
    if lines[-1] and used + LEGEND_SPACING + w > width:
      lines.append([])
      used = 0
    used += (LEGEND_SPACING if lines[-1] else 0) + w
    lines[-1].append((colour, text))
  return lines


def _cells_width(k: int, width: int) -> int:
  return GAP + width + 2 * BORDER + QUERY_GAP + k * (width + 2 * BORDER + GAP)


def _legend_height(k: int, width: int) -> int:
  return len(legend_lines(_cells_width(k, width) - 2 * GAP)) * (LINE_HEIGHT + 2) + GAP


def grid_size(num_queries: int, k: int, height: int, width: int) -> tuple[int, int]:
  """(height, width) in pixels of `draw_rank_grid`'s picture: legend, then the rows.

  As wide as the cells, or as the widest legend entry when the cells are narrower.
  """
  row_h = height + 2 * BORDER + CAPTION
  widest = max(_legend_width(c, t) for c, t in LEGEND) + 2 * GAP
  return (GAP + _legend_height(k, width) + num_queries * (row_h + GAP),
          max(_cells_width(k, width), widest))


def cell_origin(row: int, col: int, height: int, width: int, k: int) -> tuple[int, int]:
  """(y, x) of the outer top-left frame pixel of a cell; col 0 is the query, 1..k the ranks.

  `k` (the gallery columns) sets the picture's width, hence the legend's height.
  """
  cell_w, row_h = width + 2 * BORDER, height + 2 * BORDER + CAPTION
  x = GAP if col == 0 else GAP + cell_w + QUERY_GAP + (col - 1) * (cell_w + GAP)
  return GAP + _legend_height(k, width) + row * (row_h + GAP), x


def draw_rank_grid(queries: np.ndarray, gallery: np.ndarray, distances: np.ndarray,
                   matches: np.ndarray, query_labels: Sequence[str] | None = None
                   ) -> np.ndarray:
  """A legend, then one row per query: the query (blue frame) then its ranked gallery images.

  Args:
    queries: uint8 (Q, H, W, 3).
    gallery: uint8 (Q, k, H, W, 3), each query's gallery images in rank order.
    distances: (Q, k) the distance of each shown gallery image, printed under it.
    matches: (Q, k) bool, True frames green (same identity), False red.
    query_labels: optional caption of each query (e.g. "id 17"), under "query".

  Returns:
    uint8 (grid_size(Q, k, H, W) + (3,)).
  """
  queries, gallery = np.asarray(queries), np.asarray(gallery)
  if queries.ndim != 4 or queries.shape[-1] != 3 or queries.dtype != np.uint8:
    raise ValueError(f"queries must be uint8 (Q, H, W, 3), got {queries.dtype} {queries.shape}.")
  num_q, height, width, _ = queries.shape
  if gallery.ndim != 5 or gallery.shape[0] != num_q or gallery.shape[2:] != queries.shape[1:]:
    raise ValueError(f"gallery must be (Q, k, H, W, 3) = ({num_q}, k, {height}, {width}, 3), "
                     f"got {gallery.shape}.")
  k = gallery.shape[1]
  distances, matches = np.asarray(distances), np.asarray(matches, bool)
  if distances.shape != (num_q, k) or matches.shape != (num_q, k):
    raise ValueError(f"distances {distances.shape} and matches {matches.shape} must be "
                     f"({num_q}, {k}).")
  canvas = Image.new("RGB", grid_size(num_q, k, height, width)[::-1], BACKGROUND)
  draw = ImageDraw.Draw(canvas)
  font = _font()

  y = GAP
  for line in legend_lines(_cells_width(k, width) - 2 * GAP):
    x = GAP
    for colour, text in line:
      if colour:
        draw.rectangle([x, y, x + SWATCH[0] - 1, y + SWATCH[1] - 1], outline=colour, width=BORDER)
        x += SWATCH[0] + SWATCH_GAP
      draw.text((x, y), text, fill=TEXT, font=font)
      x += int(font.getlength(text)) + LEGEND_SPACING
    y += LINE_HEIGHT + 2

  def cell(row, col, image, colour, lines):
    y, x = cell_origin(row, col, height, width, k)
    draw.rectangle([x, y, x + width + 2 * BORDER - 1, y + height + 2 * BORDER - 1], fill=colour)
    canvas.paste(Image.fromarray(image), (x + BORDER, y + BORDER))
    for i, line in enumerate(lines):
      draw.text((x, y + height + 2 * BORDER + 1 + i * LINE_HEIGHT), line, fill=TEXT, font=font)

  for q in range(num_q):
    label = query_labels[q] if query_labels is not None else ""
    cell(q, 0, queries[q], QUERY, ["query", label])
    for r in range(k):
      cell(q, r + 1, gallery[q, r], CORRECT if matches[q, r] else WRONG,
           [f"#{r + 1}", f"{float(distances[q, r]):.2f}"])
  return np.asarray(canvas, np.uint8)


# ---------------------------------------------------------------- on a test protocol

@dataclasses.dataclass(frozen=True)
class RankList:
  """What a rank-list picture shows, as data (paths, ids and distances)."""
  query_paths: tuple[str, ...]
  query_pids: np.ndarray       # (Q,)
  gallery_paths: tuple[tuple[str, ...], ...]   # (Q, k)
  gallery_pids: np.ndarray     # (Q, k)
  distances: np.ndarray        # (Q, k) Euclidean distance of L2-normalised features
  matches: np.ndarray          # (Q, k) bool


def to_json(ranks: RankList) -> list[dict]:
  """The rank lists as JSON-ready rows, one per query."""
  return [{"query": q, "query_pid": int(ranks.query_pids[i]),
           "gallery": [{"path": g, "pid": int(ranks.gallery_pids[i, r]),
                        "distance": float(ranks.distances[i, r]),
                        "match": bool(ranks.matches[i, r])}
                       for r, g in enumerate(ranks.gallery_paths[i])]}
          for i, q in enumerate(ranks.query_paths)]


def evenly_spaced(n: int, count: int) -> np.ndarray:
  """`count` indices spread evenly over range(n) (all of them when count >= n)."""
  if count <= 0 or n <= 0:
    return np.zeros((0,), np.int64)
  if count >= n:
    return np.arange(n)
  return np.unique(np.round(np.linspace(0, n - 1, count)).astype(np.int64))


def rank_queries(extract: Callable, queries, gallery, query_index: Sequence[int], k: int,
                 rule=None) -> RankList:
  """Embeds the chosen queries and the gallery, ranks, and keeps the top k per query.

  `queries` and `gallery` are `protocol.ModalityImages`: infrared and visible.
  `rule` hides gallery images from queries as the evaluation does (`rule.mask`).
  `k` is cut to the gallery size (after the rule) when the gallery is smaller.
  """
  q_paths, q_pids, q_cams = queries.paths, queries.pids, queries.cameras
  g_paths, g_pids, g_cams = gallery.paths, gallery.pids, gallery.cameras
  query_index = np.asarray(query_index, np.int64)
  if query_index.size == 0:
    raise ValueError("No queries to show: ask for at least one.")
  chosen = [q_paths[i] for i in query_index]
  q_feat = np.asarray(extract(chosen, INFRARED), np.float32)
  g_feat = np.asarray(extract(list(g_paths), VISIBLE), np.float32)
  # Ranked as the evaluation ranks (negative cosine similarity); shown as the
  # Euclidean distance of the unit vectors, which orders them the same way.
  dist = -(q_feat @ g_feat.T)
  excluded = (None if rule is None
              else rule.mask(q_pids[query_index], q_cams[query_index], g_pids, g_cams))
  available = dist.shape[1] if excluded is None else int((~excluded).sum(axis=1).min())
  order, d = top_k(dist, min(int(k), available), excluded)   # small galleries: shorter lists
  return RankList(
      query_paths=tuple(chosen), query_pids=q_pids[query_index],
      gallery_paths=tuple(tuple(g_paths[j] for j in row) for row in order),
      gallery_pids=g_pids[order], distances=np.sqrt(np.maximum(0.0, 2.0 + 2.0 * d)),
      matches=g_pids[order] == q_pids[query_index][:, None])


def render(ranks: RankList, size: tuple[int, int], image_source=None) -> np.ndarray:
  """Loads the images of `ranks` at size (height, width) and draws the grid.

  `image_source`: None reads the files at the paths; an `EncodedImages`
  (`datasets.test_image_source`, for data.source=tfds) gives its images of them.
  """
  def load(paths):
    if image_source is None:
      return images_lib.load_images(list(paths), size)
    return np.stack([image_source.load(p, size) for p in paths])

  queries = load(ranks.query_paths)
  gallery = np.stack([load(row) for row in ranks.gallery_paths])
  return draw_rank_grid(queries, gallery, ranks.distances, ranks.matches,
                        query_labels=[f"id {int(p)}" for p in ranks.query_pids])


def rank_list_rows(suite) -> tuple[str, ...]:
  """The suite's rows a rank list can show: infrared queries against a visible gallery."""
  return tuple(r.name for r in suite.rows if (r.query, r.gallery) == (INFRARED, VISIBLE))


def build_rank_list(suite, test_set, eval_cfg, extract: Callable, *, num_queries: int, k: int,
                    row: str | None = None, trial: int = 0) -> RankList:
  """The rank lists of `num_queries` queries spread evenly over the test queries.

  `suite` and `test_set` as `evaluation.suites.load` returns them. Shows the
  queries and gallery of `row` (default: the suite's `rank_list_row`) in
  `trial`, as the evaluation draws them, with its rule.
  """
  row = row or suite.rank_list_row
  if row not in rank_list_rows(suite):
    raise ValueError(f"{row!r} is not a row with infrared queries and a visible gallery; "
                     f"{suite.name} has {', '.join(rank_list_rows(suite))}.")
  queries, gallery = protocols.images_of(suite, test_set, row, trial, eval_cfg.gallery_rule,
                                         eval_cfg.rand_perm_cam or None)
  index = evenly_spaced(len(queries.paths), int(num_queries))
  return rank_queries(extract, queries, gallery, index, k, rule=suite.row(row).rule)
