"""The files source: formats, globs, column names, change detection and clear errors on bad input."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gristmill.connectors import open_source
from gristmill.errors import ConfigError, SourceError
from gristmill.project import load_project
from gristmill.workspace import Workspace


def source_of(root: Path, name: str = "src"):  # type: ignore[no-untyped-def]
    project = load_project(root)
    return open_source(project.sources[name], root)


def landed(root: Path, table: str) -> list[dict]:  # type: ignore[type-arg]
    workspace = Workspace(root)
    result = workspace.run()
    assert result.ok, [s.error for s in result.steps]
    return Workspace(root).query(f"select * from raw.src__{table} order by all").to_pylist()


def test_csv_glob_lands_all_files_with_snake_case_columns(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "sources/src.yml": "kind: files\ntables:\n  orders: {path: data/orders_*.csv}\n",
            "data/orders_1.csv": "OrderId,Customer Name\n1,Ann\n",
            "data/orders_2.csv": "OrderId,Customer Name\n2,Bob\n",
        }
    )
    assert landed(root, "orders") == [
        {"order_id": 1, "customer_name": "Ann"},
        {"order_id": 2, "customer_name": "Bob"},
    ]


def test_ndjson_parquet_and_json_records(make_project: Callable[..., Path], tmp_path: Path) -> None:
    root = make_project(
        {
            "sources/src.yml": """
            kind: files
            tables:
              events: {path: data/events.ndjson}
              facts: {path: data/facts.parquet}
              invoices: {path: data/export.json, records: Invoice, columns: [InvoiceId, Total]}
        """,
            "data/events.ndjson": '{"id": 1, "tags": ["a"]}\n{"id": 2, "tags": []}\n',
            "data/export.json": json.dumps(
                {"Invoice": [{"InvoiceId": 1, "Total": 2.5, "X": 1}], "Other": []}
            ),
        }
    )
    pq.write_table(pa.table({"k": [1, 2, 3]}), root / "data" / "facts.parquet")
    assert landed(root, "events") == [{"id": 1, "tags": ["a"]}, {"id": 2, "tags": []}]
    assert Workspace(root).query("select sum(k) as s from raw.src__facts").to_pylist() == [{"s": 6}]
    assert Workspace(root).query("select * from raw.src__invoices").to_pylist() == [
        {"invoice_id": 1, "total": 2.5}
    ]


def test_a_malformed_csv_line_is_named(make_project: Callable[..., Path]) -> None:
    rows = "".join(f"{i},name{i}\n" for i in range(50))
    root = make_project(
        {
            "sources/src.yml": "kind: files\ntables:\n  people: {path: data/people.csv}\n",
            "data/people.csv": "id,name\n" + rows + "51,extra,field,here\n",
        }
    )
    result = Workspace(root).run()
    [step] = result.steps
    assert step.status == "failed" and step.error is not None
    assert step.error.startswith(
        "sources/src.yml (people): data/people.csv: the header has 2 columns but line 52: "
        "Expected Number of Columns: 2 Found: 3: '51,extra,field,here'"
    )
    assert (
        "raw.src__people"
        not in Workspace(root)
        .query("select table_schema || '.' || table_name as t from information_schema.tables")
        .column("t")
        .to_pylist()
    )


def test_invalid_json_is_named(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "sources/src.yml": "kind: files\ntables:\n  events: {path: data/events.ndjson}\n",
            "data/events.ndjson": '{"id": 1}\n{"id": 2,, }\n',
        }
    )
    with pytest.raises(SourceError) as caught:
        source_of(root).schema(load_project(root).sources["src"].tables["events"])
    assert "sources/src.yml (events): data/events.ndjson" in str(caught.value)
    assert "JSON" in str(caught.value)


def test_records_key_must_exist(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "sources/src.yml": "kind: files\ntables:\n  x: {path: data/d.json, records: Invoices}\n",
            "data/d.json": json.dumps({"Invoice": [{"a": 1}]}),
        }
    )
    with pytest.raises(SourceError, match='the document has no key "Invoices"') as caught:
        source_of(root).schema(load_project(root).sources["src"].tables["x"])
    assert caught.value.hint == "top-level keys: Invoice"


def test_unknown_format_extension(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {"sources/src.yml": "kind: files\ntables:\n  x: {path: data/d.txt}\n", "data/d.txt": "a"}
    )
    with pytest.raises(ConfigError, match=r"cannot tell the format of d\.txt"):
        source_of(root).schema(load_project(root).sources["src"].tables["x"])


def test_columns_that_collide_after_normalising_are_refused(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "sources/src.yml": "kind: files\ntables:\n  x: {path: data/d.csv}\n",
            "data/d.csv": "OrderId,order_id\n1,2\n",
        }
    )
    with pytest.raises(SourceError, match='columns "OrderId" and "order_id" both land as "order_id"'):
        source_of(root).schema(load_project(root).sources["src"].tables["x"])


def test_change_marker_follows_the_files(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {"sources/src.yml": "kind: files\ntables:\n  x: {path: data/*.csv}\n", "data/a.csv": "id\n1\n"}
    )
    table = load_project(root).sources["src"].tables["x"]
    first = source_of(root).change_marker(table)
    assert source_of(root).change_marker(table) == first
    (root / "data" / "b.csv").write_text("id\n2\n")
    second = source_of(root).change_marker(table)
    assert second != first
    os.utime(root / "data" / "a.csv", ns=(1, 1))
    assert source_of(root).change_marker(table) != second
