r"""CAJ (Channel Augmented Joint Learning, ICCV 2021), computed as its public code computes it.

Reproduces `python train_ext.py --dataset sysu --lr 0.1 --method adp --augc 1
--rande 0.5 --alpha 1 --square 1 --gamma 1` (ICCV21_CAJ/ in
mangye16/Cross-Modal-Re-ID-baseline), tested like its `testa.py` (flip
averaging); its README reports SYSU-MM01 all-search R1 / mAP / mINP
69.88 / 66.89 / 53.61 and RegDB visible->thermal 85.03 / 79.14 / 65.33.
AGW's network and optimiser, plus: each step holds a second, channel-exchanged
view of every visible image (3 views: visible, exchanged visible, infrared);
channel-level random erasing (p = 0.5) of every image; CAJ's channel
adaptation / grayscale of infrared images; the squared adaptive triplet
(`loss.triplet=adp`); 100 epochs (`config_defaults.caj_baseline`).

  python -m vireid_jax.main --config=configs/caj_baseline.py --workdir=runs/caj_sysu \
      --config.data.root=/data/SYSU-MM01 --config.model.pretrained=/weights/resnet50.npz

RegDB (one run per trial split t = 1..10):
  python -m vireid_jax.main --config=configs/caj_baseline.py:regdb --workdir=runs/caj_regdb_t1 \
      --config.data.root=/data/RegDB --config.data.trial=1 \
      --config.model.pretrained=/weights/resnet50.npz

LLCM: `--config=configs/caj_baseline.py:llcm` trains the same recipe at LLCM's image size
(384 x 144). Its public code does not read LLCM; the LLCM numbers published for
CAJ come from the LLCM authors' own runs (docs/method.md, "Reference numbers").
"""

from vireid_jax import config_defaults
from vireid_jax.data import registry


def get_config(arg: str = "sysu"):
  c = config_defaults.caj_baseline(config_defaults.base_config())
  c.data.name = arg
  c.data.image_size = registry.get(arg).image_size    # LLCM: 384 x 144; the others 288 x 144
  return c
