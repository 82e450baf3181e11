"""Loading source tables: write modes, incremental cursors, schema contracts, nested records.

Each test lands NDJSON files through a real project run and reads the lake back."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gristmill.workspace import Workspace


def ndjson(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


class Lake:
    """A project with one files source ``src`` whose table ``t`` reads data/t.ndjson."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, rows: list[dict[str, Any]]) -> None:
        (self.root / "data").mkdir(exist_ok=True)
        (self.root / "data" / "t.ndjson").write_text(ndjson(rows))

    def run(self, *, ok: bool = True) -> Any:
        result = Workspace(self.root).run()
        if ok:
            assert result.ok, [s.error for s in result.steps]
        return result

    def rows(self, sql: str = "select * from raw.src__t order by all") -> list[dict[str, Any]]:
        return Workspace(self.root).query(sql).to_pylist()


@pytest.fixture
def lake(make_project: Callable[..., Path]) -> Callable[[str], Lake]:
    def make(table_options: str) -> Lake:
        root = make_project(
            {"sources/src.yml": f"kind: files\ntables:\n  t:\n    path: data/t.ndjson\n{table_options}"}
        )
        return Lake(root)

    return make


def test_append_incremental_with_lag_adds_late_rows_and_never_doubles(lake: Callable[[str], Lake]) -> None:
    t = lake("    write: append\n    incremental: {cursor: at, lag: 10}\n")
    t.write([{"id": 1, "at": 100}, {"id": 2, "at": 110}])
    t.run()
    # the source now also has a late row (105, inside the lag), the boundary row again, and a new one
    t.write([{"id": 1, "at": 100}, {"id": 2, "at": 110}, {"id": 3, "at": 105}, {"id": 4, "at": 120}])
    result = t.run()
    assert [r["id"] for r in t.rows("select id from raw.src__t order by id")] == [1, 2, 3, 4]
    [step] = result.steps
    assert step.load.rows_read == 4  # every row is at or past 110 - 10 = 100
    assert step.load.rows_written == 2  # ids 1 and 2 were loaded before
    assert step.load.cursor.value == "120"


def test_incremental_skips_rows_before_the_cursor_even_if_the_source_returns_them(
    lake: Callable[[str], Lake],
) -> None:
    t = lake("    write: append\n    incremental: {cursor: at}\n")
    t.write([{"id": 1, "at": "2024-01-01T00:00:00"}])
    t.run()
    t.write(
        [
            {"id": 0, "at": "2023-06-01T00:00:00"},
            {"id": 1, "at": "2024-01-01T00:00:00"},
            {"id": 2, "at": "2024-02-01T00:00:00"},
        ]
    )
    t.run()
    assert [r["id"] for r in t.rows("select id from raw.src__t order by id")] == [1, 2]


def test_merge_upserts_on_a_null_safe_key_last_row_wins(lake: Callable[[str], Lake]) -> None:
    t = lake("    write: merge\n    key: [id]\n")
    t.write([{"id": 1, "v": "a"}, {"id": None, "v": "null-key"}, {"id": 2, "v": "b"}])
    t.run()
    t.write(
        [{"id": 2, "v": "b1"}, {"id": 2, "v": "b2"}, {"id": None, "v": "null-key-2"}, {"id": 3, "v": "c"}]
    )
    t.run()
    assert t.rows("select id, v from raw.src__t order by id nulls first") == [
        {"id": None, "v": "null-key-2"},
        {"id": 1, "v": "a"},
        {"id": 2, "v": "b2"},
        {"id": 3, "v": "c"},
    ]


def test_merge_applies_change_data_deletes(lake: Callable[[str], Lake]) -> None:
    t = lake("    write: merge\n    key: [id]\n")
    t.write([{"id": 1, "v": "a", "_gm_op": "insert"}, {"id": 2, "v": "b", "_gm_op": "insert"}])
    t.run()
    t.write([{"id": 1, "v": None, "_gm_op": "delete"}, {"id": 2, "v": "b2", "_gm_op": "update"}])
    t.run()
    assert t.rows("select * from raw.src__t") == [{"id": 2, "v": "b2"}]


