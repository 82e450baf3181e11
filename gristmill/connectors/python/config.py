"""Options of a ``kind: python`` source and of each of its tables."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from gristmill.connectors.base import Options

DEFAULT_BATCH_SIZE = 10_000


class PythonSourceOptions(Options):
    module: str
    """A Python file in the project (``pipelines/weather.py``) or a dotted module name."""
    batch_size: int = Field(default=DEFAULT_BATCH_SIZE, gt=0)
    """How many yielded dicts make one Arrow chunk."""


class PythonTableOptions(Options):
    function: str | None = None
    """The ``@source`` function to call; defaults to the key under ``tables``."""
    params: dict[str, Any] = {}
    """Keyword arguments for the function."""
    batch_size: int | None = Field(default=None, gt=0)
    """Overrides the source's ``batch_size`` for this table."""
