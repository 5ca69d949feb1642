"""The CPU demo: generates the synthetic dataset into the workdir and trains a small model.

python -m vireid_jax.main --config=configs/synthetic.py --workdir=/tmp/vireid_demo

Also trains this small model on any SYSU-layout folder:
  --config.data.name=sysu --config.data.root=DIR
"""

from vireid_jax import config_defaults


def get_config():
  return config_defaults.synthetic_demo(config_defaults.base_config())
