"""Load one source table, inside the step's transaction: stage the batches, reshape nested
records, hold the rows to the schema contract, write them by the table's mode, and advance
the incremental cursor. Data, cursor and version commit together or not at all."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from gristmill.connectors.base import NativeRead, NativeReads, Source
from gristmill.engines.base import Engine, Interruptible, Relation
from gristmill.errors import ConfigError, EngineError, ShrinkRefused, SourceError
from gristmill.plan.contracts import compare
from gristmill.plan.graph import Asset
from gristmill.project.specs import Incremental, LoadSpec
from gristmill.runtime.load.contract import follow_parents_aside
from gristmill.runtime.load.flat_arrow import Splitter
from gristmill.runtime.load.nested import StagedElements, reshape
from gristmill.runtime.load.staging import Shaped, Staged, col
from gristmill.runtime.load.write import clear_stale_children, write
from gristmill.runtime.results import LoadResult
from gristmill.sql import nesting, types, writes
from gristmill.state.lake.cursors import Cursor, read_cursor, write_cursor

if TYPE_CHECKING:  # pyarrow (with numpy) is imported where it is used
    import pyarrow as pa


class _Counted:
    """Counts rows and bytes as batches pass, and numbers rows in arrival order (``_gm_ord``)."""

    def __init__(self, reader: pa.RecordBatchReader, stopped: Callable[[], bool] = lambda: False) -> None:
        self.reader = reader
        self.stopped = stopped
        self.rows = 0
        self.bytes = 0
        self.error: BaseException | None = None
        import pyarrow as pa

        self.schema = reader.schema.append(pa.field(writes.ORDINAL, pa.int64()))

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        try:
            yield from self._numbered()
        except BaseException as err:  # kept: the engine reports it wrapped in its own words
            self.error = err
            raise

    def _numbered(self) -> Iterator[pa.RecordBatch]:
        import numpy as np
        import pyarrow as pa

        for batch in self.reader:
            if self.stopped():  # a timeout or a cancel: stop reading, the transaction rolls back
                raise EngineError("interrupted: the step was stopped before it finished")
            ordinal = pa.array(np.arange(self.rows, self.rows + batch.num_rows, dtype=np.int64))
            self.rows += batch.num_rows
            self.bytes += batch.nbytes
            yield pa.RecordBatch.from_arrays([*batch.columns, ordinal], schema=self.schema)

    def as_reader(self) -> pa.RecordBatchReader:
        import pyarrow as pa

        return pa.RecordBatchReader.from_batches(self.schema, iter(self))


def lower_bound(cursor: Cursor | None, incremental: Incremental) -> exp.Expr | None:
    """Where an incremental load starts again: the last cursor minus the lag, or ``initial``."""
    if cursor is None:
        return None if incremental.initial is None else exp.convert(incremental.initial)
    value = cursor.literal()
    lag = incremental.lag
    if isinstance(lag, timedelta):
        return exp.Sub(
            this=value,
            expression=exp.Interval(
                this=exp.Literal.string(str(int(lag.total_seconds() * 1_000_000))),
                unit=exp.var("MICROSECONDS"),
            ),
        )
    if lag:
        return exp.Sub(this=value, expression=exp.convert(lag))
    return value


def load_table(
    asset: Asset, engine: Engine, source: Source, run_id: int, *, refresh: bool = False
) -> LoadResult:
    """Load one source table. ``refresh`` starts over: the cursor is ignored and the table
    replaced (history tables, ``scd2``, keep their history and load as usual)."""
    assert asset.table is not None
    spec = asset.table.load
    if refresh and spec.write != "scd2":
        spec = replace(spec, write="replace")
    result = LoadResult()
    boundary: exp.Expr | None = None
    since: Any = None
    if spec.incremental is not None and not refresh:
        boundary = lower_bound(read_cursor(engine, asset.name), spec.incremental)
        if boundary is not None:
            since = engine.query(exp.select(exp.alias_(boundary, "since"))).column("since")[0].as_py()
    plain_replace = spec.write == "replace" and spec.contract == "evolve" and spec.incremental is None
    # An incremental table always reads through the source (it filters at the origin), so one
    # table never lands a column through two paths with two slightly different types.
    native = _native(source, asset, engine) if spec.incremental is None else None
    held = _rows_held(engine, Relation.of(asset.name)) if spec.write == "replace" else None
    split: list[StagedElements] = []  # lists split off in Arrow, for an engine without nested types
    if native is not None and plain_replace and spec.nested == "struct" and spec.max_depth is None:
        with _reading(asset, native):
            _replace_straight(engine, Relation.of(asset.name), None, result, native)
        return _guard_shrink(asset, spec, held, result)
    if native is not None:  # the engine stages the source itself, numbering rows as it scans them
        query, result.bytes_read = native.numbered or native.query, native.bytes
        with _reading(asset, native):
            for statement in native.setup:
                engine.execute(statement)
        with _reading(asset, native):
            landed = engine.stage(query)
        raw: Staged
        if native.numbered is not None:  # the read numbers its rows itself (a Spark read)
            raw = exp.select("*").from_(landed).subquery("raw")
        else:
            # The staged table keeps the scan's order, so its row ids number the rows as they
            # arrived: DuckDB's rowid (a read without its own numbering is a DuckDB one).
            ordinal = exp.alias_(exp.column("rowid"), writes.ORDINAL, quoted=True)
            raw = exp.select("*", ordinal).from_(landed).subquery("raw")
        result.rows_read = int(
            engine.query(exp.select(exp.alias_(exp.Count(this=exp.Star()), "n")).from_(landed))
            .column("n")[0]
            .as_py()
        )
    else:
        counted = _Counted(
            source.read(asset.table, since), lambda: isinstance(engine, Interruptible) and engine.interrupted
        )
        if len(counted.schema) == 1:  # the ordinal alone: no columns (an API that answered [])
            return _no_columns(engine, asset, spec, held, counted, result)
        if _streams_straight(spec, counted.schema):
            _replace_straight(engine, Relation.of(asset.name), counted, result, None)
            return _guard_shrink(asset, spec, held, result)
        landed = _stage_read(engine, spec, counted, split)
        raw = landed
        result.rows_read, result.bytes_read = counted.rows, counted.bytes
    if result.rows_read == 0 and engine.exists(Relation.of(asset.name)) and not _closes_all(spec):
        # Nothing to write, and an empty input's columns mean nothing (DuckDB reads an empty CSV
        # as one VARCHAR "column0"): the table keeps its schema.
        _nothing_read(engine, asset, spec, held, result)
        for table in [landed, *(s.table for s in split)]:
            engine.execute(exp.Drop(tables=[table], kind="TABLE", exists=True))
        return result
    if spec.incremental is not None:
        _check_cursor(engine, raw, asset, spec.incremental)
        if boundary is not None:  # the source may not filter at the origin; the contract holds anyway
            engine.execute(
                exp.delete(landed, where=exp.LT(this=col(spec.incremental.cursor), expression=boundary))
            )
    scratch = [landed, *(s.table for s in split)]  # staged tables, dropped once the load is written
    staged = reshape(engine, raw, asset.name, spec, run_id, scratch, split)
    cursor_condition = None
    if boundary is not None and spec.incremental is not None:
        cursor_condition = exp.GTE(this=col(spec.incremental.cursor), expression=boundary)
    for index, shaped in enumerate(staged):
        if shaped.parent is not None:
            follow_parents_aside(engine, shaped, staged[shaped.parent], spec, result)
        written, shaped.staged = write(
            engine,
            shaped,
            spec,
            run_id,
            result,
            boundary=cursor_condition if index == 0 else None,
            parent=None if shaped.parent is None else staged[shaped.parent],
        )
        if index == 0:
            result.rows_written = written
            _guard_shrink(asset, spec, held, result)
    if spec.nested == "child_tables":
        clear_stale_children(engine, staged, spec)
    if spec.incremental is not None:
        result.cursor = _advance(engine, raw, asset.name, spec.incremental, run_id, refresh=refresh)
    for table in scratch:
        engine.execute(exp.Drop(tables=[table], kind="TABLE", exists=True))
    return result


def _stage_read(engine: Engine, spec: LoadSpec, counted: _Counted, split: list[StagedElements]) -> exp.Table:
    """Stage the source's batches; on an engine without nested types, ``child_tables``' lists of
    structs are split off in Arrow on the way and staged after them (into ``split``)."""
    splitter = None
    if spec.nested == "child_tables" and not engine.SUPPORTS_NESTED_TYPES:
        splitter = Splitter(counted.schema, spec.max_depth)
    try:
        landed = engine.stage(
            counted.as_reader() if splitter is None else splitter.reader(counted.as_reader())
        )
    except Exception:
        _reraise_source_error(counted)
        raise
    if splitter is not None:
        for index, found in enumerate(splitter.lists):
            table = engine.stage(splitter.elements(index))
            split.append(StagedElements(found.name, found.parent, table, found.depths))
    return landed


def _no_columns(
    engine: Engine, asset: Asset, spec: LoadSpec, held: int | None, counted: _Counted, result: LoadResult
) -> LoadResult:
    """A source that delivered no columns, hence no values: nothing to append or merge; a replace
    empties the table (keeping its columns) only when ``allow_empty`` says it may."""
    for _ in counted:
        pass
    result.rows_read, result.bytes_read = counted.rows, counted.bytes
    assert asset.source is not None and asset.table is not None
    where = f"{asset.source.file} ({asset.table.key})"
    if counted.rows:
        raise SourceError(
            f"{where}: {counted.rows} record(s) without a single field",
            hint="check the source's records path or query",
        )
    relation = Relation.of(asset.name)
    if spec.write == "replace" and engine.exists(relation):
        _guard_shrink(asset, spec, held, result)
        engine.execute(exp.delete(engine.table(relation)))
    elif not engine.exists(relation):
        result.events.append(f"{asset.name}: the source delivered no records and no columns; no table yet")
    return result


def _closes_all(spec: LoadSpec) -> bool:
    """An scd2 full snapshot with no rows closes every current version: it goes the usual way
    (only with ``allow_empty``, see ``_nothing_read``)."""
    return spec.write == "scd2" and spec.incremental is None and spec.allow_empty


def _nothing_read(engine: Engine, asset: Asset, spec: LoadSpec, held: int | None, result: LoadResult) -> None:
    """A load that read no rows into an existing table: a replace empties it only if allowed
    (keeping its columns, and emptying its child tables); an scd2 full snapshot would close every
    current version, so it is refused the same way; other modes have nothing to do."""
    relation = Relation.of(asset.name)
    if spec.write == "replace":
        _guard_shrink(asset, spec, held, result)
        engine.execute(exp.delete(engine.table(relation)))
        if spec.nested == "child_tables":
            clear_stale_children(engine, [Shaped(relation, engine.table(relation))], spec)
    elif spec.write == "scd2" and spec.incremental is None:
        current = exp.select(exp.alias_(exp.Count(this=exp.Star()), "n")).from_(engine.table(relation))
        open_rows = int(engine.query(current.where(col(writes.IS_CURRENT))).column("n")[0].as_py())
        if open_rows:
            assert asset.source is not None and asset.table is not None
            raise ShrinkRefused(
                f"{asset.source.file} ({asset.table.key}): the source delivered 0 rows; as a full "
                f"snapshot this would close all {open_rows:,} current version(s) of {asset.name}. "
                "The table keeps its previous version",
                hint="if every key is really gone, set allow_empty: true on the table (or the source)",
            )


def _rows_held(engine: Engine, relation: Relation) -> int | None:
    if not engine.exists(relation):
        return None
    count = engine.row(exp.select(exp.alias_(exp.Count(this=exp.Star()), "n")).from_(engine.table(relation)))
    assert count is not None  # a COUNT(*) always answers one row
    return int(count["n"])


def _guard_shrink(asset: Asset, spec: LoadSpec, held: int | None, result: LoadResult) -> LoadResult:
    """Refuse a ``replace`` that emptied a table holding rows (a truncated file, an API that
    answered with nothing) unless ``allow_empty``, or that removed more than ``max_shrink`` of
    them. Raised inside the load's transaction, so the table keeps its previous version."""
    if not held or spec.write != "replace":
        return result
    assert asset.source is not None and asset.table is not None
    where = f"{asset.source.file} ({asset.table.key})"
    now = result.rows_written
    if now == 0 and not spec.allow_empty:
        read = "the source delivered 0 rows" if not result.rows_read else "no row read was kept"
        raise ShrinkRefused(
            f"{where}: {read}; replacing would empty {asset.name}, which holds "
            f"{held:,} row(s). The table keeps its previous version",
            hint="if the source is meant to be empty now, set allow_empty: true on the table (or the source)",
        )
    if spec.max_shrink is not None and now < held and (held - now) / held > spec.max_shrink:
        raise ShrinkRefused(
            f"{where}: replacing {asset.name} would shrink it from {held:,} to {now:,} row(s) "
            f"({(held - now) / held:.0%} removed, max_shrink is {spec.max_shrink:.0%}). The table "
            "keeps its previous version",
            hint="check the source; if the shrink is expected, raise max_shrink or load with it unset once",
        )
    return result


