"""Keys that appear late and fields that appear inside objects: never dropped without the contract
saying so (issue 17, items 1 and 3)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.unit.runtime.load.test_loader import Lake


@pytest.fixture
def lake(make_project: Callable[..., Path]) -> Callable[[str], Lake]:
    def make(table_options: str) -> Lake:
        source = f"kind: files\ntables:\n  t:\n    path: data/t.ndjson\n{table_options}"
        return Lake(make_project({"sources/src.yml": source}))

    return make


LATE = 30_000
"""Past DuckDB's JSON sample (20,480 rows): a key first seen here used to vanish."""


def records(n: int, late: int = LATE, nested_late: int = 25_000) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for i in range(n):
        row: dict[str, Any] = {"id": i, "meta": {"a": i}}
        if i >= late:
            row["coupon"] = f"C{i}"
        if i >= nested_late:
            row["meta"]["extra"] = "x"
        rows.append(row)
    return rows


def write(t: Lake, rows: list[dict[str, Any]]) -> None:
    (t.root / "data").mkdir(exist_ok=True)
    with (t.root / "data" / "t.ndjson").open("w") as out:
        out.writelines(json.dumps(r) + "\n" for r in rows)


def test_a_key_first_seen_after_the_sample_lands_on_a_first_load(lake: Callable[[str], Lake]) -> None:
    t = lake("")
    write(t, records(40_000))
    t.run()
    counts = t.rows(
        "select count(*) as n, count(coupon) as coupons, count(meta.extra) as extras from raw.src__t"
    )
    assert counts == [{"n": 40_000, "coupons": 10_000, "extras": 15_000}]


def test_a_key_first_seen_after_the_sample_lands_through_the_arrow_path(
    lake: Callable[[str], Lake],
) -> None:
    # An incremental table reads through the source's Arrow stream, not the engine's own scan.
    t = lake("    write: append\n    incremental: {cursor: id}\n")
    write(t, records(40_000))
    t.run()
    assert t.rows("select count(coupon) as c, count(meta.extra) as e from raw.src__t") == [
        {"c": 10_000, "e": 15_000}
    ]


def test_evolve_adds_a_late_column_and_a_late_nested_field(lake: Callable[[str], Lake]) -> None:
    t = lake("    write: append\n")
    write(t, records(10, late=99, nested_late=99))
    t.run()
    write(t, records(40_000)[10:])
    result = t.run()
    events = result.steps[0].load.events
    assert 'raw.src__t: new column "coupon" VARCHAR' in events
    assert 'raw.src__t: new field "meta.extra" VARCHAR' in events
    assert t.rows(
        "select count(*) as n, count(coupon) as c, count(meta.extra) as e, count(meta.a) as a from raw.src__t"
    ) == [{"n": 40_000, "c": 10_000, "e": 15_000, "a": 40_000}]


def test_freeze_names_the_late_key_and_the_record_it_first_appears_in(lake: Callable[[str], Lake]) -> None:
    t = lake("    write: append\n    contract: freeze\n")
    write(t, records(10, late=99, nested_late=99))
    t.run()
    write(t, records(40_000))
    error = t.run(ok=False).steps[0].error
    assert 'new column "coupon" VARCHAR (first in record 30,001)' in error
    assert 'new field "meta.extra" VARCHAR (first in record 25,001)' in error
    assert t.rows("select count(*) as n from raw.src__t") == [{"n": 10}]


def test_evolve_widens_structs_and_lists_of_structs(lake: Callable[[str], Lake]) -> None:
    t = lake("    write: merge\n    key: [id]\n")
    t.write([{"id": 1, "meta": {"a": 1}, "items": [{"sku": "x"}]}])
    t.run()
    t.write(
        [
            {"id": 1, "meta": {"a": 1}, "items": [{"sku": "x"}]},
            {"id": 2, "meta": {"extra": "new", "a": 2}, "items": [{"sku": "y", "qty": 3, "tags": ["t"]}]},
        ]
    )
    result = t.run()
    events = result.steps[0].load.events
    assert 'raw.src__t: new field "meta.extra" VARCHAR' in events
    assert 'raw.src__t: new field "items[].qty" BIGINT' in events
    assert 'raw.src__t: new field "items[].tags" VARCHAR[]' in events
    assert t.rows("select id, meta, items from raw.src__t order by id") == [
        {"id": 1, "meta": {"a": 1, "extra": None}, "items": [{"sku": "x", "qty": None, "tags": None}]},
        {"id": 2, "meta": {"a": 2, "extra": "new"}, "items": [{"sku": "y", "qty": 3, "tags": ["t"]}]},
    ]


def test_evolve_refuses_drift_inside_an_object_naming_the_field(lake: Callable[[str], Lake]) -> None:
    t = lake("    write: append\n")
    t.write([{"id": 1, "meta": {"a": 1}}])
    t.run()
    t.write([{"id": 2, "meta": {"a": 2}}, {"id": 3, "meta": {"a": "three"}}])
    error = t.run(ok=False).steps[0].error
    assert 'type drift in field "meta.a": BIGINT -> JSON (first in record 2)' in error


@pytest.mark.parametrize("contract", ["quarantine", "discard"])
def test_quarantine_and_discard_account_for_new_nested_fields(
    lake: Callable[[str], Lake], contract: str
) -> None:
    t = lake(f"    write: append\n    contract: {contract}\n")
    t.write([{"id": 1, "meta": {"a": 1}, "items": [{"sku": "x"}]}])
    t.run()
    t.write(
        [
            {"id": 2, "meta": {"a": 2, "extra": "e"}, "items": []},
            {"id": 3, "meta": {"a": 3}, "items": [{"sku": "y"}, {"sku": "z", "qty": 1}]},
            {"id": 4, "meta": {"a": "four"}, "items": None},
            {"id": 5, "meta": {"a": 5}, "items": [{"sku": "w"}]},
        ]
    )
    load = t.run().steps[0].load
    # the rows publish without the new fields; the row whose value does not fit is set aside whole
    assert t.rows("select id, meta, items from raw.src__t order by id") == [
        {"id": 1, "meta": {"a": 1}, "items": [{"sku": "x"}]},
        {"id": 2, "meta": {"a": 2}, "items": []},
        {"id": 3, "meta": {"a": 3}, "items": [{"sku": "y"}, {"sku": "z"}]},
        {"id": 5, "meta": {"a": 5}, "items": [{"sku": "w"}]},
    ]
    verb = "quarantined" if contract == "quarantine" else "discarded"
    assert f'raw.src__t: new field "meta.extra" VARCHAR: 1 value(s) {verb}' in load.events
    assert f'raw.src__t: new field "items[].qty" BIGINT: 1 value(s) {verb}' in load.events
    assert f'raw.src__t: type drift in field "meta.a": BIGINT -> JSON: 1 row(s) {verb}' in load.events
    if contract == "quarantine":
        assert load.rows_quarantined == 3
        reasons = t.rows("select _gm_reason, _gm_record from raw.src__t__quarantine order by all")
        assert [r["_gm_reason"] for r in reasons] == [
            "meta.a: value does not fit BIGINT",
            "new field items[].qty (BIGINT) is not in the table",
            "new field meta.extra (VARCHAR) is not in the table",
        ]
        assert json.loads(reasons[1]["_gm_record"])["items"][1] == {"sku": "z", "qty": 1}
    else:
        assert load.rows_discarded == 3