def test_delete_insert_replaces_every_row_of_a_key(lake: Callable[[str], Lake]) -> None:
    t = lake("    write: delete_insert\n    key: [day]\n")
    t.write([{"day": 1, "n": 1}, {"day": 1, "n": 2}, {"day": 2, "n": 3}])
    t.run()
    t.write([{"day": 1, "n": 10}, {"day": 1, "n": 11}, {"day": 1, "n": 12}])
    t.run()
    assert t.rows("select day, n from raw.src__t order by n") == [
        {"day": 2, "n": 3},
        {"day": 1, "n": 10},
        {"day": 1, "n": 11},
        {"day": 1, "n": 12},
    ]


def test_scd2_keeps_history_with_validity_ranges(lake: Callable[[str], Lake]) -> None:
    t = lake("    write: scd2\n    key: [id]\n")
    t.write([{"id": 1, "city": "Oslo"}, {"id": 2, "city": "Rome"}, {"id": 3, "city": "Lima"}])
    t.run()
    t.write([{"id": 1, "city": "Bergen"}, {"id": 2, "city": "Rome"}])  # 1 moved, 2 same, 3 gone
    t.run()
    rows = t.rows(
        "select id, city, _gm_is_current as cur, _gm_valid_to is null as open from raw.src__t"
        " order by id, _gm_valid_from"
    )
    assert rows == [
        {"id": 1, "city": "Oslo", "cur": False, "open": False},
        {"id": 1, "city": "Bergen", "cur": True, "open": True},
        {"id": 2, "city": "Rome", "cur": True, "open": True},
        {"id": 3, "city": "Lima", "cur": False, "open": False},
    ]
    t.write([{"id": 1, "city": "Bergen"}, {"id": 2, "city": "Rome"}])
    t.run()  # nothing changed in the data: no new versions
    assert t.rows("select count(*) as n from raw.src__t") == [{"n": 4}]


def test_freeze_refuses_a_new_column_and_keeps_the_table(lake: Callable[[str], Lake]) -> None:
    t = lake("    write: append\n    contract: freeze\n")
    t.write([{"id": 1}])
    t.run()
    t.write([{"id": 2, "extra": "x"}])
    result = t.run(ok=False)
    assert (
        'raw.src__t: the schema changed under contract freeze: new column "extra" VARCHAR'
        in result.steps[0].error
    )
    assert t.rows() == [{"id": 1}]


def test_evolve_adds_columns_and_widens_types(lake: Callable[[str], Lake]) -> None:
    t = lake("    write: append\n")
    t.write([{"id": 1, "at": "2024-01-01"}])
    t.run()
    t.write([{"id": 2, "at": "2024-01-02T10:30:00", "note": "hi"}])
    result = t.run()
    events = result.steps[0].load.events
    assert 'raw.src__t: new column "note" VARCHAR' in events
    assert 'raw.src__t: column "at" widened DATE -> TIMESTAMP' in events
    rows = t.rows('select id, "at"::varchar as "at", note from raw.src__t order by id')
    assert rows == [
        {"id": 1, "at": "2024-01-01 00:00:00", "note": None},
        {"id": 2, "at": "2024-01-02 10:30:00", "note": "hi"},
    ]


def test_evolve_names_type_drift_instead_of_coercing(lake: Callable[[str], Lake]) -> None:
    t = lake("    write: append\n")
    t.write([{"id": 1, "amount": 5}])
    t.run()
    t.write([{"id": 2, "amount": "five"}])
    result = t.run(ok=False)
    assert 'type drift in column "amount": BIGINT -> VARCHAR' in result.steps[0].error
    assert "contract: quarantine" in result.steps[0].error
    assert t.rows() == [{"id": 1, "amount": 5}]


