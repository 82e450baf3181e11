"""The source protocol, its optional features, and what every connector shares (option models).

Optional features are ``runtime_checkable`` protocols a source class implements or not; the
runtime checks them with ``isinstance``, never by probing attributes. Sources that read with
DuckDB share ``connectors/duckdb_reader.py`` (this module imports no engine library)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlglot import exp

from gristmill._util.suggest import did_you_mean
from gristmill.errors import ConfigError
from gristmill.project.specs import SourceSpec, SourceTable

if TYPE_CHECKING:  # pyarrow (with numpy) is imported where it is used
    import pyarrow as pa

    from gristmill.connectors.streams.feed import Feed

BATCH_ROWS = 122_880  # DuckDB's row-group size: batches map onto its vectors without re-chunking


class Source(Protocol):
    spec: SourceSpec

    def schema(self, table: SourceTable) -> pa.Schema:
        """The landed schema (normalised column names), cheaply, without reading the data."""
        ...

    def read(self, table: SourceTable, since: Any = None) -> pa.RecordBatchReader:
        """The table's rows as a stream of record batches with the landed schema.

        For an incremental table ``since`` is the lower bound (inclusive) of its cursor column,
        ``table.load.incremental.cursor`` (a landed name); None means read everything. A source
        that can filter at the origin should; the loader also filters, so none may return less."""
        ...

    def change_marker(self, table: SourceTable) -> str | None:
        """A value that changes whenever the data may have; None when the source cannot tell."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class NativeRead:
    """A read the engine runs itself, so no row crosses Python: ``setup`` first (an ATTACH of
    the source database, a view over files), then ``query``. Offered by :class:`NativeReads`
    sources; only an engine of ``dialect`` can run it (its functions are that engine's own)."""

    query: exp.Query
    dialect: str
    bytes: int = 0
    setup: tuple[exp.Expr, ...] = ()
    numbered: exp.Query | None = None
    """The same read with ``_gm_ord`` numbering its rows 0, 1, 2 … in arrival order, for loads
    that need the order (merges, contracts); None: the engine's staged row ids do (DuckDB's
    ``rowid``)."""
    diagnose: Callable[[], str | None] | None = None
    """Called when the engine's read failed: the source's own account of why (a file and line),
    or None to keep the engine's message."""


@runtime_checkable
class NativeReads(Protocol):
    """The source can hand the engine a read to run itself (local files, a whole database
    table), written in the engine's ``dialect``. Without it, or when ``native`` returns None (no
    read in that dialect), rows stream through :meth:`Source.read`."""

    def native(self, table: SourceTable, dialect: str = "duckdb") -> NativeRead | None: ...


@runtime_checkable
class Acknowledging(Protocol):
    """The source keeps its own position (a replication slot) and is told, after each commit,
    how far the lake holds its data. Without it the cursor in the lake is the only position."""

    def acknowledge(self, table: SourceTable, position: Any) -> None: ...


@runtime_checkable
class InterruptibleSource(Protocol):
    """What the source runs can be stopped from another thread (a cancel, a time limit on a file
    read stuck in the source's own reader). Without it a stopped step waits for the read."""

    def interrupt(self) -> None: ...


@runtime_checkable
class Streaming(Protocol):
    """The source can be subscribed to (a broker): stream models read its tables. Without it a
    stream model over the source is refused."""

    def feed(self, table: SourceTable) -> Feed: ...


@runtime_checkable
class Deserializing(Protocol):
    """The source decodes its messages itself (Avro, Protobuf with a registry); without it the
    stream's own decoder reads them."""

    def deserializer(self, table: SourceTable) -> Any: ...


@runtime_checkable
class Publishing(Protocol):
    """The source can also be written to: a stream model's ``publish:`` sends its rows there.
    Without it ``publish:`` naming the source is refused."""

    def sink(self, topic: str) -> Any: ...


class Options(BaseModel):
    """Base of connector option models: unknown keys are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


OptionsT = TypeVar("OptionsT", bound=Options)


def parse_options(
    model: type[OptionsT], data: dict[str, Any], where: str, *, ignore: Sequence[str] = ()
) -> OptionsT:
    try:
        return model.model_validate({k: v for k, v in data.items() if k not in ignore})
    except ValidationError as err:
        problems = err.errors()
        # A misspelt key also makes the right one "missing": name the misspelling, it is the cause.
        first = next((p for p in problems if p["type"] == "extra_forbidden"), problems[0])
        key = ".".join(str(p) for p in first["loc"])
        line = getattr(data, "key_lines", {}).get(first["loc"][0]) if first["loc"] else None
        location = f"{where.split(':')[0]}:{line}" if line else where
        if first["type"] == "extra_forbidden":
            # Every key valid here, also those the project loader took before the connector saw
            # them (write, incremental, checks ...): a typo of one of those lands here.
            valid = sorted({*model.model_fields, *ignore, *getattr(data, "handled_elsewhere", ())})
            raise ConfigError(
                f'unknown option "{key}"',
                location=location,
                hint=did_you_mean(key, valid) or "options: " + ", ".join(valid),
            ) from None
        if first["type"] == "missing":
            raise ConfigError(f'missing required option "{key}"', location=location) from None
        raise ConfigError(f"{key}: {first['msg']}", location=location) from None
