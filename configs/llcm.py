r"""LLCM, the full method (`configs/sysu.py`'s recipe) at LLCM's image size (384 x 144, as DEEN).

python -m vireid_jax.main --config=configs/llcm.py --workdir=runs/llcm \
    --config.data.root=/data/LLCM --config.model.pretrained=/weights/resnet50.npz

The report has three rows: infrared_to_visible, visible_to_infrared and
deen_visible_to_infrared (what DEEN's code and the papers call "VIS to IR";
docs/method.md, "LLCM").
"""

from vireid_jax import config_defaults
from vireid_jax.data import registry


def get_config():
  c = config_defaults.agw_baseline(config_defaults.base_config())
  c.data.name = "llcm"
  c.data.image_size = registry.get("llcm").image_size
  return config_defaults.method_modules(c)