def test_quarantine_sets_bad_rows_aside_and_publishes_the_rest(lake: Callable[[str], Lake]) -> None:
    t = lake("    write: append\n    contract: quarantine\n")
    t.write([{"id": 1, "amount": 5}])
    t.run()
    t.write([{"id": 2, "amount": "7"}, {"id": 3, "amount": "seven"}, {"id": 4, "amount": None, "extra": 1}])
    result = t.run()
    load = result.steps[0].load
    assert t.rows() == [{"id": 1, "amount": 5}, {"id": 2, "amount": 7}, {"id": 4, "amount": None}]
    quarantined = t.rows("select _gm_reason, _gm_record from raw.src__t__quarantine order by all")
    assert quarantined == [
        {
            "_gm_reason": "amount: value does not fit BIGINT",
            "_gm_record": '{"id":3,"amount":"seven","extra":null}',
        },
        {
            "_gm_reason": "new column extra (BIGINT) is not in the table",
            "_gm_record": '{"id":4,"amount":null,"extra":1}',
        },
    ]
    assert load.rows_quarantined == 2
    # nothing lost: every input row is published or quarantined (row 4 published without "extra")
    assert load.rows_read == 3


def test_discard_counts_what_it_drops(lake: Callable[[str], Lake]) -> None:
    t = lake("    write: append\n    contract: discard\n")
    t.write([{"id": 1, "amount": 5}])
    t.run()
    t.write([{"id": 2, "amount": "x"}, {"id": 3, "amount": 3}])
    result = t.run()
    assert result.steps[0].load.rows_discarded == 1
    assert "1 row(s) discarded" in " ".join(result.steps[0].load.events)
    assert [r["id"] for r in t.rows()] == [1, 3]


ORDERS = [
    {
        "id": 1,
        "customer": {"name": "Ann", "address": {"city": "Oslo"}},
        "items": [{"sku": "a", "qty": 1, "tags": ["x", "y"]}, {"sku": "b", "qty": 2, "tags": []}],
    },
    {"id": 2, "customer": {"name": "Bob", "address": {"city": "Rome"}}, "items": []},
]


def test_nested_as_structs_by_default(lake: Callable[[str], Lake]) -> None:
    t = lake("")
    t.write(ORDERS)
    t.run()
    assert t.rows(
        "select id, customer.address.city as city, len(items) as n from raw.src__t order by id"
    ) == [{"id": 1, "city": "Oslo", "n": 2}, {"id": 2, "city": "Rome", "n": 0}]


def test_nested_as_json(lake: Callable[[str], Lake]) -> None:
    t = lake("    nested: json\n")
    t.write(ORDERS)
    t.run()
    [row] = t.rows("select customer::varchar as c from raw.src__t where id = 2")
    assert json.loads(row["c"]) == {"name": "Bob", "address": {"city": "Rome"}}


def test_nested_as_child_tables_with_parent_keys_and_list_index(lake: Callable[[str], Lake]) -> None:
    t = lake("    nested: child_tables\n    key: [id]\n    write: merge\n")
    t.write(ORDERS)
    t.run()
    assert t.rows("select id, customer__name, customer__address__city from raw.src__t order by id") == [
        {"id": 1, "customer__name": "Ann", "customer__address__city": "Oslo"},
        {"id": 2, "customer__name": "Bob", "customer__address__city": "Rome"},
    ]
    items = t.rows(
        "select p.id, i._gm_list_index as i, i.sku, i.qty from raw.src__t__items i"
        " join raw.src__t p on p._gm_row_id = i._gm_parent_id order by all"
    )
    assert items == [{"id": 1, "i": 1, "sku": "a", "qty": 1}, {"id": 1, "i": 2, "sku": "b", "qty": 2}]
    tags = t.rows(
        "select t.value, t._gm_list_index as i from raw.src__t__items__tags t"
        " join raw.src__t__items i on i._gm_row_id = t._gm_parent_id where i.sku = 'a' order by all"
    )
    assert tags == [{"value": "x", "i": 1}, {"value": "y", "i": 2}]
    # reloading a parent replaces its children instead of adding to them
    t.write([{**ORDERS[0], "items": [{"sku": "c", "qty": 9, "tags": []}]}])
    t.run()
    assert t.rows("select sku from raw.src__t__items order by all") == [{"sku": "c"}]
    # grandchildren follow their own parent (an item), not the root: the old tags are gone
    assert t.rows("select count(*) as n from raw.src__t__items__tags") == [{"n": 0}]


