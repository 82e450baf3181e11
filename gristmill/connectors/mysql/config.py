"""Options of a ``kind: mysql`` source (MySQL or MariaDB) and of each of its tables."""

from __future__ import annotations

from gristmill.connectors.sqldb import DatabaseSourceOptions, DatabaseTableOptions


class MySQLSourceOptions(DatabaseSourceOptions):
    """``connection`` is a ``mysql://`` (or ``mariadb://``) URL; ``source_schema`` is the database
    and defaults to the one in the URL's path."""


class MySQLTableOptions(DatabaseTableOptions):
    """``query`` is MySQL SQL."""
