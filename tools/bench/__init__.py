"""Benchmarks (``make bench``): measured on this machine, written to ``docs/benchmarks.md``."""
