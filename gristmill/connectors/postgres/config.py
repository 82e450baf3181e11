"""Options of a ``kind: postgres`` source and of each of its tables (see docs/sources-databases.md)."""

from __future__ import annotations

from gristmill.connectors.sqldb import DatabaseSourceOptions, DatabaseTableOptions


class PostgresSourceOptions(DatabaseSourceOptions):
    """``connection`` is a ``postgresql://`` URL (libpq parameters such as ``sslmode`` may follow
    ``?``); ``source_schema`` defaults to ``public``."""


class PostgresTableOptions(DatabaseTableOptions):
    """``query`` is PostgreSQL SQL."""
