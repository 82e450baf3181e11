"""Build one model into its table by its kind, inside the step's engine transaction.

``view`` and ``table`` are created (or replaced) from the query. The others keep state in their
own table and grow it run by run: ``incremental`` (append, merge on a key, or by time interval
with the intervals recorded in ``_gristmill.intervals``), ``snapshot`` (history of the query's
rows), ``dimension`` (surrogate keys, an unknown member, type 1 and type 2 columns) and ``fact``
(surrogate keys looked up in dimensions, at a point in time, fixed later when a member arrives
late). Everything is written in the caller's transaction: data and interval records commit
together or not at all."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

from sqlglot import exp

from gristmill.engines.base import Column, Engine, Relation
from gristmill.errors import ConfigError, ProjectError
from gristmill.plan.contracts import compare
from gristmill.plan.intervals import Span, complete, contiguous, floor, parse_moment, pending, shift, utc
from gristmill.project.specs import ModelSpec
from gristmill.sql import dimensional, types, writes
from gristmill.sql import partitions as partition_sql
from gristmill.state.lake.intervals import forget_intervals, read_intervals, record_intervals
from gristmill.state.lake.partitions import forget_partitions, record_partitions

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class MaterializeResult:
    rows: int | None
    """Rows the build wrote: the new table's rows on a first build or rebuild, else the rows
    inserted plus the rows updated in place (``None`` for a view)."""
    intervals: list[Span] = field(default_factory=list)
    """``incremental`` by time (and a ``fact`` with ``time``): the intervals processed, in order."""
    events: list[str] = field(default_factory=list)
    """Noteworthy changes to the table, e.g. a column added to an incremental table."""


def materialize(
    engine: Engine,
    model: ModelSpec,
    query: exp.Query,
    target: Relation,
    *,
    incremental: bool,
    run_id: int,
    run_time: datetime,
    physical: Callable[[str], exp.Table],
    window: Span | None = None,
    partitions: Sequence[str] | None = None,
) -> MaterializeResult:
    """Write ``query``'s rows into ``target`` as ``model``'s kind says.

    ``incremental`` builds on the rows ``target`` already holds; otherwise (or when ``target``
    does not exist yet) it is built from scratch, history and recorded intervals included.
    ``run_time`` is "now" for validity ranges and intervals; ``physical`` gives the table of an
    asset (the dimensions a fact looks up); ``window`` limits a model built by time interval to
    the pending intervals starting in that range (a backfill's chunk); ``partitions`` limits a
    statically partitioned model to those declared values."""
    build = _Build(
        engine,
        model,
        query,
        target,
        incremental and engine.exists(target),
        run_id,
        utc(run_time),
        physical,
        window=None if window is None else (utc(window[0]), utc(window[1])),
        partitions=None if partitions is None else tuple(partitions),
    )
    kind = model.kind
    if kind == "view" and engine.SUPPORTS_VIEWS:
        engine.create_view_as(target, query)
        return MaterializeResult(None)
    if kind in ("view", "table", "stream"):  # a view on an engine without views is a table;
        # a stream model built as a batch is the table of its windows over the landed stream
        return MaterializeResult(engine.create_table_as(target, query))
    if kind == "incremental":
        strategy = model.strategy
        if strategy == "by_time":
            return build.by_time(query)
        if strategy == "by_partition":
            return build.by_partition(query)
        if strategy == "merge":
            return build.merge(query)
        return build.append(query)
    if kind == "snapshot":
        return build.history(surrogate=None, tracked=None)
    if kind == "dimension":
        surrogate = model.surrogate_key or f"{target.name.removeprefix('dim_')}_key"
        return build.history(surrogate=surrogate, tracked=model.type2)
    if kind == "fact":
        return build.fact()
    raise AssertionError(f"unreachable: model kind {kind!r} passed validation")


def _moment_text(moment: datetime, unit: str) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M") if unit == "hour" else moment.date().isoformat()


@dataclass
class _Build:
    engine: Engine
    model: ModelSpec
    query: exp.Query
    target: Relation
    incremental: bool
    run_id: int
    run_time: datetime
    physical: Callable[[str], exp.Table]
    window: Span | None = None
    partitions: tuple[str, ...] | None = None
    events: list[str] = field(default_factory=list)
    _staged: list[exp.Table] = field(default_factory=list)

    @property
    def table(self) -> exp.Table:
        return self.engine.table(self.target)

    # -- helpers -----------------------------------------------------------------------------------

    def _error(self, message: str, hint: str | None = None) -> ConfigError:
        return ConfigError(message, location=self.model.file, hint=hint)

    def _columns(self, query: exp.Query) -> list[Column]:
        return self.engine.describe(query.subquery("q", copy=True))

    def _spelled(self, columns: Sequence[Column]) -> list[tuple[str, str]]:
        """(name, type text) pairs for ``sql.dimensional``, which still reads types as text."""
        return types.texts(columns, self.engine.dialect)

    def _need(self, option: str, names: Sequence[str], columns: Sequence[Column]) -> None:
        have = [c for c, _ in columns]
        for name in names:
            if name not in have:
                raise self._error(
                    f'{option}: "{name}" is not a column of the model', hint="columns: " + ", ".join(have)
                )

    def _time_type(self, option: str, name: str, columns: Sequence[Column]) -> str:
        self._need(option, [name], columns)
        dtype = types.render(dict(columns)[name], self.engine.dialect)
        if not dimensional.is_time_type(dtype):
            raise self._error(
                f'{option}: column "{name}" is {dtype}; it must be a DATE or TIMESTAMP',
                hint=f"cast it in the model, e.g. CAST({name} AS TIMESTAMP) AS {name}",
            )
        return dtype

    def _stage(self, query: exp.Query) -> exp.Table:
        staged = self.engine.stage(query)
        self._staged.append(staged)
        return staged

    def _done(self, result: MaterializeResult) -> MaterializeResult:
        """Drop this build's staged tables (after a failure the rollback removes them)."""
        for staged in self._staged:
            self.engine.execute(exp.Drop(tables=[staged], kind="TABLE", exists=True))
        self._staged.clear()
        return result

    def _run(self, statements: Sequence[exp.Expr]) -> int:
        changed = 0
        for statement in statements:
            count = self.engine.execute(statement)
            if isinstance(statement, exp.Insert | exp.Update):
                changed += count or 0
        return changed

    def _evolve(self, columns: Sequence[Column]) -> list[str]:
        """Hold the table to the query's columns: add new ones (earlier rows hold NULL), widen a
        type losslessly; any other type change needs a rebuild. A column the query no longer has
        stays, NULL in new rows. Returns the columns added."""
        added: list[str] = []
        for change in compare(self.engine.describe(self.table), columns, dialect=self.engine.dialect):
            if change.kind == "type_drift":
                raise ProjectError(
                    f"{self.target}: {change}; the table's rows cannot take the new type",
                    location=self.model.file,
                    hint="run with --full-refresh to rebuild the table with the new type",
                )
            if change.kind == "missing_column":
                continue
            name = exp.to_identifier(change.column, quoted=True)
            assert change.new is not None
            kind = change.new.copy()  # the engine's types may be shared
            action: exp.Expr = (
                exp.ColumnDef(this=name, kind=kind)
                if change.kind == "new_column"
                else exp.AlterColumn(this=name, dtype=kind)
            )
            self.engine.execute(exp.Alter(this=self.table, kind="TABLE", actions=[action]))
            self.events.append(f"{self.target}: {change}")
            if change.kind == "new_column":
                added.append(change.column)
        return added

    def _result(self, rows: int | None, intervals: list[Span] | None = None) -> MaterializeResult:
        return self._done(MaterializeResult(rows, intervals or [], list(self.events)))

    def _stage_numbered(self, query: exp.Query) -> tuple[exp.Table, list[Column]]:
        """Stage ``query``'s rows with their arrival order (the query's output order) as
        ``_gm_ord``; returns the staged table and the query's own columns. ``ROW_NUMBER() OVER ()``
        numbers rows as they stream out of the query on every engine (DuckDB runs it as an
        order-preserving streaming window), where a row id would be one engine's."""
        ordinal = exp.alias_(exp.Window(this=exp.RowNumber()), dimensional.ORDINAL, quoted=True)
        staged = self._stage(exp.select("*", ordinal).from_(query.subquery("q", copy=True)))
        columns = [c for c in self.engine.describe(staged) if c[0] != dimensional.ORDINAL]
        return staged, columns

    @staticmethod
    def _numbered(staged: exp.Table) -> exp.Subquery:
        """The staged rows, ``_gm_ord`` included."""
        return exp.select("*").from_(staged).subquery("raw")

    # -- incremental -------------------------------------------------------------------------------

    def append(self, query: exp.Query) -> MaterializeResult:
        if not self.incremental:
            return self._result(self.engine.create_table_as(self.target, query))
        columns = self._columns(query)
        self._evolve(columns)
        names = [c for c, _ in columns]
        rows = writes.select_columns(query.subquery("q", copy=True), names)
        return self._result(self._run([writes.insert(self.table, rows, names)]))

    def merge(self, query: exp.Query, *, after: Sequence[exp.Expr] = ()) -> MaterializeResult:
        """Upsert on the key, NULL-safe; the last row per key in the query's output wins."""
        key = self.model.key
        staged, columns = self._stage_numbered(query)
        self._need("key", key, columns)
        names = [c for c, _ in columns]
        data = [c for c in names if c != writes.OPERATION]
        raw = self._numbered(staged)
        if not self.incremental:
            latest: exp.Query = writes.latest_per_key(raw, names, key, [dimensional.ORDINAL])
            if writes.OPERATION in names:  # a model may emit deletes like a change feed does
                latest = (
                    exp.select(*(exp.column(c, quoted=True) for c in data))
                    .from_(latest.subquery("latest"))
                    .where(
                        exp.NEQ(
                            this=exp.column(writes.OPERATION, quoted=True),
                            expression=exp.Literal.string("delete"),
                        )
                    )
                )
            return self._result(self.engine.create_table_as(self.target, latest))
        self._evolve([c for c in columns if c[0] != writes.OPERATION])
        statements = writes.merge(self.table, raw, names, key, [dimensional.ORDINAL])
        return self._result(self._run([*statements, *after]))

    def by_time(self, query: exp.Query, *, after: Sequence[exp.Expr] = ()) -> MaterializeResult:
        """Delete and insert whole intervals: the missing ones (gaps included), the ``lookback``
        ones before the newest, and the newest (with a window: the missing ones in it); record
        those that are over."""
        model = self.model
        assert model.time is not None
        columns = self._columns(query)
        dtype = self._time_type("time", model.time, columns)
        name = str(self.target)
        if self.incremental:
            done = read_intervals(self.engine, name)
        else:
            forget_intervals(self.engine, name)
            done = []
        if self.window is not None:
            todo = self._in_window(self.window, done)
        else:
            start = self._start(query, model.time, done)
            todo = (
                [] if start is None else pending(start, self.run_time, model.interval, done, model.lookback)
            )
        if self.incremental and self.window is None and model.late_rows != "ignore":
            todo = self._late_rows(query, columns, dtype, done, todo)
        ranges = contiguous(todo)
        if not self.incremental:
            rows = self.engine.create_table_as(
                self.target, dimensional.time_slice(query, model.time, ranges, dtype)
            )
        else:
            self._evolve(columns)
            names = [c for c, _ in columns]
            statements: list[exp.Expr] = []
            for low, high in ranges:
                statements += dimensional.replace_slice(
                    self.table, query, names, model.time, low, high, dtype
                )
            rows = self._run([*statements, *after])
        record_intervals(self.engine, name, complete(todo, self.run_time), model.interval, self.run_id)
        return self._result(rows, todo)

    def _late_rows(
        self,
        query: exp.Query,
        columns: Sequence[Column],
        dtype: str,
        done: list[Span],
        todo: list[Span],
    ) -> list[Span]:
        """Find closed intervals (built before, not due this run) whose rows in the query differ
        from the table's — rows that arrived late, left or changed — by comparing a count and a
        hash per interval; reprocess them (``late_rows: reprocess``) or say so (``warn``).
        Never silent: the run summary names the intervals and the rows the table lacks."""
        model = self.model
        assert model.time is not None
        closed = sorted(set(done) - set(todo))
        if not closed:
            return todo
        held = dict(self.engine.describe(self.table))
        # not columns just added, nor a fact's surrogate keys: a member arriving late changes
        # those, and the fact's own fix-up takes care of it
        lookups = set(model.lookups)
        compared = self._spelled([(n, kind) for n, kind in columns if n in held and n not in lookups])
        low, high = closed[0][0], closed[-1][1]

        def digests(rows: exp.Table | exp.Query) -> dict[datetime, tuple[int, int]]:
            found = self.engine.query(
                dimensional.interval_digests(
                    rows, compared, model.time or "", dtype, model.interval, low, high
                )
            ).to_pylist()
            return {
                utc(row[dimensional.INTERVAL_START]): (
                    int(row[dimensional.INTERVAL_ROWS]),
                    int(row[dimensional.INTERVAL_HASH] or 0),
                )
                for row in found
            }

        fresh, stored = digests(query), digests(self.table)
        changed = [span for span in closed if fresh.get(span[0]) != stored.get(span[0])]
        if not changed:
            return todo
        more = sum(fresh.get(s[0], (0, 0))[0] - stored.get(s[0], (0, 0))[0] for s in changed)
        named = ", ".join(_moment_text(start, model.interval) for start, _ in changed[:5])
        named += f" and {len(changed) - 5} more" if len(changed) > 5 else ""
        what = (
            f"{model.asset}: late rows in {len(changed)} closed interval{'s' * (len(changed) != 1)} "
            f"({named}): {more:+,} rows against the table"
        )
        if model.late_rows == "warn":
            first, last = changed[0][0], changed[-1][1]
            self.events.append(
                f"{what}; not loaded (late_rows: warn): restate them with --restate "
                f"{_moment_text(first, model.interval)}:{_moment_text(last, model.interval)}"
            )
            return todo
        self.events.append(f"{what}; reprocessed (late_rows: reprocess)")
        return sorted({*todo, *changed})

    def by_partition(self, query: exp.Query) -> MaterializeResult:
        """Replace the rows of the declared values this build covers (all of them, or the chosen
        ones) and record those values as built, in one transaction. Building them all first checks
        that no row falls outside the declared values: such rows would be lost silently."""
        model = self.model
        column = model.partition_by
        assert column is not None
        columns = self._columns(query)
        self._need("partition_by", [column], columns)
        keys = {model.partition_key(v): v for v in model.partitions}
        chosen = list(keys) if self.partitions is None else [k for k in keys if k in self.partitions]
        values = [keys[k] for k in chosen]
        if self.partitions is None:
            self._no_strays(query, column)
        name = str(self.target)
        if not self.incremental:
            forget_partitions(self.engine, name)
            rows = self.engine.create_table_as(self.target, partition_sql.only(query, column, values))
        else:
            self._evolve(columns)
            names = [c for c, _ in columns]
            rows = self._run(partition_sql.replace_partitions(self.table, query, names, column, values))
        record_partitions(self.engine, name, chosen, self.run_id)
        if self.partitions is not None:
            self.events.append(f"{self.target}: partitions {', '.join(chosen)}")
        return self._result(rows)

    def _no_strays(self, query: exp.Query, column: str) -> None:
        found = self.engine.query(partition_sql.strays(query, column, self.model.partitions)).to_pylist()
        if not found:
            return
        listed = ", ".join(
            f"{'NULL' if row[column] is None else repr(row[column])} "
            f"({row['rows']} row{'s' * (row['rows'] != 1)})"
            for row in found
        )
        raise self._error(
            f"rows whose {column} is in no declared partition: {listed}",
            hint=f"add the values to partitions: in the header, or filter them out in the SQL "
            f"(WHERE {column} IN (...))",
        )

    def _in_window(self, window: Span, done: list[Span]) -> list[Span]:
        """The intervals starting in ``window`` that are not built yet, from its start whether or
        not rows exist before it, but never before ``start`` nor after the interval holding now:
        an interval with no rows is processed (and recorded) like any other."""
        unit = self.model.interval
        low, high = window
        first = floor(low, unit)
        if first < low:
            first = shift(first, unit)
        if self.model.start:
            first = max(first, floor(self._first(), unit))
        last = floor(self.run_time, unit)
        built = set(done)
        todo: list[Span] = []
        at = first
        while at < high and at <= last:
            following = shift(at, unit)
            if (at, following) not in built:
                todo.append((at, following))
            at = following
        return todo

    def _first(self) -> datetime:
        assert self.model.start is not None
        try:
            return parse_moment(self.model.start)
        except ValueError as err:
            raise self._error(f"start: {err}") from None

    def _start(self, query: exp.Query, time: str, done: list[Span]) -> datetime | None:
        """The first interval: ``start``, else the first recorded one, else the query's earliest row."""
        if self.model.start:
            return self._first()
        if done:
            return done[0][0]
        earliest = exp.select(exp.alias_(exp.Min(this=exp.column(time, quoted=True)), "earliest")).from_(
            query.subquery("q", copy=True)
        )
        value = self.engine.query(earliest).column("earliest")[0].as_py()
        return None if value is None else utc(value)

    # -- snapshot and dimension --------------------------------------------------------------------

    def history(self, *, surrogate: str | None, tracked: Sequence[str] | None) -> MaterializeResult:
        model = self.model
        staged, columns = self._stage_numbered(self.query)
        names = [c for c, _ in columns]
        self._need("key", model.key, columns)
        if surrogate is not None and surrogate in names:
            raise self._error(
                f'surrogate_key: the model already has a column "{surrogate}"; the dimension adds it',
                hint="leave it out of the SELECT, or name another column with surrogate_key:",
            )
        reserved = [c for c in names if c in (n for n, _ in dimensional.HISTORY_COLUMNS)]
        if reserved:
            raise self._error(f"the column {reserved[0]} is kept by the {model.kind} itself; rename it")
        if tracked is None:
            tracked = [c for c in names if c not in model.key]
        else:
            self._need("type2", tracked, columns)
            keyed = [c for c in tracked if c in model.key]
            if keyed:
                raise self._error(f'type2: "{keyed[0]}" is part of the key, which never changes')
        time_type = self._time_type("time", model.time, columns) if model.time else "TIMESTAMPTZ"
        history = dimensional.History(
            target=self.table,
            columns=tuple(self._spelled(columns)),
            key=model.key,
            tracked=tuple(tracked),
            run_time=self.run_time,
            time=model.time,
            time_type=time_type,
            surrogate=surrogate,
        )
        incoming = self._stage(dimensional.incoming(self._numbered(staged), history))
        if not self.incremental:
            rows = self.engine.create_table_as(self.target, dimensional.history_create(incoming, history))
            return self._result(rows)
        added = self._evolve(columns)
        statements = dimensional.history_update(incoming, history)
        if surrogate is not None and added:
            statements.insert(0, dimensional.unknown_member_update(history, added))
        return self._result(self._run(statements))

    # -- fact --------------------------------------------------------------------------------------

    def fact(self) -> MaterializeResult:
        model = self.model
        columns = self._columns(self.query)
        names = [c for c, _ in columns]
        lookups = [self._lookup(column, columns) for column in model.lookups]
        query = dimensional.fact_select(self.query, names, lookups)
        fixes: list[exp.Expr] = [dimensional.fix_unknown(self.table, lookup) for lookup in lookups]
        if model.key:
            result = self.merge(query, after=fixes if self.incremental else ())
        elif model.time:
            result = self.by_time(query, after=fixes if self.incremental else ())
        else:
            result = self._result(self.engine.create_table_as(self.target, query))
        unknown = self._unknown_members(lookups)
        return replace(result, events=[*result.events, unknown]) if unknown else result

    def _unknown_members(self, lookups: Sequence[dimensional.KeyLookup]) -> str | None:
        """How many of the fact's rows point at each lookup's unknown member, for the run summary
        (a relationships check accepts them: ``unknown_members`` is the check that does not)."""
        if not lookups:
            return None
        counts = self.engine.query(
            dimensional.unknown_member_counts(self.table, [lk.column for lk in lookups])
        )
        found = counts.to_pylist()[0]
        if not any(found[lk.column] for lk in lookups):
            return None
        total = found[dimensional.ALL_ROWS]
        listed = ", ".join(f"{lk.column} {found[lk.column]:,}" for lk in lookups)
        return f"{self.model.asset}: rows at the unknown member (-1) of {total:,}: {listed}"

    def _lookup(self, column: str, columns: Sequence[Column]) -> dimensional.KeyLookup:
        lookup = self.model.lookups[column]
        option = f"lookups.{column}"
        names = [c for c, _ in columns]
        if column in names:
            raise self._error(
                f'{option}: the model already has a column "{column}"; the lookup adds it',
                hint="leave it out of the SELECT (keep the natural key columns instead)",
            )
        self._need(f"{option}.on", lookup.on, columns)
        at_type = self._time_type(f"{option}.at", lookup.at, columns) if lookup.at else "TIMESTAMPTZ"
        table = self.physical(lookup.dimension)
        held = [c for c, _ in self.engine.describe(table)]
        wanted = [column, *lookup.on]
        absent = [c for c in wanted if c not in held]
        if absent:
            raise self._error(
                f'{option}: {lookup.dimension} has no column "{absent[0]}"; a lookup finds the '
                f"dimension's surrogate key {column} by its natural key columns of the same names "
                f"({', '.join(lookup.on)})",
                hint=f"{lookup.dimension} has: {', '.join(held)}",
            )
        history = writes.VALID_FROM in held and writes.VALID_TO in held
        if lookup.at and not history:
            raise self._error(
                f"{option}: {lookup.dimension} keeps no history (no {writes.VALID_FROM}), so it cannot be "
                f"looked up at {lookup.at}",
                hint="remove at:, or make it kind: dimension",
            )
        return dimensional.KeyLookup(
            column=column, dimension=table, on=lookup.on, at=lookup.at, at_type=at_type, history=history
        )
