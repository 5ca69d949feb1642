"""Datasets: readers for the real on-disk layouts, the synthetic generator, input pipelines.

Nothing here imports TensorFlow at module load except `pipeline` and `tfds_builders`.
"""
