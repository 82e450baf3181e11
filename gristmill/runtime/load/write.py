"""Write one table of a load by its mode (replace, append, merge, delete+insert, scd2); child
tables follow their parent rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from gristmill.engines.base import Engine, Relation
from gristmill.errors import ContractViolation
from gristmill.plan.contracts import SchemaChange, compare
from gristmill.project.specs import LoadSpec
from gristmill.runtime.load.contract import enforce
from gristmill.runtime.load.staging import Shaped, Staged, col, held_columns
from gristmill.runtime.results import LoadResult
from gristmill.sql import nesting, writes

if TYPE_CHECKING:  # pyarrow (with numpy) is imported where it is used
    pass


def write(
    engine: Engine,
    level: Shaped,
    spec: LoadSpec,
    run_id: int,
    result: LoadResult,
    *,
    boundary: exp.Expr | None,
    parent: Shaped | None,
) -> tuple[int, Staged]:
    """Write one table of the load; returns the rows written and the rows it wrote from (what
    the contract kept), which its child tables follow."""
    relation, staged = level.relation, level.staged
    child = parent is not None
    incoming = [(c, t) for c, t in engine.describe(staged) if c != writes.ORDINAL]
    columns = [c for c, _ in incoming]
    cursor = spec.incremental.cursor if spec.incremental and spec.incremental.cursor in columns else None
    order = [] if child else [*([cursor] if cursor else []), writes.ORDINAL]  # last row per key wins
    # Children follow their parent: replaced or appended with it, else replaced per parent row.
    mode = spec.write if not child or spec.write in ("append", "replace") else "by_parent"
    if mode == "by_parent":  # only children of a parent row that landed (not of a CDC delete)
        assert parent is not None
        kept = exp.select("*").from_(writes.aliased(staged, "s")).where(_has_parent(engine, parent, "s"))
        staged = kept.subquery("kept")
    target = engine.table(relation)
    exists = engine.exists(relation)
    changes = (
        compare(
            held_columns(engine, target),
            [c for c in incoming if c[0] != writes.OPERATION],
            dialect=engine.dialect,
            nested=True,
        )
        if exists
        else []
    )
    if not exists or (mode == "replace" and spec.contract == "evolve"):
        result.events.extend(f"{relation}: {change}" for change in changes)
        return _create(engine, relation, staged, columns, spec, mode, order), staged
    _refuse_numeric_row_ids(relation, changes)
    columns, staged = enforce(engine, level, staged, changes, spec, run_id, result, columns)
    if mode == "replace":
        return engine.create_table_as(relation, writes.select_columns(staged, columns)), staged
    if mode == "append" and child and spec.incremental is not None:
        # A parent read again at the boundary keeps its id and is not added twice; its children
        # keep theirs too, so the ones already stored are skipped.
        stored = exp.select(exp.Literal.number(1)).from_(writes.aliased(target, "t"))
        fresh = exp.Not(
            this=exp.Exists(
                this=stored.where(exp.EQ(this=col(nesting.ROW_ID, "t"), expression=col(nesting.ROW_ID, "s")))
            )
        )
        statements: list[exp.Expr] = [
            writes.insert(target, writes.select_columns(staged, columns, "s").where(fresh), columns)
        ]
    elif mode == "append":
        statements = writes.append(target, staged, columns, boundary)
    elif mode == "by_parent":
        assert parent is not None
        statements = _replace_children(engine, target, staged, columns, parent)
    elif mode in ("merge", "delete_insert"):
        statements = writes.merge(target, staged, columns, spec.key, order, keep_all=mode == "delete_insert")
    else:
        statements = writes.scd2(
            target,
            staged,
            [c for c in columns if c != writes.OPERATION],
            spec.key,
            order,
            full_snapshot=spec.incremental is None,
        )
    written = 0
    for statement in statements:
        count = engine.execute(statement)
        if isinstance(statement, exp.Insert):
            written += count or 0
    return written, staged


def clear_stale_children(engine: Engine, written: list[Shaped], spec: LoadSpec) -> None:
    """Child tables this load did not write (no record had that list this time) must not keep
    children that no longer belong: a replace empties them; a merge, delete+insert or scd2
    removes the children of every parent it wrote, and any whose parent is gone."""
    if spec.write == "append":
        return
    root = written[0].relation
    produced = {shaped.relation: shaped for shaped in written}
    family = {
        relation
        for relation, columns in engine.columns().items()
        if relation.schema == root.schema
        and relation.name.startswith(root.name + "__")
        and any(column == nesting.PARENT_ID for column, _ in columns)
    }
    for relation in sorted(family - set(produced), key=lambda r: r.name.count("__")):
        target = engine.table(relation)
        if spec.write == "replace":
            engine.execute(exp.delete(target))
            continue
        # the parent is the longest table of the family (or the root) whose name prefixes this one
        parent = max(
            (r for r in {root, *family} if relation.name.startswith(r.name + "__")), key=lambda r: len(r.name)
        )
        gone: exp.Expr = exp.Not(this=_has_parent(engine, Shaped(parent, engine.table(parent)), "t"))
        if parent in produced:
            arriving = exp.select(col(nesting.ROW_ID)).from_(produced[parent].staged)
            gone = exp.or_(exp.In(this=col(nesting.PARENT_ID, "t"), query=arriving.subquery()), gone)
        engine.execute(exp.delete(writes.aliased(target, "t"), where=gone))


def _refuse_numeric_row_ids(relation: Relation, changes: list[SchemaChange]) -> None:
    """Tables written before row ids were UUIDs hold numeric ids that Parquet had rounded through
    a double, so their links cannot be trusted or extended: they must be rebuilt."""
    for change in changes:
        uuid = change.new is not None and change.new.this == exp.DataType.Type.UUID
        if change.column in (nesting.ROW_ID, nesting.PARENT_ID) and uuid:
            raise ContractViolation(
                f"{relation}: {change.column} holds numeric ids from an earlier Gristmill, which could "
                "link child rows to the wrong parent",
                hint="rebuild the table and its child tables: gristmill run --full-refresh "
                "(an scd2 table: drop it and its child tables first)",
            )


def _has_parent(engine: Engine, parent: Shaped, alias: str) -> exp.Exists:
    """The child row (under ``alias``) has its parent row in the parent's table."""
    match = exp.EQ(this=col(nesting.ROW_ID, "p"), expression=col(nesting.PARENT_ID, alias))
    parents = writes.aliased(engine.table(parent.relation), "p")
    return exp.Exists(this=exp.select(exp.Literal.number(1)).from_(parents).where(match))


