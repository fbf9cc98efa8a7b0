"""Hookway: a self-hosted webhook gateway on async Django."""

__version__ = "0.1.0"
