"""See the package docstring of vireid_jax."""
