"""Benchmarks: run each as `python -m bench.<name>` (see each module's docstring)."""