def _native(source: Source, asset: Asset, engine: Engine) -> NativeRead | None:
    """A read the engine runs itself (local files, a whole PostgreSQL table), when offered."""
    if not isinstance(source, NativeReads) or asset.table is None:
        return None
    found = source.native(asset.table, engine.dialect)
    return found if isinstance(found, NativeRead) and found.dialect == engine.dialect else None


@contextmanager
def _reading(asset: Asset, native: NativeRead) -> Iterator[None]:
    """The engine reading a source itself: its errors are the source's, named as such (in the
    source's own words when it can say more, such as the line)."""
    try:
        yield
    except EngineError as err:
        assert asset.source is not None and asset.table is not None
        told = native.diagnose() if native.diagnose is not None else None
        where = f"{asset.source.file} ({asset.table.key})"
        if told is not None:
            raise SourceError(
                f"{where}: {told}", hint="fix the file, or pass reader options under 'options:'"
            ) from None
        raise SourceError(f"{where}: {err.message}", hint=err.hint) from None


def _reraise_source_error(counted: _Counted) -> None:
    if isinstance(counted.error, Exception):
        raise counted.error from None  # the source's own message, not the engine's wrapping


def _streams_straight(spec: LoadSpec, schema: pa.Schema) -> bool:
    """A plain replace needs no second look at the rows, so they stream into the table directly."""
    flat = (spec.nested == "struct" and spec.max_depth is None) or not any(
        nesting.is_nested(f.type) for f in schema
    )
    return spec.write == "replace" and spec.contract == "evolve" and spec.incremental is None and flat


