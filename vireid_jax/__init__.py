"""vireid_jax: visible-infrared person re-identification in JAX/Flax.

Subpackages mirror the architecture:
  data/        on-disk readers (SYSU-MM01, RegDB), synthetic generator, input pipeline
  models/      ResNet backbones, the two-modality network, ImageNet weight converter
  losses/      identity, triplet and cross-modality distribution losses
  evaluation/  exact SYSU-MM01 / RegDB protocols, metrics, feature extraction
  training/    train state, optimiser, train step, checkpoints, the training loop
  tools/       user tools (rank lists, embedding plots, feature export)
"""

__version__ = "0.1.0"