@pytest.mark.parametrize(
    "options",
    ["    write: merge\n    key: [id]\n", "    write: replace\n", "    write: append\n"],
    ids=["merge", "replace", "append"],
)
def test_child_table_ids_are_unique_exact_and_link_each_row_to_its_own_parent(
    lake: Callable[[str], Lake], options: str
) -> None:
    t = lake("    nested: child_tables\n" + options)
    orders = [
        {
            "id": o,
            "items": [{"sku": f"{o}-{i}", "tags": [f"{o}-{i}-{g}" for g in range(2)]} for i in range(3)],
        }
        for o in range(20)
    ]
    t.write(orders)
    t.run()
    for table, n in (("src__t", 20), ("src__t__items", 60), ("src__t__items__tags", 120)):
        [row] = t.rows(f"select count(*) as n, count(distinct _gm_row_id) as ids from raw.{table}")
        assert row == {"n": n, "ids": n}, table  # ids used to be rounded through a double in Parquet
    joined = t.rows(
        "select p.id, i.sku, g.value from raw.src__t p"
        " join raw.src__t__items i on i._gm_parent_id = p._gm_row_id"
        " join raw.src__t__items__tags g on g._gm_parent_id = i._gm_row_id order by all"
    )
    assert joined == [
        {"id": o["id"], "sku": i["sku"], "value": g} for o in orders for i in o["items"] for g in i["tags"]
    ]
    ids = t.rows("select _gm_row_id::varchar as r from raw.src__t__items__tags order by all")
    if "append" not in options:  # loading the same input again keeps every id and link
        (t.root / "data" / "t.ndjson").write_text(ndjson(orders) + "\n")  # changed file, same rows
        t.run()
        assert t.rows("select _gm_row_id::varchar as r from raw.src__t__items__tags order by all") == ids


def test_max_depth_lands_deeper_nesting_as_json(lake: Callable[[str], Lake]) -> None:
    t = lake("    nested: child_tables\n    max_depth: 1\n")
    t.write(ORDERS)
    t.run()
    [row] = t.rows("select customer__name, customer__address::varchar as a from raw.src__t where id = 1")
    assert row["customer__name"] == "Ann" and json.loads(row["a"]) == {"city": "Oslo"}


def test_load_metrics_are_recorded(lake: Callable[[str], Lake]) -> None:
    t = lake("    write: append\n    contract: quarantine\n")
    t.write([{"id": 1, "n": 1}])
    t.run()
    t.write([{"id": 2, "n": "bad"}, {"id": 3, "n": 3}])
    t.run()
    db = sqlite3.connect(t.root / ".gristmill" / "state.sqlite")
    row = db.execute(
        "select rows_read, rows, rows_quarantined, bytes_read, events from steps where run_id = 2"
    ).fetchone()
    assert row[:3] == (2, 1, 1)
    assert row[3] > 0
    assert "value(s)" in row[4] or "row(s) quarantined" in row[4]


def test_full_refresh_starts_an_incremental_table_over(lake: Callable[[str], Lake]) -> None:
    t = lake("    write: append\n    incremental: {cursor: at}\n")
    t.write([{"id": 1, "at": 10}, {"id": 2, "at": 20}])
    t.run()
    t.write([{"id": 1, "at": 10}, {"id": 3, "at": 5}])  # the source was rewritten, older rows included
    result = Workspace(t.root).run(full_refresh=True)
    assert result.ok, [s.error for s in result.steps]
    assert t.rows("select id from raw.src__t order by id") == [{"id": 1}, {"id": 3}]
    assert result.steps[0].load.cursor.value == "10"