def _replace_straight(
    engine: Engine,
    relation: Relation,
    counted: _Counted | None,
    result: LoadResult,
    native: NativeRead | None,
) -> LoadResult:
    before = engine.describe(engine.table(relation)) if engine.exists(relation) else None
    if native is not None:  # the engine reads the source itself: no rows cross Python
        for statement in native.setup:
            engine.execute(statement)
        result.rows_read = result.rows_written = engine.create_table_as(relation, native.query)
        result.bytes_read = native.bytes
        if before is not None:
            result.events.extend(
                f"{relation}: {c}"
                for c in compare(before, engine.describe(engine.table(relation)), dialect=engine.dialect)
            )
        return result
    assert counted is not None
    import pyarrow as pa

    data = pa.RecordBatchReader.from_batches(
        counted.schema.remove(counted.schema.get_field_index(writes.ORDINAL)),
        (batch.drop_columns([writes.ORDINAL]) for batch in counted),
    )
    try:
        result.rows_written = engine.write_arrow(relation, data)
    except Exception:
        _reraise_source_error(counted)
        raise
    result.rows_read, result.bytes_read = counted.rows, counted.bytes
    if before is not None:
        after = engine.describe(engine.table(relation))
        changes = compare(before, after, dialect=engine.dialect)
        result.events.extend(f"{relation}: {change}" for change in changes)
    return result


