"""Ablation rows of the method, as configs: --config=configs/ablation.py:ROW[,DATASET].

ROW: baseline (two-stream, shared head only: exactly configs/agw_baseline.py),
intra (+ intra-modality branches), dist (+ distribution loss, no branches),
full (both: configs/sysu.py). DATASET: sysu (default), regdb, llcm or synthetic
(the small CPU model of configs/synthetic.py).
"""

from vireid_jax import config_defaults
from vireid_jax.data import registry

ROWS = {
    "baseline": dict(intra=False, dist=False),
    "intra": dict(intra=True, dist=False),
    "dist": dict(intra=False, dist=True),
    "full": dict(intra=True, dist=True),
}


def get_config(arg: str = "full"):
  row, _, dataset = arg.partition(",")
  if row not in ROWS:
    raise ValueError(f"Unknown ablation row {row!r}; use one of {sorted(ROWS)}.")
  if dataset == "synthetic":
    c = config_defaults.synthetic_demo(config_defaults.base_config())
  else:
    c = config_defaults.agw_baseline(config_defaults.base_config())
    c.data.name = dataset or "sysu"
    c.data.image_size = registry.get(c.data.name).image_size
  return config_defaults.method_modules(c, **ROWS[row])
