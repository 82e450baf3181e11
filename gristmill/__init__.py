"""Gristmill: ingest, transform, check and serve data from one project folder."""

__version__ = "0.1.0"

__all__ = ["__version__"]
