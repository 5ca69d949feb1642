"""The AGW cross-modality baseline (two-stream stems, shared layer1-4, GeM, WRT + CE).

For comparison with its published numbers (SYSU all-search 47.50 / 47.65 / 35.30).
The AGW code's non-local blocks are not included (docs/method.md, "Network").
"""

from vireid_jax import config_defaults


def get_config(arg: str = "sysu"):
  c = config_defaults.base_config()
  c.data.name = arg
  c.model.intra_branches = False
  c.loss.w_intra = 0.0
  c.loss.w_dist = 0.0
  c.loss.triplet = "wrt"
  return c
