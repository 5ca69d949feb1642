r"""The AGW cross-modality baseline, computed as its public code computes it.

Reproduces `python train.py --dataset sysu --lr 0.1 --method agw` of
mangye16/Cross-Modal-Re-ID-baseline, whose README reports SYSU-MM01
all-search R1 / mAP / mINP 47.50 / 47.65 / 35.30 and RegDB visible->thermal
70.05 / 66.37 / 50.19: two-stream stems, shared ResNet-50 (layer1-4) with
AGW's non-local blocks, GeM, BNNeck, cross-entropy + weighted regularised
triplet; pad 10 / random crop / flip only; SGD with AGW's two learning-rate
groups and schedule, 81 epochs; ImageNet initialisation
(`config_defaults.agw_baseline` lists every setting).

  python -m vireid_jax.main --config=configs/agw_baseline.py --workdir=runs/agw_sysu \
      --config.data.root=/data/SYSU-MM01 --config.model.pretrained=/weights/resnet50.npz

RegDB (one run per trial split t = 1..10):
  python -m vireid_jax.main --config=configs/agw_baseline.py:regdb --workdir=runs/agw_regdb_t1 \
      --config.data.root=/data/RegDB --config.data.trial=1 \
      --config.model.pretrained=/weights/resnet50.npz

bfloat16 compute by default (fast); `--config.model.dtype=float32
--config.eval.dtype=float32` computes step for step what the reference
computes (docs/method.md, "Parity with the reference code").

LLCM: `--config=configs/agw_baseline.py:llcm` trains the same recipe at LLCM's image size
(384 x 144). Its public code does not read LLCM; the LLCM numbers published for
AGW come from the LLCM authors' own runs (docs/method.md, "Reference numbers").
"""

from vireid_jax import config_defaults
from vireid_jax.data import registry


def get_config(arg: str = "sysu"):
  c = config_defaults.agw_baseline(config_defaults.base_config())
  c.data.name = arg
  c.data.image_size = registry.get(arg).image_size    # LLCM: 384 x 144; the others 288 x 144
  return c
