"""The engine protocol: a small core every engine provides, and optional capabilities.

The core (:class:`Engine`) is what a run cannot do without: statements as sqlglot ASTs, results
as Arrow or rows, tables made from queries and from record batches, and column types as sqlglot
``DataType``. Everything else is a capability, a ``runtime_checkable`` protocol an engine class
implements or not; callers check it with ``isinstance`` (never by probing attributes) and either
fall back or raise :class:`~gristmill.errors.MissingCapability` through the ``require_*``
helpers below. ``docs/architecture.md`` ("What an engine must provide") says what the platform
does when each is missing."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

from sqlglot import exp

from gristmill.errors import MissingCapability

if TYPE_CHECKING:  # pyarrow (with numpy) is imported where it is used
    import pyarrow as pa

Column = tuple[str, exp.DataType]
"""A column at the engine boundary: its name and its type as a dialect-neutral sqlglot node."""


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


@runtime_checkable
class Engine(Protocol):
    """What every engine offers. Differences in behaviour are declared as class attributes;
    optional operations are the capability protocols below."""

    kind: ClassVar[str]
    """The ``[engine] kind`` of gristmill.toml this class implements (a registry key)."""
    dialect: ClassVar[str]
    """The sqlglot dialect statements are rendered in for this engine."""
    SUPPORTS_VIEWS: ClassVar[bool]
    """A view kind of model is a view (else it is built as a table)."""
    SUPPORTS_CONCURRENT_READERS: ClassVar[bool]
    """Another process may read while this one writes."""
    SUPPORTS_CONCURRENT_WRITES: ClassVar[bool]
    """Several steps of one run may write at once (else they take turns)."""
    SUPPORTS_NESTED_TYPES: ClassVar[bool]
    """Staged and stored columns may be structs and lists of any element (else a load reshapes
    nested records in Arrow before staging them, see runtime/load/flat_arrow.py)."""

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

    def exists(self, relation: Relation) -> bool: ...

    def drop(self, relation: Relation) -> None:
        """Drop a table or view, whichever it is; nothing when it does not exist."""
        ...

    def drop_view(self, relation: Relation) -> None: ...

    def create_table_as(self, relation: Relation, query: exp.Query) -> int:
        """Create or atomically replace a table from a query; returns its rows."""
        ...

    def create_view_as(self, relation: Relation, query: exp.Query) -> None: ...

    def write_arrow(
        self, relation: Relation, data: pa.RecordBatchReader, mode: Literal["replace", "append"] = "replace"
    ) -> int:
        """Write record batches into a table; returns the rows written."""
        ...

    def stage(self, data: pa.RecordBatchReader | exp.Query) -> exp.Table:
        """Land record batches (or a query's result) in a temporary table visible only to this
        session, for the loader to inspect and reshape with SQL before it writes the target. In
        the core: every load and merge goes through it."""
        ...

    def describe(self, table: exp.Table | exp.Subquery) -> list[Column]:
        """(column, type) pairs of a staged or published table, or of a query."""
        ...

    def ensure_table(self, relation: Relation, columns: Sequence[Column]) -> None:
        """Create an empty table with these columns unless it exists."""
        ...

    def columns(self) -> dict[Relation, list[Column]]:
        """Every managed table and view with its (column, type) pairs, in one round trip."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class Transactions(Protocol):
    """Several statements (data, checks, metadata) commit or roll back together."""

    def transaction(self, *, group: bool = False) -> AbstractContextManager[None]:
        """Everything inside commits together, or nothing does. With ``group`` the transaction
        joins one an earlier grouped transaction left open and stays open when it succeeds, until
        :meth:`commit`; a failure inside rolls the whole group back."""
        ...

    def commit(self) -> None:
        """Commit the transaction grouped steps left open (nothing when none is)."""
        ...

    def rollback(self) -> None:
        """Roll back the transaction grouped steps left open (nothing when none is)."""
        ...

    def write_in_bulk(self, schemas: Iterable[str]) -> None:
        """Tables in ``schemas`` are written whole (models): store them the way whole writes are
        cheapest to commit. Call outside a transaction, on a writable engine."""
        ...


@runtime_checkable
class ArrowViews(Protocol):
    """Arrow data readable by SQL without a copy, and tables read back as record batches
    (streams' batches, Python models' inputs)."""

    def register(self, name: str, data: pa.Table) -> exp.Table:
        """``data`` readable as the view ``name`` of this session, without a copy (a name
        registered again is replaced); ``unregister`` drops it."""
        ...

    def unregister(self, name: str) -> None: ...

    def read_arrow(self, table: exp.Table) -> pa.RecordBatchReader:
        """The rows of a staged or published table as record batches (for Python models); read
        them before the next statement."""
        ...


@runtime_checkable
class StreamedReads(Protocol):
    """Results as record batches produced while they are read, on connections of their own:
    what a server needs to answer many clients at once with bounded memory."""

    def cursor(self) -> StreamedReads:
        """Another connection to the same data, for another thread."""
        ...

    def stream(self, query: exp.Query, batch_rows: int = 65_536) -> pa.RecordBatchReader: ...

    def close(self) -> None: ...


@runtime_checkable
class LocalCopies(Protocol):
    """A read-only engine that can keep a copy of one of its tables in its own memory, in its
    native format (a server's hot tables: no file lists, footers or Parquet pages per read)."""

    def copy_locally(self, relation: Relation, name: str) -> exp.Table:
        """Copy ``relation`` into memory as ``name`` (once) and return the copy's table."""
        ...


@runtime_checkable
class Maintenance(Protocol):
    """Storage the engine keeps itself (snapshots, small files) can be tidied."""

    def reclaim(self, older_than_days: int) -> None:
        """Give back storage no longer needed (old snapshots and the files only they use)."""
        ...

    def compact(self, relation: Relation) -> None:
        """Rewrite a table's many small writes (a stream's batches) as few files, keeping every
        snapshot readable; nothing when it is not a table."""
        ...


@runtime_checkable
class Interruptible(Protocol):
    """The running statement can be stopped from another thread (a cancel, a time limit)."""

    def interrupt(self) -> None:
        """Stop the running statement and fail the rest of the current transaction."""
        ...

    @property
    def interrupted(self) -> bool:
        """An interrupt arrived for the current step (a loader stops feeding rows then)."""
        ...


@runtime_checkable
class SizedSteps(Protocol):
    """The engine sizes its resources for a step from the rows the step reads (DuckDB runs a
    step over small inputs on one thread: its other threads cost each small statement more CPU
    than they save)."""

    def expect_rows(self, rows: int | None) -> None:
        """The statements that follow (one step's) read about ``rows`` rows in all; None when
        that is not known (a load, a model whose inputs are not all rewritten tables)."""
        ...


@runtime_checkable
class NativeRelations(Protocol):
    """Lazy relations of the engine's own Python API, for Python models that ask for them: what
    the model builds on one runs in the engine, and one it returns is staged in place."""

    def relation(self, table: exp.Table) -> Any:
        """A lazy relation over ``table``."""
        ...

    def stage_relation(self, result: Any) -> exp.Table | None:
        """Stage ``result`` like :meth:`Engine.stage` when it is a relation of this engine's
        kind; None when it is not one."""
        ...


@runtime_checkable
class SparkDataFrames(Protocol):
    """Lazy DataFrames of Spark's own API, for Python models that ask for them (``def m(spark:
    SparkSession, orders: DataFrame) -> DataFrame``): what the model builds runs on the cluster,
    and the DataFrame it returns is staged by the engine without a row reaching the driver. A
    relation (the default form) stays a DuckDB relation on every engine, so a model's code means
    the same wherever it runs."""

    @property
    def spark(self) -> Any:
        """The engine's ``SparkSession`` (classic or Spark Connect)."""
        ...

    def dataframe(self, table: exp.Table) -> Any:
        """A lazy DataFrame over ``table``."""
        ...

    def stage_dataframe(self, result: Any) -> exp.Table | None:
        """Stage ``result`` like :meth:`Engine.stage`, written by the executors, when it is a
        DataFrame; None when it is not one."""
        ...


@runtime_checkable
class StreamingEngine(Engine, Transactions, ArrowViews, Protocol):
    """What a stream model's loop needs: each batch, registered as an Arrow view, is written with
    its state and offsets in one transaction (exactly once)."""


def require_transactions(engine: Engine, purpose: str) -> Transactions:
    """``engine`` as :class:`Transactions`, or a clear error naming what needed it. The fallback
    (build into a new table and swap a view) is not implemented yet."""
    if isinstance(engine, Transactions):
        return engine
    raise _missing(engine, "transactions", purpose)


def require_arrow_views(engine: Engine, purpose: str) -> ArrowViews:
    if isinstance(engine, ArrowViews):
        return engine
    raise _missing(engine, "Arrow views", purpose)


def require_streaming(engine: Engine, purpose: str) -> StreamingEngine:
    if isinstance(engine, StreamingEngine):
        return engine
    raise _missing(engine, "transactions and Arrow views", purpose)


def require_maintenance(engine: Engine, purpose: str) -> Maintenance:
    if isinstance(engine, Maintenance):
        return engine
    raise _missing(engine, "maintenance", purpose)


def _missing(engine: Engine, capability: str, purpose: str) -> MissingCapability:
    return MissingCapability(
        f"the {engine.kind} engine has no {capability}, which {purpose} needs",
        hint='see "What an engine must provide" in docs/architecture.md',
    )
