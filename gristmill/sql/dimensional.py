"""The statements behind the model kinds that keep state in their own tables, as sqlglot ASTs.

- time slices for ``incremental`` models by time: delete one ``[start, end)`` range, insert the
  query's rows in it, and the bookkeeping rows of ``_gristmill.intervals``;
- history (``snapshot`` and ``dimension``): versions with validity ranges, surrogate keys, an
  unknown member, type 1 columns overwritten in place;
- ``fact`` lookups: each surrogate key found in its dimension, at a point in time or current,
  the unknown member (-1) when there is none yet, and the fix-up of those rows later.

Every function is pure: it returns statements for the runtime to execute in the step's
transaction. History columns are the ones source ``scd2`` loads use (see ``writes.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlglot import exp

from gristmill.project.dialect import PROJECT_DIALECT
from gristmill.sql.functions import at_utc, end_of_time, last_moment, md5, row_digest
from gristmill.sql.writes import (
    IS_CURRENT,
    ROW_HASH,
    VALID_FROM,
    VALID_TO,
    aliased,
    col,
    insert,
    row_hash,
    same_key,
)

UNKNOWN_KEY = -1
"""The surrogate key of a dimension's unknown member (and of a fact row with no member yet)."""
UNKNOWN_TEXT = "Unknown"
FIRST_VALID_FROM = datetime(1900, 1, 1, tzinfo=UTC)
"""Where a dimension member's first version starts: facts older than the member still find it."""
ORDINAL = "_gm_ord"
HISTORY_COLUMNS = (
    (VALID_FROM, "TIMESTAMP WITH TIME ZONE"),
    (VALID_TO, "TIMESTAMP WITH TIME ZONE"),
    (IS_CURRENT, "BOOLEAN"),
    (ROW_HASH, "VARCHAR"),
)
_LAST_TO = "_gm_last_to"
_VERSIONS = "_gm_versions"


def _exists(query: exp.Select) -> exp.Exists:
    return exp.Exists(this=query)


def _update(
    target: exp.Table,
    values: dict[str, exp.Expr],
    where: exp.Expr,
    source: exp.Table | exp.Subquery | None = None,
) -> exp.Update:
    """``UPDATE target AS t SET … [FROM source] WHERE …`` (the source carries its own alias)."""
    return exp.Update(
        this=aliased(target, "t"),
        expressions=[exp.EQ(this=col(name), expression=value) for name, value in values.items()],
        from_=exp.From(this=source) if source is not None else None,
        where=exp.Where(this=where),
    )


def column_type(dtype: str) -> exp.DataType:
    """A column's type as the engine described it. Types still travel as the engine's text (the
    project's dialect spells them today); this is the one place that text is read."""
    return exp.DataType.build(dtype, dialect=PROJECT_DIALECT)


# --- time -----------------------------------------------------------------------------------------

TIME_TYPES = ("DATE", "TIMESTAMP")


def is_time_type(dtype: str) -> bool:
    """A DATE or any TIMESTAMP type (with or without time zone, any precision)."""
    upper = dtype.upper()
    return upper == "DATE" or upper.startswith("TIMESTAMP")


def _zoned(dtype: str) -> bool:
    upper = dtype.upper()
    return "TIME ZONE" in upper or upper == "TIMESTAMPTZ"


def moment(value: datetime, dtype: str = "TIMESTAMP WITH TIME ZONE") -> exp.Expr:
    """A UTC datetime as a literal comparable with a column of ``dtype``: a TIMESTAMPTZ for zoned
    columns, else a plain TIMESTAMP holding the UTC wall time (naive columns are read as UTC)."""
    at = value.astimezone(UTC) if value.tzinfo is not None else value
    if _zoned(dtype):
        return exp.cast(exp.Literal.string(at.isoformat(sep=" ")), "TIMESTAMPTZ")
    return exp.cast(exp.Literal.string(at.replace(tzinfo=None).isoformat(sep=" ")), "TIMESTAMP")


def as_utc(value: exp.Expr, dtype: str) -> exp.Expr:
    """A time column as TIMESTAMPTZ: zoned values as they are, naive timestamps and dates as UTC."""
    if _zoned(dtype):
        return value
    return at_utc(exp.cast(value, "TIMESTAMP"))


