"""Options of a ``kind: sqlite`` source and of each of its tables."""

from __future__ import annotations

from gristmill.connectors.base import Options


class SQLiteSourceOptions(Options):
    path: str
    """The database file, relative to the project folder."""


class SQLiteTableOptions(Options):
    table: str | None = None
    """The table's name in SQLite; defaults to the key under ``tables``."""
    columns: list[str] | None = None
    """Land only these columns."""
