"""What the HTTP routers read the lake through: one small facade, ``TableReader``.

Every router of ``gristmill serve`` (tables, metrics, read-only SQL, the PostgreSQL wire) reads
data through this and nothing else; the workspace builds it (``Workspace.reader(env)``, see
``gristmill/workspace/reading.py``) and ``create_app(reader=...)`` hands it to the routers.

The API, in full::

    reader = workspace.reader("prod")          # a TableReader; thread-safe, lives as long as the server
    pinned = reader.pin()                       # the newest published state, or
    pinned = reader.pin("42")                   # a DuckLake snapshot id, or
    pinned = reader.pin("2026-12-07T21:00:00Z") # the state at that time (ReadError where the engine
                                                # has no time travel: reader.time_travel is False)
    pinned.snapshot                             # "42": opaque text naming what was pinned
    pinned.relations()                          # {"marts.orders": ServedRelation(...)} at that state
    pinned.version(["marts.orders"])            # data-version key of those relations (cache keys, ETags)
    pinned.version(query)                       # ... of the relations a sqlglot query reads
    batches = pinned.read(query)                # pa.RecordBatchReader of a sqlglot query
    pinned.close()                              # or ``with reader.pin() as pinned:``

``query`` is a sqlglot ``exp.Query`` whose tables are named as served, ``schema.name`` (as the
catalog lists them); the reader points them at the environment, renders the query for the engine
and refuses (``ReadError``) any table that is not a served relation, so a router can never reach
the platform's own tables or files. Build every value in the query as a sqlglot literal after
checking it against ``ServedColumn.type`` (never format user text into SQL).

A pinned read sees one published state for as long as it is open: runs that publish meanwhile
are not seen, and the next ``reader.pin()`` sees them without a restart. ``version`` changes when
a run publishes a new version of any of the named relations, and only then.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

from gristmill.errors import ReadError

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlglot import exp

__all__ = ["PinnedRead", "ReadError", "ServedColumn", "ServedRelation", "TableReader"]


@dataclass(frozen=True)
class ServedColumn:
    name: str
    type: str
    """The column's type as SQL (DuckDB spelling), e.g. ``DECIMAL(18,2)``, ``BIGINT``, ``VARCHAR``."""
    description: str | None = None


@dataclass(frozen=True)
class ServedRelation:
    """A table or view an environment serves, as the catalog lists it."""

    schema: str
    name: str
    kind: str
    """The asset's kind: ``table``, ``incremental``, ``view``, ``source`` ..."""
    columns: tuple[ServedColumn, ...]
    description: str | None = None
    owner: str | None = None
    tags: tuple[str, ...] = ()
    rows: int | None = None
    """Rows at its last build (None when unknown, e.g. a view)."""
    built_at: str | None = None
    """When the served version was built (ISO 8601, UTC): its freshness."""
    key: tuple[str, ...] = ()
    """Columns identifying a row, when the model declares them."""
    version: str = ""
    """Opaque: changes when a run publishes a new version of this relation."""
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.schema}.{self.name}"

    def column(self, name: str) -> ServedColumn | None:
        return next((c for c in self.columns if c.name == name), None)


class PinnedRead(Protocol):
    """One published state of the lake, held until ``close``."""

    @property
    def snapshot(self) -> str: ...

    def relations(self) -> dict[str, ServedRelation]: ...

    def version(self, relations: Iterable[str] | exp.Query) -> str:
        """A key that changes when a run publishes a new version of any of ``relations`` (names
        ``schema.name``, or the tables a query reads), and only then."""
        ...

    def read(self, query: exp.Query) -> pa.RecordBatchReader: ...

    def close(self) -> None: ...

    def __enter__(self) -> PinnedRead: ...

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None: ...


class TableReader(Protocol):
    """The served tables of one environment; ``pin`` opens a consistent read of them."""

    @property
    def env(self) -> str: ...

    @property
    def dialect(self) -> str: ...

    @property
    def time_travel(self) -> bool: ...

    def pin(self, as_of: str | None = None) -> PinnedRead: ...

    def close(self) -> None: ...