def _replace_children(
    engine: Engine, target: exp.Table, staged: Staged, columns: list[str], parent: Shaped
) -> list[exp.Expr]:
    """Children of a merged (or delete+insert, scd2) parent, written after it: the children of
    every arriving parent are replaced, and children whose parent row is gone (a CDC delete, a
    key that now owns fewer rows) are removed."""
    arriving = exp.select(col(nesting.ROW_ID)).from_(parent.staged)
    gone = exp.or_(
        exp.In(this=col(nesting.PARENT_ID, "t"), query=arriving.subquery()),
        exp.Not(this=_has_parent(engine, parent, "t")),
    )
    rows = writes.select_columns(staged, columns)
    return [exp.delete(writes.aliased(target, "t"), where=gone), writes.insert(target, rows, columns)]


def _create(
    engine: Engine,
    relation: Relation,
    staged: Staged,
    columns: list[str],
    spec: LoadSpec,
    mode: str,
    order: list[str],
) -> int:
    data = [c for c in columns if c != writes.OPERATION]
    if mode in ("merge", "scd2") and spec.key:
        query: exp.Select = writes.latest_per_key(staged, columns, spec.key, order)
        if writes.OPERATION in columns:
            query = (
                exp.select(*(col(c) for c in data))
                .from_(query.subquery("latest"))
                .where(exp.NEQ(this=col(writes.OPERATION), expression=exp.Literal.string("delete")))
            )
        if mode == "scd2":
            values = [c for c in data if c not in spec.key]
            query = exp.select(
                *(col(c) for c in data),
                exp.alias_(exp.func("now"), writes.VALID_FROM, quoted=True),
                exp.alias_(exp.cast(exp.null(), "TIMESTAMPTZ"), writes.VALID_TO, quoted=True),
                exp.alias_(exp.true(), writes.IS_CURRENT, quoted=True),
                exp.alias_(writes.row_hash(values), writes.ROW_HASH, quoted=True),
            ).from_(query.subquery("s"))
    else:
        query = writes.select_columns(staged, data)
    return engine.create_table_as(relation, query)