def test_a_replace_that_would_empty_a_table_fails_and_keeps_the_table(
    make_project: Callable[..., Path],
) -> None:
    table = "kind: files\ntables:\n  t:\n    path: data/t.csv\n"
    root = make_project({"sources/src.yml": table})
    data = root / "data" / "t.csv"
    data.parent.mkdir()
    data.write_text("id,v\n" + "".join(f"{i},x{i}\n" for i in range(100)))
    assert Workspace(root).run().ok
    data.write_text("")  # truncated to 0 bytes
    result = Workspace(root).run()
    assert not result.ok
    [step] = result.steps
    assert "delivered 0 rows; replacing would empty raw.src__t, which holds 100 row(s)" in str(step.error)
    assert "allow_empty: true" in (step.failure.hint or "")
    count = "select count(*) as n from raw.src__t"
    assert Workspace(root).query(count).to_pylist() == [{"n": 100}]
    data.write_text("id,v\n")  # a header alone is empty too
    assert not Workspace(root).run().ok
    (root / "sources" / "src.yml").write_text(table + "    allow_empty: true\n")
    assert Workspace(root).run().ok
    assert Workspace(root).query(count).to_pylist() == [{"n": 0}]


def test_max_shrink_refuses_a_replace_that_removes_too_many_rows(lake: Callable[[str], Lake]) -> None:
    t = lake("    max_shrink: 50%\n")
    t.write([{"id": i} for i in range(10)])
    t.run()
    t.write([{"id": i} for i in range(4)])
    [step] = t.run(ok=False).steps
    assert "would shrink it from 10 to 4 row(s) (60% removed, max_shrink is 50%)" in str(step.error)
    assert len(t.rows()) == 10
    t.write([{"id": i} for i in range(5)])  # half is allowed
    t.run()
    assert len(t.rows()) == 5


@pytest.mark.parametrize("options", ["    write: merge\n    key: [id]\n", "    write: replace\n"])
def test_a_list_no_record_has_any_more_leaves_no_children_behind(
    lake: Callable[[str], Lake], options: str
) -> None:
    t = lake("    nested: child_tables\n" + options)
    t.write(
        [{"id": 1, "items": [{"sku": "a", "tags": ["x"]}]}, {"id": 2, "items": [{"sku": "b", "tags": []}]}]
    )
    t.run()
    t.write([{"id": 1, "note": "items gone"}, {"id": 3, "note": "new"}])  # no "items" key at all
    t.run()
    orphans = (
        "select count(*) as n from raw.src__t__items i"
        " join raw.src__t p on p._gm_row_id = i._gm_parent_id where p.id in (1, 3)"
    )
    assert t.rows(orphans) == [{"n": 0}]  # with replace, row ids by arrival used to be reused by new rows
    left = t.rows("select sku from raw.src__t__items order by all")
    assert left == ([{"sku": "b"}] if "merge" in options else [])
    assert t.rows("select count(*) as n from raw.src__t__items__tags") == [
        {"n": 0}
    ]  # "x" belonged to a removed item


@pytest.mark.parametrize("write", ["append", "merge"])
def test_an_empty_file_changes_nothing_and_invents_no_column(
    make_project: Callable[..., Path], write: str
) -> None:
    table = f"kind: files\ntables:\n  t:\n    path: data/t.csv\n    write: {write}\n    key: [id]\n"
    root = make_project({"sources/src.yml": table})
    data = root / "data" / "t.csv"
    data.parent.mkdir()
    data.write_text("id,v\n1,a\n")
    assert Workspace(root).run().ok
    data.write_text("")  # DuckDB reads an empty CSV as one VARCHAR column, "column0"
    assert Workspace(root).run().ok
    assert Workspace(root).query("select * from raw.src__t").to_pylist() == [{"id": 1, "v": "a"}]


