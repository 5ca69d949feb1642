r"""RegDB, the full method (`configs/sysu.py`'s recipe); one run per trial split (data.trial = 1..10).

for t in $(seq 1 10); do python -m vireid_jax.main --config=configs/regdb.py \
    --workdir=runs/regdb_t$t --config.data.root=/data/RegDB --config.data.trial=$t \
    --config.model.pretrained=/weights/resnet50.npz; done
"""

from vireid_jax import config_defaults


def get_config():
  c = config_defaults.agw_baseline(config_defaults.base_config())
  c.data.name = "regdb"
  c.data.trial = 1
  # RegDB has 2,060 images per modality: 65 steps per epoch at P*K = 32.
  return config_defaults.method_modules(c)
