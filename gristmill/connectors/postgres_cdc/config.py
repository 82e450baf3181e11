"""Options of a ``kind: postgres_cdc`` source and of each of its tables."""

from __future__ import annotations

from pydantic import Field

from gristmill.connectors.base import Options

# PostgreSQL's own rule for slot names; publications follow it too so that the
# comma-separated ``publication_names`` option of pgoutput never needs quoting.
_NAME = r"^[a-z0-9_]{1,63}$"


class CDCSourceOptions(Options):
    connection: str
    """``postgresql://user:password@host:port/db``, usually a ``${env:NAME}`` reference."""
    slot: str = Field(pattern=_NAME)
    """The logical replication slot (pgoutput); created on the first read if missing."""
    publication: str = Field(pattern=_NAME)
    """The publication; created for the listed tables if missing, extended when tables are added."""
    batch_rows: int = Field(default=50_000, ge=1)
    """Changes per Arrow record batch."""


class CDCTableOptions(Options):
    table: str | None = None
    """``schema.table`` in PostgreSQL; defaults to the key under ``tables`` (on the search path)."""
