"""A PNG sample sheet of a generated dataset: one row per identity, visible then infrared.

The layout says which images go where (`SyntheticLayout.sheet_cells`); this draws them.
"""

from __future__ import annotations

import os

from PIL import Image, ImageDraw

from vireid_jax.data.synthetic.layouts import layout_of


def sample_sheet(root: str, layout: str, path: str, rows: int = 6) -> None:
  """Writes a PNG grid: one row per identity, visible then infrared columns.

  Refuses an existing `path` (FileExistsError) rather than overwrite it.
  """
  refuse_existing(path)
  cells = layout_of(layout).sheet_cells(root, rows)
  first = next(p for _, row in cells for _, p in row if p)
  with Image.open(first) as im:
    cw, ch = im.size
  label_w, head_h, gap = 44, 14, 2
  ncol = len(cells[0][1])
  sheet = Image.new("RGB", (label_w + ncol * (cw + gap), head_h + len(cells) * (ch + gap)),
                    (255, 255, 255))
  draw = ImageDraw.Draw(sheet)
  for j, (name, _) in enumerate(cells[0][1]):
    draw.text((label_w + j * (cw + gap) + 2, 1), name, fill=(0, 0, 0))
  for i, (label, row) in enumerate(cells):
    y = head_h + i * (ch + gap)
    draw.text((2, y + ch // 2 - 5), label, fill=(0, 0, 0))
    for j, (_, p) in enumerate(row):
      x = label_w + j * (cw + gap)
      if p is None:
        draw.rectangle([x, y, x + cw - 1, y + ch - 1], fill=(210, 210, 210))
        draw.text((x + cw // 2 - 8, y + ch // 2 - 5), "n/a", fill=(90, 90, 90))
      else:
        with Image.open(p) as im:
          sheet.paste(im.convert("RGB").resize((cw, ch)), (x, y))
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  # A 256-colour palette keeps the PNG small enough to commit.
  with open(path, "xb") as f:   # "x": never overwrites
    sheet.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        f, format="PNG", optimize=True)


def refuse_existing(path: str) -> None:
  """Raises FileExistsError if `path` exists: the sheet never replaces a file."""
  if os.path.exists(path):
    raise FileExistsError(f"{path!r} exists: delete it first or give another --sample_sheet path.")
