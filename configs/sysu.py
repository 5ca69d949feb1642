"""SYSU-MM01, the full method (docs/method.md).

python -m vireid_jax.main --config=configs/sysu.py --workdir=runs/sysu \
    --config.data.root=/data/SYSU-MM01 --config.model.pretrained=/weights/resnet50.npz
"""

from vireid_jax import config_defaults


def get_config():
  c = config_defaults.base_config()
  c.data.name = "sysu"
  return c