def within(column: exp.Expr, start: datetime, end: datetime, dtype: str) -> exp.Expr:
    """``column >= start AND column < end``."""
    return exp.and_(
        exp.GTE(this=column.copy(), expression=moment(start, dtype)),
        exp.LT(this=column.copy(), expression=moment(end, dtype)),
    )


def time_slice(
    query: exp.Query, time: str, ranges: Sequence[tuple[datetime, datetime]], dtype: str
) -> exp.Select:
    """``SELECT * FROM (query) WHERE time in any range``; the engine pushes the filter down."""
    conditions = [within(col(time), start, end, dtype) for start, end in ranges]
    where = exp.or_(*conditions) if conditions else exp.false()
    return exp.select("*").from_(query.subquery("q", copy=True)).where(where)


def replace_slice(
    target: exp.Table,
    query: exp.Query,
    columns: Sequence[str],
    time: str,
    start: datetime,
    end: datetime,
    dtype: str,
) -> list[exp.Expr]:
    """Delete the target's rows in ``[start, end)`` and insert the query's rows in it."""
    rows = exp.select(*(col(c) for c in columns)).from_(
        time_slice(query, time, [(start, end)], dtype).subquery("slice")
    )
    return [
        exp.delete(target.copy(), where=within(col(time), start, end, dtype)),
        insert(target, rows, columns),
    ]


INTERVAL_COLUMNS = (
    ("target", "VARCHAR"),
    ("interval_start", "TIMESTAMP WITH TIME ZONE"),
    ("interval_end", "TIMESTAMP WITH TIME ZONE"),
    ("run_id", "BIGINT"),
)


def _for_target(name: str) -> exp.Expr:
    return exp.EQ(this=col("target"), expression=exp.Literal.string(name))


def forget_intervals(
    table: exp.Table, target: str, start: datetime | None = None, end: datetime | None = None
) -> exp.Delete:
    """Delete the recorded intervals of ``target`` (within ``[start, end)`` when given)."""
    where = _for_target(target)
    if start is not None and end is not None:
        where = exp.and_(
            where,
            exp.GTE(this=col("interval_start"), expression=moment(start)),
            exp.LT(this=col("interval_start"), expression=moment(end)),
        )
    return exp.delete(table.copy(), where=where)


def record_intervals(
    table: exp.Table, target: str, first: datetime, last: datetime, unit: str, run_id: int
) -> exp.Insert:
    """One row per interval whose start runs from ``first`` to ``last`` (both aligned, inclusive),
    generated by the engine so a long backfill is one short statement."""
    step = exp.Interval(this=exp.Literal.string("1"), unit=exp.var(unit.upper()))
    series = exp.Table(
        this=exp.GenerateSeries(start=moment(first, "TIMESTAMP"), end=moment(last, "TIMESTAMP"), step=step),
        alias=exp.TableAlias(this=exp.to_identifier("g"), columns=[exp.to_identifier("s")]),
    )
    start = col("s")
    rows = exp.select(
        exp.Literal.string(target),
        as_utc(start, "TIMESTAMP"),
        as_utc(exp.Add(this=start.copy(), expression=step.copy()), "TIMESTAMP"),
        exp.cast(exp.Literal.number(run_id), "BIGINT"),
    ).from_(series)
    return insert(table, rows, [name for name, _ in INTERVAL_COLUMNS])


def read_intervals(table: exp.Table, target: str) -> exp.Select:
    return (
        exp.select(col("interval_start"), col("interval_end"))
        .from_(table.copy())
        .where(_for_target(target))
        .order_by(col("interval_start"))
    )


# --- history: snapshot and dimension --------------------------------------------------------------