def test_an_empty_full_snapshot_does_not_close_every_scd2_version(lake: Callable[[str], Lake]) -> None:
    t = lake("    write: scd2\n    key: [id]\n")
    t.write([{"id": 1, "v": "a"}, {"id": 2, "v": "b"}])
    t.run()
    t.write([])
    [step] = t.run(ok=False).steps
    assert "would close all 2 current version(s) of raw.src__t" in str(step.error)
    assert t.rows("select count(*) as n from raw.src__t where _gm_is_current") == [{"n": 2}]


def test_allow_empty_empties_the_table_and_its_child_tables_keeping_columns(
    lake: Callable[[str], Lake],
) -> None:
    t = lake("    nested: child_tables\n    allow_empty: true\n")
    t.write([{"id": 1, "items": [{"sku": "a"}]}])
    t.run()
    t.write([])
    t.run()
    assert t.rows("select count(*) as n from raw.src__t__items") == [{"n": 0}]
    assert t.rows("select * from raw.src__t") == []
    assert [c["column_name"] for c in t.rows("describe raw.src__t")] == ["id", "_gm_row_id"]


@pytest.mark.parametrize("nested", ["struct", "child_tables"])
def test_a_list_empty_in_every_record_takes_the_type_of_its_first_values(
    lake: Callable[[str], Lake], nested: str
) -> None:
    t = lake(f"    nested: {nested}\n    write: append\n")
    t.write([{"id": 1, "tags": [], "m": {"l": []}}, {"id": 2, "tags": None, "m": {"l": []}}])
    t.run()
    t.write([{"id": 3, "tags": [5, 6], "m": {"l": [1.5]}}])
    events = " ".join(t.run().steps[0].load.events)
    assert "takes the type of its first values" in events
    if nested == "struct":
        assert t.rows("select id, tags, m.l as l from raw.src__t order by id") == [
            {"id": 1, "tags": [], "l": []},  # an empty list stays empty, NULL stays NULL
            {"id": 2, "tags": None, "l": []},
            {"id": 3, "tags": [5, 6], "l": [1.5]},
        ]
    else:
        assert t.rows("select value from raw.src__t__tags order by all") == [{"value": 5}, {"value": 6}]
        assert t.rows("select value from raw.src__t__m__l") == [{"value": 1.5}]
    # once a value is held, the type is fixed: a different one is drift as usual
    t.write([{"id": 4, "tags": ["x"], "m": {"l": []}}])
    assert "type drift" in str(t.run(ok=False).steps[0].error)


@pytest.mark.parametrize("nested", ["struct", "child_tables"])
def test_freeze_names_the_column_of_a_list_that_was_empty_until_now(
    lake: Callable[[str], Lake], nested: str
) -> None:
    t = lake(f"    nested: {nested}\n    write: append\n    contract: freeze\n")
    t.write([{"id": 1, "tags": []}])
    t.run()
    t.write([{"id": 2, "tags": [5]}])
    error = str(t.run(ok=False).steps[0].error)
    assert "contract freeze" in error and (
        "tags[]" in error if nested == "struct" else "src__t__tags" in error
    )
    assert "landed from empty lists" in error and "Error:" not in error  # no engine error


