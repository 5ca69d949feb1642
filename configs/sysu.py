r"""SYSU-MM01, the full method (docs/method.md): the AGW baseline's network and recipe plus the paper's modules.

python -m vireid_jax.main --config=configs/sysu.py --workdir=runs/sysu \
    --config.data.root=/data/SYSU-MM01 --config.model.pretrained=/weights/resnet50.npz

Everything but the intra-modality branches and the distribution consistency
loss is `configs/agw_baseline.py` (non-local blocks, augmentation, optimiser,
schedule), so the two differ only by the paper's modules. CAJ's augmentations
are a flag away: --config.data.random_erasing=0.5 --config.data.channel_augment=0.5
--config.data.channel_exchange_view=True.
"""

from vireid_jax import config_defaults


def get_config():
  c = config_defaults.agw_baseline(config_defaults.base_config())
  c.data.name = "sysu"
  return config_defaults.method_modules(c)
