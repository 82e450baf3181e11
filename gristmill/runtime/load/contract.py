"""Hold arriving rows to a table's schema contract: evolve widens the table losslessly, freeze
refuses any change, discard and quarantine set aside the values and rows that do not fit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from gristmill.engines.base import Engine, Relation
from gristmill.errors import ContractViolation
from gristmill.plan.contracts import (
    SchemaChange,
    evolved,
    is_integer,
    kind_of,
    list_element,
    may_fit,
    struct_fields,
)
from gristmill.project.specs import LoadSpec
from gristmill.runtime.build.quarantine import copy_to_quarantine
from gristmill.runtime.load.staging import Shaped, Staged, col, held_columns
from gristmill.runtime.results import LoadResult
from gristmill.sql import nesting, writes
from gristmill.sql.functions import list_transform, struct_field
from gristmill.sql.paths import any_at
from gristmill.sql.value_checks import json_text, json_type, try_cast

if TYPE_CHECKING:  # pyarrow (with numpy) is imported where it is used
    pass


def enforce(
    engine: Engine,
    level: Shaped,
    staged: Staged,
    changes: list[SchemaChange],
    spec: LoadSpec,
    run_id: int,
    result: LoadResult,
    columns: list[str],
) -> tuple[list[str], Staged]:
    """Apply the contract to the schema changes; returns the columns to write and the rows to write."""
    relation = level.relation
    # An arriving type that no arriving value has (lists empty in every row, a field NULL in
    # every row: DuckDB calls it VARCHAR or JSON) says nothing: the rows take the held type.
    typeless = [c for c in changes if c.kind == "type_drift" and not _arriving_values(engine, staged, c)]
    changes = [c for c in changes if c not in typeless]
    cast = {c.column for c in typeless}
    if not changes:
        return columns, _conformed(engine, relation, staged, cast)
    # A type the table took from lists that were empty (or values that were NULL) in every row
    # so far was never seen in a value: the first real type replaces it (see _rebuild).
    unseen = [c for c in changes if c.kind == "type_drift" and not _stored_values(engine, relation, c)]
    if spec.contract == "freeze":
        named = _first_records(engine, staged, changes)
        note = (
            " (the table holds no value there yet: it was landed from empty lists or NULLs)" if unseen else ""
        )
        raise ContractViolation(
            f"{relation}: the schema changed under contract freeze: {named}{note}",
            hint="change the contract to evolve, or fix the source",
        )
    if spec.contract == "evolve":
        _evolve(engine, relation, staged, changes, unseen, result)
        return columns, _conformed(engine, relation, staged, cast)
    return _set_unfit_aside(engine, level, staged, changes, spec, run_id, result, columns)


def _evolve(
    engine: Engine,
    relation: Relation,
    staged: Staged,
    changes: list[SchemaChange],
    unseen: list[SchemaChange],
    result: LoadResult,
) -> None:
    """Contract evolve: widen the table for lossless changes (new columns, wider types, new struct
    fields); a type only ever seen empty takes the first real one; any other drift is refused."""
    rebuilt = {c.column for c in unseen}
    drift = [c for c in changes if c.kind == "type_drift" and c not in unseen]
    if drift:
        raise ContractViolation(
            f"{relation}: {_first_records(engine, staged, drift)}",
            hint="evolve applies only lossless changes; use contract: quarantine to set the rows that do "
            "not fit aside, or --full-refresh with write: replace to rebuild with the new type",
        )
    target = engine.table(relation)
    nested_columns: list[str] = []  # widened once each, to a type that holds every change
    for change in changes:
        if change.column in rebuilt:
            result.events.append(
                f"{relation}: {change.path} takes the type of its first values, {change.new_text} "
                f"(held only empty lists or NULLs as {change.old_text}): table rewritten"
            )
            continue
        if change.field:
            if change.kind != "missing_column" and change.column not in nested_columns:
                nested_columns.append(change.column)
        elif change.kind == "new_column":
            engine.execute(
                exp.Alter(
                    this=target.copy(),
                    kind="TABLE",
                    actions=[
                        exp.ColumnDef(
                            this=exp.to_identifier(change.column, quoted=True),
                            kind=change.new.copy() if change.new else None,
                        )
                    ],
                )
            )
        elif change.kind == "widened":
            assert change.new is not None
            _retype(engine, target, change.column, change.new)
        result.events.append(f"{relation}: {change}")
    if nested_columns or rebuilt:
        held = dict(held_columns(engine, target))
        incoming = dict(engine.describe(staged))
        for column in nested_columns:
            _retype(engine, target, column, evolved(held[column], incoming[column]))
        if rebuilt:
            _rebuild(engine, relation, {c: evolved(held[c], incoming[c]) for c in rebuilt})


def _set_unfit_aside(
    engine: Engine,
    level: Shaped,
    staged: Staged,
    changes: list[SchemaChange],
    spec: LoadSpec,
    run_id: int,
    result: LoadResult,
    columns: list[str],
) -> tuple[list[str], Staged]:
    """Contracts discard and quarantine keep the table's schema and set aside what does not fit it;
    returns the columns to write and the rows to write."""
    relation = level.relation
    if not isinstance(staged, exp.Table):
        staged = engine.stage(exp.select("*").from_(staged))  # rows are deleted from it below
    aside = spec.contract == "quarantine"
    verb = "quarantined" if aside else "discarded"
    keep = [
        c
        for c in columns
        if not any(ch.kind == "new_column" and not ch.field and ch.column == c for ch in changes)
    ]
    for change in changes:
        condition = _carries(change)
        if condition is None:  # a column or field no longer delivered: kept, NULL
            result.events.append(f"{relation}: {change}")
            continue
        new = change.kind == "new_column"
        what = "column" if not change.field else "field"
        reason = (
            f"new {what} {change.path} ({change.new_text}) is not in the table"
            if new
            else f"{change.path}: value does not fit {change.old_text}"
        )
        # A new column's or field's values are set aside and the row publishes without them; a
        # row whose value does not fit the held type is set aside whole.
        moved = _set_aside(engine, level, staged, columns, condition, reason, run_id, aside, delete=not new)
        result.events.append(f"{relation}: {change}: {moved} {'value(s)' if new else 'row(s)'} {verb}")
        if aside:
            result.rows_quarantined += moved
        else:
            result.rows_discarded += moved
    held = dict(held_columns(engine, engine.table(relation)))
    arriving = dict(engine.describe(staged))
    projection = [
        exp.alias_(_landed(col(c), arriving.get(c), held[c]) if c in held else col(c), c, quoted=True)
        for c in keep
    ]
    return keep, engine.stage(exp.select(*projection, col(writes.ORDINAL)).from_(staged))


def _landed(value: exp.Expr, new: exp.DataType | None, held: exp.DataType) -> exp.Expr:
    """A value as the held column stores it; a JSON string lands in a text column as its text
    (a cast would keep the quotes)."""
    if new is None:
        return exp.cast(value, held)
    if kind_of(new) == "json" and kind_of(held) == "text":
        return json_text(value)
    return _reshaped(value, new, held, 0)


def _reshaped(value: exp.Expr, new: exp.DataType, held: exp.DataType, depth: int) -> exp.Expr:
    """A nested value rebuilt in the held type field by field: DuckDB refuses to cast a struct
    that shares no field with the target ("must have at least one matching member"), which is
    what arrives when every field of an object is new and the held ones are no longer sent."""
    new_fields, held_fields = struct_fields(new), struct_fields(held)
    if new_fields is not None and held_fields is not None:
        incoming = dict(new_fields)
        members = [
            exp.PropertyEQ(
                this=exp.to_identifier(name, quoted=True),
                expression=_reshaped(struct_field(value, name), incoming[name], kind, depth)
                if name in incoming
                else exp.cast(exp.null(), kind),
            )
            for name, kind in held_fields
        ]
        built = exp.Struct(expressions=members)
        return exp.If(this=exp.Is(this=value, expression=exp.null()), true=exp.null(), false=built)
    new_element, held_element = list_element(new), list_element(held)
    if new_element is not None and held_element is not None:
        name = f"_gm_c{depth}"
        inner = _reshaped(exp.column(name), new_element, held_element, depth + 1)
        return list_transform(value, name, inner)
    return exp.cast(value, held)  # a copy: the engine's types may be shared


def _retype(engine: Engine, target: exp.Table, column: str, kind: exp.DataType) -> None:
    engine.execute(
        exp.Alter(
            this=target.copy(),
            kind="TABLE",
            actions=[exp.AlterColumn(this=exp.to_identifier(column, quoted=True), dtype=kind.copy())],
        )
    )


def _stored_values(engine: Engine, relation: Relation, change: SchemaChange) -> bool:
    """Does any stored row hold a value where ``change`` is (at any depth, in any element)?"""
    assert change.old is not None
    held = exp.select(exp.Literal.number(1)).from_(engine.table(relation))
    found = held.where(any_at(col(change.column), change.field, _present)).limit(1)
    return engine.row(found) is not None


def _arriving_values(engine: Engine, staged: Staged, change: SchemaChange) -> bool:
    """Does any arriving row hold a value where ``change`` is (at any depth, in any element)?"""
    found = (
        exp.select(exp.Literal.number(1))
        .from_(staged)
        .where(any_at(col(change.column), change.field, _present))
    )
    return engine.row(found.limit(1)) is not None


def _rebuild(engine: Engine, relation: Relation, types: dict[str, exp.DataType]) -> None:
    """Give columns types the engine will not ALTER to (DuckLake changes a type only to a wider
    one of its kind): the table is written again with those columns cast. They hold only NULLs
    and empty lists where the type changes, so no value is lost or changed. (Adding, dropping and
    renaming columns in one transaction broke DuckLake's catalog, hence the rewrite.)"""
    target = engine.table(relation)
    projection = [
        exp.alias_(exp.cast(col(c), types[c]), c, quoted=True) if c in types else col(c)
        for c, _ in engine.describe(target)
    ]
    engine.create_table_as(relation, exp.select(*projection).from_(target))


def _present(value: exp.Expr) -> exp.Expr:
    return exp.Not(this=exp.Is(this=value, expression=exp.null()))


def _carries(change: SchemaChange) -> exp.Expr | None:
    """The rows a change shows in: a value in a new column or field, or a value that does not fit
    the held type (at any depth, in any element of a list); None for a missing column."""
    if change.kind == "missing_column":
        return None
    if change.kind == "new_column":
        return any_at(col(change.column), change.field, _present)
    assert change.old is not None and change.new is not None
    old, new = change.old, change.new
    if any(struct_fields(t) is not None or list_element(t) is not None for t in (old, new)):
        return any_at(col(change.column), change.field, _present)  # an object where a value was: never fits
    top = not change.field

    def unfit(value: exp.Expr) -> exp.Expr:
        return exp.and_(_present(value), exp.not_(_fits(value, old, new, top=top)))

    return any_at(col(change.column), change.field, unfit)


def _fits(value: exp.Expr, held: exp.DataType, new: exp.DataType, *, top: bool) -> exp.Expr:
    """True when a non-NULL ``value`` (typed ``new``) lands in a ``held`` column unchanged: its
    family may stand there (a boolean never in a number column, a number never in a boolean one)
    and it reads back identically once stored (``3.5`` does not fit BIGINT, ``'0123'`` does not
    fit BIGINT, ``70000`` does not fit SMALLINT). TRY_CAST alone would turn ``273`` into ``true``."""
    if not may_fit(new, held):
        return exp.false()
    to, back = held.copy(), new.copy()
    stored = try_cast(value, to)
    if kind_of(new) == "json":
        # A JSON value fits only as its own kind: true is not 1, 390 not true. A JSON string in a
        # text column lands unquoted (see _landed) at the top level; inside a struct the cast
        # would keep its quotes, so there it does not fit.
        kinds = _json_kinds(held)
        if kind_of(held) == "text":  # any scalar spells itself as text, as a typed one does
            kinds = ["VARCHAR", "BIGINT", "UBIGINT", "DOUBLE", "BOOLEAN"] if top else []
        if not kinds:
            return exp.false()
        own = exp.In(this=json_type(value), expressions=[exp.Literal.string(k) for k in kinds])
        if kind_of(held) == "text":
            return own
        if kind_of(held) == "number":  # and the number itself, not a rounding of it (1.005 in DECIMAL(9,2))
            double = exp.DataType.build("DOUBLE")
            same = exp.EQ(this=exp.cast(stored, double), expression=try_cast(value, double))
            return exp.and_(own, exp.func("coalesce", same, exp.false()))
        return exp.and_(own, _cast_ok(stored))
    if kind_of(held) == "json" or (kind_of(new) == "text" and kind_of(held) == "other"):
        # numbers and booleans are JSON as they are; a text that reads as the held date, time
        # or UUID is that value, however it is spelt (as the reader would have typed it)
        return _cast_ok(stored)
    return exp.func("coalesce", exp.EQ(this=exp.cast(stored, back), expression=value), exp.false())


def _cast_ok(stored: exp.Expr) -> exp.Expr:
    return exp.Not(this=exp.Is(this=stored, expression=exp.null()))


def _json_kinds(held: exp.DataType) -> list[str]:
    """The JSON value types (``json_type``) that a column of type ``held`` takes as they are."""
    if kind_of(held) == "boolean":
        return ["BOOLEAN"]
    if is_integer(held):
        return ["BIGINT", "UBIGINT"]
    if kind_of(held) == "number":
        return ["BIGINT", "UBIGINT", "DOUBLE"]
    return ["VARCHAR"]


def _first_records(engine: Engine, staged: Staged, changes: list[SchemaChange]) -> str:
    """The changes, each with the first record (1-based, in arrival order) that shows it."""
    conditions = [(i, _carries(c)) for i, c in enumerate(changes)]
    firsts = [
        exp.alias_(
            exp.Filter(this=exp.Min(this=col(writes.ORDINAL)), expression=exp.Where(this=condition)), f"f{i}"
        )
        for i, condition in conditions
        if condition is not None
    ]
    # Ordinals follow arrival but need not start at 0 (an engine's row ids): count from the first.
    base = exp.alias_(exp.Min(this=col(writes.ORDINAL)), "base")
    row = engine.query(exp.select(*firsts, base).from_(staged)).to_pylist()[0] if firsts else {}
    named = []
    for i, change in enumerate(changes):
        first = row.get(f"f{i}")
        at = f" (first in record {first - row['base'] + 1:,})" if first is not None else ""
        named.append(f"{change}{at}")
    return "; ".join(named)


def _conformed(engine: Engine, relation: Relation, staged: Staged, cast: set[str] | None = None) -> Staged:
    """Rows whose nested columns (and the ``cast`` ones) have exactly the table's types: struct
    fields matched by name (in the table's order, absent ones NULL), so stored and arriving rows
    compare equal."""
    held = dict(held_columns(engine, engine.table(relation)))
    incoming = engine.describe(staged)
    nests = (exp.DataType.Type.ARRAY, exp.DataType.Type.LIST, exp.DataType.Type.STRUCT)
    differ = [c for c, t in incoming if c in held and held[c] != t and (t.this in nests or c in (cast or ()))]
    if not differ:
        return staged
    projection = [
        exp.alias_(exp.cast(col(c), held[c]), c, quoted=True) if c in differ else col(c) for c, _ in incoming
    ]
    return exp.select(*projection).from_(staged).subquery("conformed")


def _set_aside(
    engine: Engine,
    level: Shaped,
    staged: exp.Table,
    columns: list[str],
    condition: exp.Expr,
    reason: str,
    run_id: int,
    aside: bool,
    *,
    delete: bool,
) -> int:
    """Copy rows matching ``condition`` to ``<table>__quarantine`` (or just count them), and with
    ``delete`` remove them from what gets published. A row removed whole under ``child_tables``
    is quarantined with its lists, and its id is kept so its children do not land either."""
    relation = level.relation
    count = engine.query(
        exp.select(exp.alias_(exp.Count(this=exp.Star()), "n")).from_(staged).where(condition)
    )
    moved = int(count.column("n")[0].as_py())
    whole = delete and nesting.ROW_ID in columns
    if moved and aside:
        quarantine = Relation(relation.schema, f"{relation.name}__quarantine")
        source, record, where = staged, columns, condition
        if whole and level.lists is not None:  # the row and its lists, joined back by the row's id
            lists = [c for c in level.lists.named_selects if c != nesting.ROW_ID]
            rows = exp.select(*(col(c, "s") for c in columns), *(col(c, "l") for c in lists))
            rows = rows.from_(exp.select("*").from_(staged).where(condition).subquery("s"))
            rows = rows.join(
                level.lists.subquery("l"),
                on=exp.EQ(this=col(nesting.ROW_ID, "s"), expression=col(nesting.ROW_ID, "l")),
                join_type="left",
            )
            source, record, where = engine.stage(rows), [*columns, *lists], exp.true()
        copy_to_quarantine(engine, source, record, where, exp.Literal.string(reason), quarantine, run_id)
    if moved and whole:
        level.aside.append(engine.stage(exp.select(col(nesting.ROW_ID)).from_(staged).where(condition)))
    if moved and delete:
        engine.execute(exp.delete(staged, where=condition))
    return moved


def follow_parents_aside(
    engine: Engine, level: Shaped, parent: Shaped, spec: LoadSpec, result: LoadResult
) -> None:
    """Children of rows set aside (quarantined or discarded, at any level above) do not land: a
    quarantined row holds them in its record; discarded ones are counted. Their ids are kept so
    their own children follow them."""
    if not parent.aside:
        return
    ids = (
        exp.union(*(exp.select(col(nesting.ROW_ID)).from_(t) for t in parent.aside), distinct=False)
        if len(parent.aside) > 1
        else exp.select(col(nesting.ROW_ID)).from_(parent.aside[0])
    )
    orphan = exp.In(this=col(nesting.PARENT_ID), query=ids.subquery())
    gone = engine.stage(exp.select(col(nesting.ROW_ID)).from_(level.staged).where(orphan))
    counted = engine.row(exp.select(exp.alias_(exp.Count(this=exp.Star()), "n")).from_(gone)) or {}
    moved = int(counted.get("n") or 0)
    if not moved:
        return
    level.aside.append(gone)
    level.staged = (
        exp.select("*").from_(level.staged).where(exp.Not(this=orphan.copy())).subquery("kept_children")
    )
    if spec.contract == "discard":
        result.rows_discarded += moved
        result.events.append(f"{level.relation}: {moved} child row(s) of discarded rows discarded with them")
    else:
        result.events.append(
            f"{level.relation}: {moved} child row(s) of quarantined rows not landed (they are in their "
            "parent's quarantined record)"
        )
