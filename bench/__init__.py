"""Hookway's benchmarks against its peers: ``python -m bench [--quick]`` (see bench/common.py)."""
