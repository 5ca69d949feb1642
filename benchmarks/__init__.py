"""Speed and cost benchmarks: run from the repository root as `python -m benchmarks.NAME`."""