@pytest.mark.parametrize("contract", ["quarantine", "discard"])
@pytest.mark.parametrize("write", ["append", "merge"])
def test_children_of_a_row_set_aside_do_not_land_and_are_accounted_for(
    lake: Callable[[str], Lake], contract: str, write: str
) -> None:
    t = lake(f"    nested: child_tables\n    write: {write}\n    key: [id]\n    contract: {contract}\n")
    t.write([{"id": 1, "amount": 5, "items": [{"sku": "a", "qty": 1, "tags": ["x"]}]}])
    t.run()
    bad_parent = {"id": 2, "amount": "seven", "items": [{"sku": "b", "qty": 2, "tags": ["y", "z"]}]}
    bad_item = {"sku": "d", "qty": "many", "tags": ["v", "w"]}
    t.write(
        [
            bad_parent,  # the root row does not fit: it and its items and tags stay out
            {"id": 3, "amount": 3, "items": [{"sku": "c", "qty": 3, "tags": ["u"]}, bad_item]},
            # a key already held: its stored version and children stay as they were
            {"id": 1, "amount": "lots", "items": [{"sku": "e", "qty": 4, "tags": ["t"]}]},
        ]
    )
    load = t.run().steps[0].load
    assert t.rows("select id, amount from raw.src__t order by id") == [
        {"id": 1, "amount": 5},
        {"id": 3, "amount": 3},
    ]
    # every child row joins to exactly one landed parent, at every depth
    items = "select p.id, i.sku from raw.src__t__items i join raw.src__t p on p._gm_row_id = i._gm_parent_id"
    assert t.rows(items + " order by all") == [{"id": 1, "sku": "a"}, {"id": 3, "sku": "c"}]
    assert t.rows("select count(*) as n from raw.src__t__items") == [{"n": 2}]
    tags = (
        "select i.sku, g.value from raw.src__t__items__tags g"
        " join raw.src__t__items i on i._gm_row_id = g._gm_parent_id order by all"
    )
    assert t.rows(tags) == [{"sku": "a", "value": "x"}, {"sku": "c", "value": "u"}]
    assert t.rows("select count(*) as n from raw.src__t__items__tags") == [{"n": 2}]
    if contract == "quarantine":
        records = [
            json.loads(r["_gm_record"])
            for r in t.rows("select _gm_record from raw.src__t__quarantine order by _gm_record")
        ]
        # the whole record is kept, its lists included: nothing is lost
        by_id = {r["id"]: r for r in records}
        assert by_id[2]["items"] == bad_parent["items"] and by_id[1]["items"][0]["sku"] == "e"
        [item] = [
            json.loads(r["_gm_record"])
            for r in t.rows("select _gm_record from raw.src__t__items__quarantine")
        ]
        assert item["sku"] == "d" and item["tags"] == ["v", "w"]
        assert load.rows_quarantined == 3  # two roots and one item, each with its lists
        assert load.rows_discarded == 0
    else:
        # two roots, their 2 items and 3 tags; one item and its 2 tags
        assert load.rows_discarded == 2 + 2 + 3 + 1 + 2
        assert load.rows_quarantined == 0


@pytest.mark.parametrize("contract", ["evolve", "freeze"])
@pytest.mark.parametrize("nested", ["struct", "child_tables"])
def test_a_load_whose_lists_are_all_empty_is_no_type_change(
    lake: Callable[[str], Lake], nested: str, contract: str
) -> None:
    t = lake(f"    nested: {nested}\n    write: append\n    contract: {contract}\n")
    t.write([{"id": 1, "tags": [5]}])
    t.run()
    t.write([{"id": 2, "tags": []}, {"id": 3, "tags": None}])  # no element: nothing says VARCHAR
    t.run()
    if nested == "struct":
        assert t.rows("select id, tags from raw.src__t order by id") == [
            {"id": 1, "tags": [5]},
            {"id": 2, "tags": []},
            {"id": 3, "tags": None},
        ]
    else:
        assert t.rows("select value from raw.src__t__tags") == [{"value": 5}]


@pytest.mark.parametrize(("held", "arriving"), [(5, True), (True, 5)])
def test_a_boolean_never_fits_a_number_column_nor_a_number_a_boolean_one(
    lake: Callable[[str], Lake], held: Any, arriving: Any
) -> None:
    t = lake("    write: append\n    contract: quarantine\n")
    t.write([{"id": 1, "v": held}])
    t.run()
    t.write([{"id": 2, "v": arriving}])
    assert t.run().steps[0].load.rows_quarantined == 1  # true used to land as 1, 5 as true
    assert [r["id"] for r in t.rows()] == [1]
    [aside] = t.rows("select _gm_record from raw.src__t__quarantine")
    assert json.loads(aside["_gm_record"]) == {"id": 2, "v": arriving}
