"""Tooling around the package, not part of it: benchmarks and stock-Spleeter runners (run from the repository root)."""