@dataclass(frozen=True)
class History:
    """How a history table (snapshot or dimension) is kept.

    ``columns`` are the query's (name, type) pairs; ``tracked`` the columns whose change adds a
    version (hashed into ``_gm_row_hash``); every other non-key column is type 1, overwritten on
    all versions of its key. A change takes effect at the row's ``time`` column when set, else at
    ``run_time``. A dimension adds a ``surrogate`` key, an unknown member, and starts each member's
    first version at ``FIRST_VALID_FROM``."""

    target: exp.Table
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...]
    tracked: tuple[str, ...]
    run_time: datetime
    time: str | None = None
    time_type: str = "TIMESTAMP WITH TIME ZONE"
    surrogate: str | None = None

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.columns]

    @property
    def type1(self) -> list[str]:
        return [c for c in self.names if c not in self.key and c not in self.tracked]

    @property
    def stored(self) -> list[str]:
        """The table's columns, in order."""
        lead = [self.surrogate] if self.surrogate else []
        return [*lead, *self.names, *(name for name, _ in HISTORY_COLUMNS)]

    def effective(self, alias: str) -> exp.Expr:
        """When the incoming row's change takes effect: its ``time`` (the run's time when NULL)."""
        if self.time:
            return exp.func("coalesce", as_utc(col(self.time, alias), self.time_type), moment(self.run_time))
        return moment(self.run_time)

    def _members(self, alias: str | None) -> exp.Expr | None:
        """Excludes the unknown member of a dimension."""
        if not self.surrogate:
            return None
        return exp.NEQ(this=col(self.surrogate, alias), expression=exp.Literal.number(UNKNOWN_KEY))


def incoming(staged: exp.Table | exp.Subquery, history: History) -> exp.Select:
    """One row per key from the staged query result (the last by ``time``, then by arrival in
    ``_gm_ord``), with the hash of its tracked columns."""
    order = [*([history.time] if history.time else []), ORDINAL]
    window = exp.Window(
        this=exp.RowNumber(),
        partition_by=[col(k) for k in history.key],
        order=exp.Order(expressions=[exp.Ordered(this=col(o), desc=True) for o in order]),
    )
    latest = (
        exp.select(*(col(c) for c in history.names))
        .from_(staged.copy())
        .qualify(exp.EQ(this=window, expression=exp.Literal.number(1)))
    )
    # with nothing tracked (a type 1 dimension) every version hashes alike: nothing adds a version
    hashed = row_hash(history.tracked) if history.tracked else md5(exp.Literal.string(""))
    return exp.select(*(col(c) for c in history.names), exp.alias_(hashed, ROW_HASH, quoted=True)).from_(
        latest.subquery("latest")
    )


def _key_order(key: Sequence[str], alias: str | None = None) -> exp.Order:
    return exp.Order(expressions=[exp.Ordered(this=col(k, alias), nulls_first=False) for k in key])


def _unknown_value(history: History, name: str, dtype: str) -> exp.Expr:
    """The unknown member's value: 'Unknown' in a text column (not the natural key), else NULL."""
    text = dtype.upper() in ("VARCHAR", "TEXT", "STRING") and name not in history.key
    value = exp.Literal.string(UNKNOWN_TEXT) if text else exp.null()
    return exp.cast(value, column_type(dtype))


def unknown_member_update(history: History, columns: Sequence[str]) -> exp.Update:
    """Fill columns just added to a dimension on its unknown member."""
    assert history.surrogate is not None
    types = dict(history.columns)
    return _update(
        history.target,
        {name: _unknown_value(history, name, types[name]) for name in columns},
        exp.EQ(this=col(history.surrogate, "t"), expression=exp.Literal.number(UNKNOWN_KEY)),
    )


def _unknown_member(history: History) -> exp.Select:
    assert history.surrogate is not None
    values: list[exp.Expr] = [
        exp.alias_(exp.cast(exp.Literal.number(UNKNOWN_KEY), "BIGINT"), history.surrogate, quoted=True)
    ]
    for name, dtype in history.columns:
        values.append(exp.alias_(_unknown_value(history, name, dtype), name, quoted=True))
    values += [
        exp.alias_(moment(FIRST_VALID_FROM), VALID_FROM, quoted=True),
        exp.alias_(exp.cast(exp.null(), "TIMESTAMPTZ"), VALID_TO, quoted=True),
        exp.alias_(exp.true(), IS_CURRENT, quoted=True),
        exp.alias_(exp.cast(exp.null(), "VARCHAR"), ROW_HASH, quoted=True),
    ]
    return exp.select(*values)