def _check_cursor(engine: Engine, raw: Staged, asset: Asset, incremental: Incremental) -> None:
    columns = [c for c, _ in engine.describe(raw)]
    if incremental.cursor not in columns:
        assert asset.table is not None
        raise ConfigError(
            f'incremental cursor "{incremental.cursor}" is not a column of {asset.name}',
            location=asset.table.location,
            hint="columns: " + ", ".join(c for c in columns if c != writes.ORDINAL),
        )


def _advance(
    engine: Engine,
    raw: Staged,
    asset: str,
    incremental: Incremental,
    run_id: int,
    *,
    refresh: bool = False,
) -> Cursor | None:
    """Store the highest cursor value loaded, in this transaction; an empty load keeps the old one."""
    top = exp.Max(this=col(incremental.cursor))
    value = engine.query(exp.select(exp.alias_(exp.cast(top, "VARCHAR"), "value")).from_(raw)).column(
        "value"
    )[0]
    if not value.is_valid:
        return None
    # The type as the engine describes the column (MAX keeps it), in the engine's own words.
    dtype = dict(engine.describe(exp.select(col(incremental.cursor)).from_(raw).subquery("c")))
    typed = types.render(dtype[incremental.cursor], engine.dialect)
    previous = None if refresh else read_cursor(engine, asset)
    cursor = Cursor(value.as_py(), typed, engine.dialect)
    if previous is not None:
        newer = (
            engine.query(
                exp.select(exp.alias_(exp.GT(this=cursor.literal(), expression=previous.literal()), "newer"))
            )
            .column("newer")[0]
            .as_py()
        )
        if not newer:
            return previous
    write_cursor(engine, asset, cursor, run_id)
    return cursor
