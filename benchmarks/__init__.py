"""Benchmarks: each module is one comparison, run as `python -m benchmarks.<name>`."""
