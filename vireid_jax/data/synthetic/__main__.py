"""`python -m vireid_jax.data.synthetic`: see `vireid_jax.data.synthetic.cli`."""

from vireid_jax.data.synthetic import cli

if __name__ == "__main__":
  cli.main()
