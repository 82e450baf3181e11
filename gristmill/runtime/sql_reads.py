"""What a read-only SQL statement answers (``POST /api/v1/sql``, the PostgreSQL wire door); the
statements run on the serve process's pinned tables reader (``gristmill.workspace.sql_reading``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class SqlAnswer:
    table: pa.Table
    """At most the row cap's rows."""
    truncated: bool
    """True when the cap cut the result (there were more rows)."""