def history_create(source: exp.Table | exp.Subquery, history: History) -> exp.Query:
    """The first build: one current version per key (for a dimension, numbered in key order,
    valid from ``FIRST_VALID_FROM``, plus the unknown member)."""
    s = aliased(source, "s")
    lead: list[exp.Expr] = []
    valid_from = history.effective("s")
    if history.surrogate:
        number = exp.Window(this=exp.RowNumber(), order=_key_order(history.key, "s"))
        lead = [exp.alias_(exp.cast(number, "BIGINT"), history.surrogate, quoted=True)]
        valid_from = moment(FIRST_VALID_FROM)
    rows = exp.select(
        *lead,
        *(col(c, "s") for c in history.names),
        exp.alias_(valid_from, VALID_FROM, quoted=True),
        exp.alias_(exp.cast(exp.null(), "TIMESTAMPTZ"), VALID_TO, quoted=True),
        exp.alias_(exp.true(), IS_CURRENT, quoted=True),
        col(ROW_HASH, "s"),
    ).from_(s)
    if history.surrogate:
        return exp.union(rows, _unknown_member(history), distinct=False)
    return rows


def history_update(source: exp.Table | exp.Subquery, history: History) -> list[exp.Expr]:
    """A later build, in order: overwrite type 1 columns on every version of a key; close the
    current version of a key whose tracked columns changed (at the change's effective time, if
    it is later than the version's start) or that is gone from the query (at ``run_time``);
    insert a new current version for every key without one (new, changed or back again)."""
    target = history.target
    members = history._members
    statements: list[exp.Expr] = []
    if history.type1:
        differs = exp.or_(*(exp.NullSafeNEQ(this=col(c, "t"), expression=col(c, "s")) for c in history.type1))
        statements.append(
            _update(
                target,
                {c: col(c, "s") for c in history.type1},
                exp.and_(*filter(None, [members("t"), same_key(history.key, "s", "t"), differs])),
                aliased(source, "s"),
            )
        )
    changed = exp.and_(
        *filter(
            None,
            [
                col(IS_CURRENT, "t"),
                members("t"),
                same_key(history.key, "s", "t"),
                exp.NullSafeNEQ(this=col(ROW_HASH, "t"), expression=col(ROW_HASH, "s")),
                exp.GT(this=history.effective("s"), expression=col(VALID_FROM, "t")),
            ],
        )
    )
    statements.append(
        _update(
            target,
            {VALID_TO: history.effective("s"), IS_CURRENT: exp.false()},
            changed,
            aliased(source, "s"),
        )
    )
    gone = _exists(
        exp.select(exp.Literal.number(1)).from_(aliased(source, "s")).where(same_key(history.key, "s", "t"))
    ).not_()
    now = moment(history.run_time)
    later = exp.If(
        this=exp.GT(this=col(VALID_FROM, "t"), expression=now.copy()),
        true=col(VALID_FROM, "t"),
    )
    closed_at = exp.Case(ifs=[later], default=now)
    statements.append(
        _update(
            target,
            {VALID_TO: closed_at, IS_CURRENT: exp.false()},
            exp.and_(*filter(None, [col(IS_CURRENT, "t"), members("t"), gone])),
        )
    )
    statements.append(_new_versions(source, history))
    return statements


