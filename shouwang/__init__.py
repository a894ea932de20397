"""Shouwang (守望): shared core — settings, event schemas, the local broker and the CLI."""

__version__ = "0.1.0"
