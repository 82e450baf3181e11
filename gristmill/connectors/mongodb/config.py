"""Options of a ``kind: mongodb`` source and of each of its tables."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from gristmill.connectors.base import Options

DEFAULT_BATCH_SIZE = 10_000


class MongoSourceOptions(Options):
    connection: str
    """A ``mongodb://`` or ``mongodb+srv://`` URI, best as ``${env:NAME}`` so it stays out of the file."""
    database: str | None = None
    """Defaults to the database in the URI's path."""
    batch_size: int = Field(default=DEFAULT_BATCH_SIZE, gt=0)
    """Documents per server round trip and per Arrow batch."""


class MongoTableOptions(Options):
    collection: str | None = None
    """Defaults to the key under ``tables``."""
    filter: dict[str, Any] = {}
    """A query document; extended JSON such as ``{$oid: …}`` or ``{$date: …}`` is understood."""
    projection: list[str] | dict[str, Any] | None = None
    """A list lands only those fields (``_id`` too only when listed); a mapping is passed as is."""
    cursor_field: str | None = None
    """The source field behind the incremental cursor, when its landed name differs."""
    batch_size: int | None = Field(default=None, gt=0)
    """Overrides the source's ``batch_size`` for this table."""
