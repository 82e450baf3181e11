"""Nested records split in Arrow for engines without nested types: flat root rows, and one table
of elements per list of structs, numbered so the SQL can join them back to their parents."""

from __future__ import annotations

import pyarrow as pa

from gristmill.runtime.load.flat_arrow import LINK, SEQ, Splitter
from gristmill.sql import nesting, writes


def _batch(rows: list[dict[str, object]]) -> pa.RecordBatchReader:
    table = pa.Table.from_pylist(rows)
    table = table.append_column(writes.ORDINAL, pa.array(range(len(rows)), pa.int64()))
    return table.to_reader()


ROWS = [
    {
        "id": 1,
        "s": {"a": 1, "Sub Field": {"c": "x"}},
        "tags": ["p"],
        "items": [{"p": 1, "q": [{"z": 1}]}, {"p": 2}],
    },
    {"id": 2, "s": None, "tags": [], "items": None},
    {"id": 3, "s": {"a": 3, "Sub Field": None}, "tags": None, "items": [{"p": 3, "q": []}]},
]


def test_structs_flatten_and_lists_of_structs_leave_their_rows() -> None:
    reader = _batch(ROWS)
    splitter = Splitter(reader.schema, None)
    root = splitter.reader(reader).read_all()
    assert root.column_names == ["id", "s__a", "s__sub_field__c", "tags", writes.ORDINAL]
    assert root.column("s__a").to_pylist() == [1, None, 3]  # a NULL struct's fields are NULL
    assert root.column("tags").to_pylist() == [["p"], [], None]  # lists of scalars stay
    assert [(e.name, e.parent) for e in splitter.lists] == [("items", None), ("q", 0)]
    items = splitter.elements(0).read_all()
    assert items.select([LINK, nesting.LIST_INDEX, writes.ORDINAL, "p"]).to_pylist() == [
        {LINK: 0, nesting.LIST_INDEX: 1, writes.ORDINAL: 0, "p": 1},
        {LINK: 0, nesting.LIST_INDEX: 2, writes.ORDINAL: 0, "p": 2},
        {LINK: 2, nesting.LIST_INDEX: 1, writes.ORDINAL: 2, "p": 3},
    ]
    q = splitter.elements(1).read_all()
    first_item = items.column(SEQ)[0].as_py()
    assert q.select([LINK, nesting.LIST_INDEX, writes.ORDINAL, "z"]).to_pylist() == [
        {LINK: first_item, nesting.LIST_INDEX: 1, writes.ORDINAL: 0, "z": 1}
    ]


def test_max_depth_keeps_deeper_levels_whole() -> None:
    reader = _batch(ROWS)
    splitter = Splitter(reader.schema, 1)
    root = splitter.reader(reader).read_all()
    assert "s__sub_field" in root.column_names  # a struct at depth 1 stays a struct
    assert [e.name for e in splitter.lists] == ["items"]
    # its elements, at the depth limit, stay whole in one "value" column (as DuckDB's SQL does)
    assert pa.types.is_struct(splitter.elements(0).schema.field("value").type)
