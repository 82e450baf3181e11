"""The statements behind each write mode, as sqlglot ASTs over a staged table.

Every function returns the statements to run, in order, inside the load's transaction:
``append`` (dropping rows already loaded at an incremental boundary), ``merge`` (upsert on a
key, NULL-safe, last row per key wins, CDC deletes honoured), ``delete_insert`` and ``scd2``
(history with validity ranges). ``replace`` is the engine's own ``create_table_as``."""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from gristmill.sql.functions import md5, struct_of, to_json

VALID_FROM = "_gm_valid_from"
VALID_TO = "_gm_valid_to"
IS_CURRENT = "_gm_is_current"
ROW_HASH = "_gm_row_hash"
OPERATION = "_gm_op"
ORDINAL = "_gm_ord"
SCD2_COLUMNS = (
    (VALID_FROM, "TIMESTAMP WITH TIME ZONE"),
    (VALID_TO, "TIMESTAMP WITH TIME ZONE"),
    (IS_CURRENT, "BOOLEAN"),
    (ROW_HASH, "VARCHAR"),
)


def col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


def aliased(table: exp.Table | exp.Subquery, alias: str) -> exp.Table | exp.Subquery:
    aliased = table.copy()
    aliased.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
    return aliased


def same_key(key: Sequence[str], left: str, right: str) -> exp.Expr:
    """NULL-safe equality on every key column (a NULL key matches a NULL key)."""
    return exp.and_(*(exp.NullSafeEQ(this=col(k, left), expression=col(k, right)) for k in key))


def select_columns(
    stage: exp.Table | exp.Subquery, columns: Sequence[str], alias: str | None = None
) -> exp.Select:
    source = aliased(stage, alias) if alias else stage
    return exp.select(*(col(c, alias) for c in columns)).from_(source)


def latest_per_key(
    stage: exp.Table | exp.Subquery, columns: Sequence[str], key: Sequence[str], order: Sequence[str]
) -> exp.Select:
    """One row per key: the last by ``order`` (cursor, then arrival)."""
    window = exp.Window(
        this=exp.RowNumber(),
        partition_by=[col(k) for k in key],
        order=exp.Order(expressions=[exp.Ordered(this=col(o), desc=True) for o in order]),
    )
    return (
        exp.select(*(col(c) for c in columns))
        .from_(stage)
        .qualify(exp.EQ(this=window, expression=exp.Literal.number(1)))
    )


def insert(target: exp.Table, query: exp.Query, columns: Sequence[str]) -> exp.Insert:
    return exp.insert(query, target, columns=[exp.to_identifier(c, quoted=True) for c in columns])


def append(
    target: exp.Table,
    stage: exp.Table | exp.Subquery,
    columns: Sequence[str],
    boundary: exp.Expr | None = None,
) -> list[exp.Expr]:
    """Insert the staged rows. With an incremental ``boundary`` (rows at or past it were read
    again), rows identical to ones already in the table past that boundary are not doubled."""
    query: exp.Query = select_columns(stage, columns)
    if boundary is not None:
        seen = select_columns(target, columns).where(boundary)
        query = exp.Except(this=query, expression=seen, distinct=False)
    return [insert(target, query, columns)]


def merge(
    target: exp.Table,
    stage: exp.Table | exp.Subquery,
    columns: Sequence[str],
    key: Sequence[str],
    order: Sequence[str],
    *,
    keep_all: bool = False,
) -> list[exp.Expr]:
    """Upsert on ``key``: delete the rows whose key arrives, insert the arriving rows.

    ``keep_all`` (delete+insert) inserts every staged row; otherwise only the last per key.
    Staged rows whose ``_gm_op`` is 'delete' remove their key and are not inserted."""
    has_op = OPERATION in columns
    data_columns = [c for c in columns if c != OPERATION]
    target_alias = aliased(target, "t")
    arriving = exp.Exists(
        this=exp.select(exp.Literal.number(1)).from_(aliased(stage, "s")).where(same_key(key, "s", "t"))
    )
    statements: list[exp.Expr] = [exp.delete(target_alias, where=arriving)]
    rows: exp.Select = (
        select_columns(stage, data_columns) if keep_all else latest_per_key(stage, columns, key, order)
    )
    if has_op:
        rows = (
            exp.select(*(col(c) for c in data_columns))
            .from_(rows.subquery("latest"))
            .where(exp.NEQ(this=col(OPERATION), expression=exp.Literal.string("delete")))
        )
    statements.append(insert(target, rows, data_columns))
    return statements


def row_hash(columns: Sequence[str]) -> exp.Expr:
    """A hash of a row's values, to notice a change in any column."""
    return md5(to_json(struct_of([(c, col(c)) for c in columns])))


def scd2(
    target: exp.Table,
    stage: exp.Table | exp.Subquery,
    columns: Sequence[str],
    key: Sequence[str],
    order: Sequence[str],
    *,
    full_snapshot: bool,
) -> list[exp.Expr]:
    """History: close the current version of every key whose values changed (or, for a full
    snapshot, that disappeared) and insert a new current version. ``now()`` is the transaction
    time, so one load stamps all its rows alike."""
    values = [c for c in columns if c not in key]
    latest = latest_per_key(stage, columns, key, order)
    hashed = exp.select(
        *(col(c) for c in columns), exp.alias_(row_hash(values), ROW_HASH, quoted=True)
    ).from_(latest.subquery("latest"))
    incoming = hashed.subquery("s")
    now = exp.CurrentTimestamp()
    changed = exp.Exists(
        this=exp.select(exp.Literal.number(1))
        .from_(incoming.copy())
        .where(
            exp.and_(same_key(key, "s", "t"), exp.NEQ(this=col(ROW_HASH, "s"), expression=col(ROW_HASH, "t")))
        )
    )
    gone = exp.Exists(
        this=exp.select(exp.Literal.number(1)).from_(incoming.copy()).where(same_key(key, "s", "t"))
    ).not_()
    close_when = exp.or_(changed, gone) if full_snapshot else changed
    updated = target.copy()
    updated.set("alias", exp.TableAlias(this=exp.to_identifier("t")))
    close = exp.update(
        updated,
        {VALID_TO: now, IS_CURRENT: exp.false()},
        where=exp.and_(col(IS_CURRENT, "t"), close_when),
    )
    unchanged = exp.Exists(
        this=exp.select(exp.Literal.number(1))
        .from_(aliased(target, "t"))
        .where(
            exp.and_(
                col(IS_CURRENT, "t"),
                same_key(key, "s", "t"),
                exp.EQ(this=col(ROW_HASH, "s"), expression=col(ROW_HASH, "t")),
            )
        )
    ).not_()
    new_rows = (
        exp.select(
            *(col(c, "s") for c in columns),
            exp.alias_(now, VALID_FROM, quoted=True),
            exp.alias_(exp.cast(exp.null(), "TIMESTAMPTZ"), VALID_TO, quoted=True),
            exp.alias_(exp.true(), IS_CURRENT, quoted=True),
            col(ROW_HASH, "s"),
        )
        .from_(incoming.copy())
        .where(unchanged)
    )
    return [close, insert(target, new_rows, [*columns, VALID_FROM, VALID_TO, IS_CURRENT, ROW_HASH])]
