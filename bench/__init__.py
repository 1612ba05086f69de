"""Benchmarks (run by hand; see each module)."""