def _new_versions(source: exp.Table | exp.Subquery, history: History) -> exp.Insert:
    target = history.target
    members = history._members
    has_current = _exists(
        exp.select(exp.Literal.number(1))
        .from_(aliased(target, "t"))
        .where(exp.and_(*filter(None, [col(IS_CURRENT, "t"), members("t"), same_key(history.key, "s", "t")])))
    ).not_()
    earlier = (
        exp.select(
            *(col(k) for k in history.key),
            exp.alias_(exp.Max(this=col(VALID_TO)), _LAST_TO, quoted=True),
            exp.alias_(exp.Count(this=exp.Star()), _VERSIONS, quoted=True),
        )
        .from_(target.copy())
        .group_by(*(col(k) for k in history.key))
    )
    member_filter = members(None)
    if member_filter is not None:
        earlier = earlier.where(member_filter)
    effective = history.effective("s")
    after_last = exp.If(
        this=exp.GT(this=col(_LAST_TO, "p"), expression=effective.copy()), true=col(_LAST_TO, "p")
    )
    ifs = [after_last]
    if history.surrogate:  # a member's first version reaches back to the floor
        ifs.insert(
            0,
            exp.If(
                this=exp.Is(this=col(_VERSIONS, "p"), expression=exp.null()), true=moment(FIRST_VALID_FROM)
            ),
        )
    valid_from = exp.Case(ifs=ifs, default=effective)
    lead: list[exp.Expr] = []
    if history.surrogate:
        top = (
            exp.select(exp.func("coalesce", exp.Max(this=col(history.surrogate)), exp.Literal.number(0)))
            .from_(target.copy())
            .where(exp.GT(this=col(history.surrogate), expression=exp.Literal.number(0)))
        )
        number = exp.Window(this=exp.RowNumber(), order=_key_order(history.key, "s"))
        lead = [
            exp.alias_(
                exp.cast(exp.Add(this=top.subquery(), expression=number), "BIGINT"),
                history.surrogate,
                quoted=True,
            )
        ]
    rows = (
        exp.select(
            *lead,
            *(col(c, "s") for c in history.names),
            exp.alias_(valid_from, VALID_FROM, quoted=True),
            exp.alias_(exp.cast(exp.null(), "TIMESTAMPTZ"), VALID_TO, quoted=True),
            exp.alias_(exp.true(), IS_CURRENT, quoted=True),
            col(ROW_HASH, "s"),
        )
        .from_(aliased(source, "s"))
        .join(earlier.subquery("p"), on=same_key(history.key, "s", "p"), join_type="left")
        .where(has_current)
    )
    return insert(target, rows, history.stored)


# --- facts ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyLookup:
    """A fact's surrogate key ``column``, found in ``dimension`` by the natural key ``on`` (the
    same column names in the fact and the dimension), valid at the fact's ``at`` column when set."""

    column: str
    dimension: exp.Table
    on: tuple[str, ...]
    at: str | None = None
    at_type: str = "TIMESTAMP WITH TIME ZONE"
    history: bool = True
    """The dimension keeps versions (``_gm_valid_from``…); else every row is current."""


def _members_of(lookup: KeyLookup) -> exp.Subquery:
    """The dimension's rows a lookup may find: every version for a point-in-time lookup, else the
    latest version of each member (its current one, or its last if it has left the source)."""
    rows = exp.select("*").from_(lookup.dimension.copy())
    rows = rows.where(exp.NEQ(this=col(lookup.column), expression=exp.Literal.number(UNKNOWN_KEY)))
    if lookup.history and lookup.at is None:
        window = exp.Window(
            this=exp.RowNumber(),
            partition_by=[col(k) for k in lookup.on],
            order=exp.Order(expressions=[exp.Ordered(this=col(VALID_FROM), desc=True)]),
        )
        rows = rows.qualify(exp.EQ(this=window, expression=exp.Literal.number(1)))
    return rows.subquery("d")


def _match(lookup: KeyLookup, fact: str, dimension: str) -> exp.Expr:
    """Key equality (NULL-safe) and, at a point in time, ``valid_from <= at < valid_to``.

    Only comparisons, so the engine plans a hash join on the key with the range as a residual:
    the open end is ``coalesce(valid_to, infinity)``, not ``valid_to IS NULL OR …`` — an OR in a
    join condition made DuckDB fall back to a nested-loop join, quadratic in the fact's rows
    (78 s for 600k lineitems with three lookups, against under a second as a hash join)."""
    condition = same_key(lookup.on, fact, dimension)
    if lookup.at is None or not lookup.history:
        return condition
    at = as_utc(col(lookup.at, fact), lookup.at_type)
    end = exp.func("coalesce", col(VALID_TO, dimension), end_of_time())
    # an event at +infinity is still before an open end, as `valid_to IS NULL` said
    finite = exp.func("least", at.copy(), last_moment())
    return exp.and_(
        condition,
        exp.LTE(this=col(VALID_FROM, dimension), expression=at),
        exp.LT(this=finite, expression=end),
    )


