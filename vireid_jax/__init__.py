"""vireid_jax: visible-infrared person re-identification in JAX/Flax.

Subpackages mirror the architecture:
  data/        one package per dataset (its readers, protocol, check, synthetic layout,
               TFDS records) and the registry of them; synthetic renderer, input pipeline
  models/      ResNet backbones, the two-modality network, ImageNet weight converter
  losses/      identity, triplet and cross-modality distribution losses
  evaluation/  runs any dataset's protocol exactly: metrics, feature extraction, reports
  training/    train state, optimiser, train step, checkpoints, the training loop
  tools/       user tools (rank lists, embedding plots, feature export)
"""

__version__ = "0.1.0"
