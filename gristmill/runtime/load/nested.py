"""Nested records in a load: kept as structs, stored as JSON, or split into child tables linked by
row ids (see docs/loading.md, "Nested data")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlglot import exp

from gristmill.engines.base import Engine, Relation
from gristmill.project.specs import LoadSpec
from gristmill.runtime.load.flat_arrow import IDS, LINK, SEQ
from gristmill.runtime.load.staging import Shaped, Staged, col
from gristmill.sql import nesting, writes

if TYPE_CHECKING:  # pyarrow (with numpy) is imported where it is used
    import pyarrow as pa


@dataclass(frozen=True)
class StagedElements:
    """A list's elements split off in Arrow before staging (runtime/load/flat_arrow.py): its
    child table's name, its parent (None: the root; else an index into the same sequence), and
    the staged table with each element column's nesting depth."""

    name: str
    parent: int | None
    table: exp.Table
    depths: dict[str, int]


def reshape(
    engine: Engine,
    raw: Staged,
    asset: str,
    spec: LoadSpec,
    run_id: int,
    scratch: list[exp.Table],
    split: Sequence[StagedElements] = (),
) -> list[Shaped]:
    """The staged tables to write: the asset itself, then any child tables (for ``child_tables``),
    those of ``split`` included."""
    schema = engine.query(exp.select("*").from_(raw).limit(0)).schema
    target = Relation.of(asset)
    if spec.nested != "child_tables":
        nested = any(nesting.is_nested(f.type) for f in schema)
        if not nested or (spec.nested == "struct" and spec.max_depth is None):
            return [Shaped(target, raw)]
        columns = nesting.keep_nested(schema, spec.max_depth, as_json=spec.nested == "json")
        return [Shaped(target, exp.select(*columns).from_(raw).subquery("shaped"))]
    out = nesting.Flattened()
    for column in schema:
        if column.name != writes.ORDINAL:
            nesting.flatten(
                col(column.name), column.name, column.type, 0, spec.max_depth, out, split_lists=True
            )
    flat = all(isinstance(c, exp.Alias) and isinstance(c.this, exp.Column) for c in out.columns)
    if not out.lists and not split and flat and not _has_row_ids(engine, target):
        return [Shaped(target, raw)]
    # Parent and children are queries over the one staged table, not copies of it.
    # Staged once: every child table reads the parents' ids, which would otherwise be hashed
    # again for each (measured: 1.75 against 2.95 CPU-s for 300k records with one list).
    numbered = engine.stage(_with_row_id(raw, schema, spec, run_id))
    scratch.append(numbered)
    with_id = exp.select("*").from_(numbered)
    parent = exp.select(*out.columns, col(nesting.ROW_ID), col(writes.ORDINAL)).from_(with_id.subquery("r"))
    tables: list[Shaped] = [
        Shaped(target, parent.subquery("parent"), lists=_lists_of(with_id.subquery("r"), out.lists))
    ]
    _children(engine, with_id, out.lists, 0, spec.max_depth, tables)
    _split_children(engine, with_id, split, spec.max_depth, tables)
    return tables


def _split_children(
    engine: Engine,
    root: exp.Query,
    split: Sequence[StagedElements],
    max_depth: int | None,
    tables: list[Shaped],
) -> None:
    """Child tables of lists split off in Arrow: each element joins its parent row by number
    (the root's ``_gm_ord``, an element's ``_gm_seq``), so a parent that is not written (a merge
    keeps the last row per key) has no children, and gets its id as ``unnest_list`` gives it."""
    made: list[tuple[int, exp.Query]] = []  # per entry of split: its table's index, its rows
    for child in split:
        parent, rows = (0, root) if child.parent is None else made[child.parent]
        link = writes.ORDINAL if child.parent is None else SEQ
        relation = Relation(tables[parent].relation.schema, f"{tables[parent].relation.name}__{child.name}")
        position = col(nesting.LIST_INDEX, "e")
        row_id = nesting.row_uuid(
            exp.cast(col(nesting.ROW_ID, "p"), "VARCHAR"),
            exp.Literal.string(f"/{child.name}/"),
            exp.cast(position, "VARCHAR"),
        )
        columns = [c for c, _ in engine.describe(child.table) if c not in IDS]
        elements = (
            exp.select(
                exp.alias_(row_id, nesting.ROW_ID, quoted=True),
                exp.alias_(col(nesting.ROW_ID, "p"), nesting.PARENT_ID, quoted=True),
                position,
                col(writes.ORDINAL, "e"),
                col(SEQ, "e"),
                *(col(c, "e") for c in columns),
            )
            .from_(exp.alias_(child.table.copy(), "e", table=True))
            .join(rows.subquery("p"), on=exp.EQ(this=col(link, "p"), expression=col(LINK, "e")))
        )
        schema = engine.query(exp.select("*").from_(elements.subquery("x")).limit(0)).schema
        shape = nesting.Flattened()
        for name in columns:
            dtype = schema.field(name).type
            nesting.flatten(
                col(name), name, dtype, child.depths.get(name, 0), max_depth, shape, split_lists=True
            )
        ids = [col(c) for c in (nesting.ROW_ID, nesting.PARENT_ID, nesting.LIST_INDEX, writes.ORDINAL)]
        shaped = exp.select(*ids, *shape.columns).from_(elements.subquery("c"))
        tables.append(
            Shaped(relation, shaped.subquery("c"), parent, _lists_of(elements.subquery("e"), shape.lists))
        )
        made.append((len(tables) - 1, elements))
        _children(engine, elements, shape.lists, len(tables) - 1, max_depth, tables)


