"""Gristmill: ingest, transform, check and serve data from one project folder."""

from gristmill.models import model

__version__ = "0.1.0"

__all__ = ["__version__", "model"]
