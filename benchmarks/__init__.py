"""Benchmarks: the reference workload, its peers in other engines, and the runner (see README.md)."""
