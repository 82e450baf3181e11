"""The engine protocol: the few things the platform needs from anything that runs SQL."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from sqlglot import exp

if TYPE_CHECKING:  # pyarrow (with numpy) is imported where it is used
    import pyarrow as pa


@dataclass(frozen=True, order=True)
class Relation:
    """A table or view the platform manages, named ``schema.name`` like the asset it holds."""

    schema: str
    name: str

    @classmethod
    def of(cls, asset: str) -> Relation:
        schema, name = asset.split(".", 1)
        return cls(schema, name)

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"


class Engine(Protocol):
    """What every engine offers. Differences are declared as flags, not discovered by trying."""

    kind: ClassVar[str]
    dialect: ClassVar[str]
    SUPPORTS_TRANSACTIONS: ClassVar[bool]
    """Several statements (data, checks, metadata) commit or roll back together."""
    SUPPORTS_VIEWS: ClassVar[bool]
    SUPPORTS_CONCURRENT_READERS: ClassVar[bool]
    """Another process may read while this one writes."""
    SUPPORTS_CONCURRENT_WRITES: ClassVar[bool]
    """Several steps of one run may write at once (else they take turns)."""

    def table(self, relation: Relation) -> exp.Table:
        """The fully qualified physical table for ``relation``, ready to put in an AST."""
        ...

    def execute(self, statement: exp.Expr | str) -> int | None:
        """Run one statement; returns the rows it changed when the engine reports them. A string
        is SQL in the engine's dialect (a statement generated once and run many times)."""
        ...

    def query(self, sql: str | exp.Expr) -> pa.Table:
        """Run a query and return its whole result as Arrow."""
        ...

    def row(self, query: exp.Query) -> dict[str, Any] | None:
        """The first row of a small query (a check's counts) as a mapping; no Arrow round trip."""
        ...

    def rows(self, query: exp.Query) -> list[dict[str, Any]]:
        """Every row of a small query (the lake's own bookkeeping) as mappings; no Arrow round
        trip, so a run that moves no rows through Python never imports pyarrow (nor numpy)."""
        ...

    def transaction(self, *, group: bool = False) -> AbstractContextManager[None]:
        """Everything inside commits together, or nothing does. With ``group`` the transaction
        joins one an earlier grouped transaction left open and stays open when it succeeds, until
        :meth:`commit`; a failure inside rolls the whole group back."""
        ...

    def write_in_bulk(self, schemas: Iterable[str]) -> None:
        """Tables in ``schemas`` are written whole (models): store them the way whole writes are
        cheapest. Call outside a transaction, on a writable engine."""
        ...

    def commit(self) -> None:
        """Commit the transaction grouped steps left open (nothing when none is)."""
        ...

    def rollback(self) -> None:
        """Roll back the transaction grouped steps left open (nothing when none is)."""
        ...

    def write_arrow(
        self, relation: Relation, data: pa.RecordBatchReader, mode: Literal["replace", "append"] = "replace"
    ) -> int:
        """Write record batches into a table; returns the rows written."""
        ...

    def create_table_as(self, relation: Relation, query: exp.Query) -> int:
        """Create or atomically replace a table from a query; returns its rows."""
        ...

    def register(self, name: str, data: pa.Table) -> exp.Table:
        """``data`` readable as the view ``name`` of this session, without a copy (a name
        registered again is replaced); ``unregister`` drops it."""
        ...

    def unregister(self, name: str) -> None: ...

    def create_view_as(self, relation: Relation, query: exp.Query) -> None: ...

    def drop_view(self, relation: Relation) -> None: ...

    def drop(self, relation: Relation) -> None:
        """Drop a table or view, whichever it is; nothing when it does not exist."""
        ...

    def reclaim(self, older_than_days: int) -> None:
        """Give back storage no longer needed (old snapshots and the files only they use)."""
        ...

    def compact(self, relation: Relation) -> None:
        """Rewrite a table's many small writes (a stream's batches) as few files, keeping every
        snapshot readable; nothing when it is not a table."""
        ...

    def exists(self, relation: Relation) -> bool: ...

    def stage(self, data: pa.RecordBatchReader | exp.Query) -> exp.Table:
        """Land record batches in a temporary table visible only to this session, for the loader to
        inspect and reshape with SQL before it writes the target."""
        ...

    def read_arrow(self, table: exp.Table) -> pa.RecordBatchReader:
        """The rows of a staged or published table as record batches (for Python models); read them
        before the next statement."""
        ...

    def describe(self, table: exp.Table | exp.Subquery) -> list[tuple[str, str]]:
        """(column, engine type) pairs of a staged or published table."""
        ...

    def ensure_table(self, relation: Relation, columns: Sequence[tuple[str, str]]) -> None:
        """Create an empty table with these (name, type) columns unless it exists."""
        ...

    def columns(self) -> dict[Relation, list[tuple[str, str]]]:
        """Every managed table and view with its (column, type) pairs, in one round trip."""
        ...

    def interrupt(self) -> None:
        """Stop the running statement and fail the rest of the current transaction; callable from
        another thread."""
        ...

    def close(self) -> None: ...