def _lists_of(rows: exp.Subquery, lists: list[nesting.ChildList]) -> exp.Query | None:
    if not lists:
        return None
    values = [exp.alias_(child.value.copy(), child.name, quoted=True) for child in lists]
    return exp.select(col(nesting.ROW_ID), *values).from_(rows)


def _has_row_ids(engine: Engine, relation: Relation) -> bool:
    """The table has child tables' ids already: a load without lists keeps giving its rows ids."""
    if not engine.exists(relation):
        return False
    return any(column == nesting.ROW_ID for column, _ in engine.describe(engine.table(relation)))


def _with_row_id(raw: Staged, schema: pa.Schema, spec: LoadSpec, run_id: int) -> exp.Select:
    """The staged rows with each parent row's ``_gm_row_id``, a UUID from text naming the row
    (see docs/loading.md, "Row ids"):

    - with a ``key`` (every mode but ``append``): the key's values and the row's position among
      this load's rows with that key (1 unless the key repeats). A merge keeps only the last row
      per key, so its children come from that row alone and its ids never change between loads;
    - ``append`` with ``incremental``: the row's content (NULL fields left out, so a column added
      later does not change it) and its position among identical rows, so a row read again at
      the boundary gets the id it already has and is not added twice, nor are its children;
    - other ``append`` loads: the run and the row's arrival, new rows every load;
    - ``replace`` without a key: the row's arrival, the same when the same input is loaded again."""
    data = [f.name for f in schema if f.name != writes.ORDINAL]
    ordinal = col(writes.ORDINAL)
    rows: Staged = raw
    arrival = exp.Order(expressions=[exp.Ordered(this=ordinal)])
    text = exp.Literal.string
    parts: list[exp.Expr]
    if spec.key and spec.write != "append":
        if spec.write in ("merge", "scd2"):  # children only from the row that wins
            cursor = spec.incremental.cursor if spec.incremental and spec.incremental.cursor in data else None
            order = [*([cursor] if cursor else []), writes.ORDINAL]
            rows = writes.latest_per_key(raw, [*data, writes.ORDINAL], spec.key, order).subquery("winners")
        # JSON of the key's text: unambiguous for any values, NULLs included ("a|b" ≠ "a","b")
        key = exp.func("to_json", exp.Array(expressions=[exp.cast(col(k), "VARCHAR") for k in spec.key]))
        nth = exp.Window(this=exp.func("row_number"), partition_by=[col(k) for k in spec.key], order=arrival)
        parts = [text("k"), key, text("#"), exp.cast(nth, "VARCHAR")]
    elif spec.write == "append" and spec.incremental is not None:
        content = nesting.content_digest(schema, data)
        nth = exp.Window(this=exp.func("row_number"), partition_by=[content.copy()], order=arrival)
        parts = [text("c"), content, text("#"), exp.cast(nth, "VARCHAR")]
    elif spec.write == "append":
        parts = [text(f"a{run_id}#"), exp.cast(ordinal, "VARCHAR")]
    else:
        parts = [text("r"), exp.cast(ordinal, "VARCHAR")]
    return exp.select("*", exp.alias_(nesting.row_uuid(*parts), nesting.ROW_ID, quoted=True)).from_(rows)


def _children(
    engine: Engine,
    source: exp.Query,
    lists: list[nesting.ChildList],
    parent: int,
    max_depth: int | None,
    tables: list[Shaped],
) -> None:
    for child in lists:
        relation = Relation(tables[parent].relation.schema, f"{tables[parent].relation.name}__{child.name}")
        exploded = nesting.unnest_list(source.subquery("p"), child, writes.ORDINAL)
        shape = nesting.flatten_element(child.element, max_depth, child.depth)
        # the root record's number rides along (not written) so contract errors can name it
        ids = [col(c) for c in (nesting.ROW_ID, nesting.PARENT_ID, nesting.LIST_INDEX, writes.ORDINAL)]
        rows = exp.select(*ids, *shape.columns).from_(exploded.subquery("e")).subquery("c")
        tables.append(Shaped(relation, rows, parent, _lists_of(exploded.subquery("e"), shape.lists)))
        _children(engine, exploded, shape.lists, len(tables) - 1, max_depth, tables)