def fact_select(query: exp.Query, columns: Sequence[str], lookups: Sequence[KeyLookup]) -> exp.Select:
    """The query's columns plus each lookup's surrogate key (-1 when the dimension has no row)."""
    select = exp.select(*(col(c, "q") for c in columns)).from_(query.subquery("q", copy=True))
    for index, lookup in enumerate(lookups):
        alias = f"d{index}"
        found = _members_of(lookup)
        found.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
        select = select.join(found, on=_match(lookup, "q", alias), join_type="left")
        key = exp.func("coalesce", col(lookup.column, alias), exp.Literal.number(UNKNOWN_KEY))
        select = select.select(exp.alias_(exp.cast(key, "BIGINT"), lookup.column, quoted=True), copy=False)
    return select


ALL_ROWS = "_gm_all_rows"


def unknown_member_counts(target: exp.Table, columns: Sequence[str]) -> exp.Select:
    """One row: the table's rows (``_gm_all_rows``) and, per surrogate key column, how many
    point at the unknown member."""
    unknown = [
        exp.alias_(
            exp.Filter(
                this=exp.Count(this=exp.Star()),
                expression=exp.Where(this=exp.EQ(this=col(c), expression=exp.Literal.number(UNKNOWN_KEY))),
            ),
            c,
            quoted=True,
        )
        for c in columns
    ]
    return exp.select(exp.alias_(exp.Count(this=exp.Star()), ALL_ROWS, quoted=True), *unknown).from_(
        target.copy()
    )


def fix_unknown(target: exp.Table, lookup: KeyLookup) -> exp.Update:
    """Set the surrogate key of fact rows still at the unknown member once their member exists."""
    unknown = exp.EQ(this=col(lookup.column, "t"), expression=exp.Literal.number(UNKNOWN_KEY))
    return _update(
        target,
        {lookup.column: col(lookup.column, "d")},
        exp.and_(unknown, _match(lookup, "t", "d")),
        _members_of(lookup),
    )


# --- late rows in closed intervals ----------------------------------------------------------------

INTERVAL_START, INTERVAL_ROWS, INTERVAL_HASH = "_gm_start", "_gm_rows", "_gm_hash"


def _hashable(name: str, dtype: str) -> exp.Expr:
    """A column as hashed for comparison, in the query's type (a table column widened since
    hashes alike); floating-point values as FLOAT, so that the last bits of a sum the engine adds
    up in another order do not count as a change."""
    if dtype.upper() in ("DOUBLE", "FLOAT", "REAL", "FLOAT8", "FLOAT4"):
        return exp.cast(col(name), "FLOAT")
    try:
        return exp.cast(col(name), column_type(dtype))
    except Exception:  # a type sqlglot cannot spell: hash the value as it is
        return col(name)


def interval_digests(
    rows: exp.Table | exp.Query,
    columns: Sequence[tuple[str, str]],
    time: str,
    dtype: str,
    unit: str,
    start: datetime,
    end: datetime,
) -> exp.Select:
    """Per interval in ``[start, end)``: its UTC start, its row count and a sum of row hashes —
    the same for the query and for the table as long as no row arrived, left or changed."""
    source = rows.subquery("r", copy=True) if isinstance(rows, exp.Query) else rows.copy()
    bucket = exp.TimestampTrunc(this=at_utc(as_utc(col(time), dtype)), unit=exp.var(unit.upper()))
    digest = row_digest(*(_hashable(name, kind) for name, kind in columns))
    return (
        exp.select(
            exp.alias_(bucket, INTERVAL_START, quoted=True),
            exp.alias_(exp.Count(this=exp.Star()), INTERVAL_ROWS, quoted=True),
            exp.alias_(exp.Sum(this=exp.cast(digest, "HUGEINT")), INTERVAL_HASH, quoted=True),
        )
        .from_(source)
        .where(within(col(time), start, end, dtype))
        .group_by(exp.Literal.number(1))
    )
