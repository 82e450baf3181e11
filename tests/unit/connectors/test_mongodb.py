"""The MongoDB source.

Tests marked ``needs_mongodb`` run against a real server named by GRISTMILL_TEST_MONGODB_URL (see
docs/sources-mongodb.md); the rest need none: option errors, the document → Arrow conversion, the
query built for a table, and the error for a server that cannot be reached."""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pymongo
import pytest
from bson import Decimal128, ObjectId

from gristmill._util.naming import snake_case
from gristmill.connectors import open_source
from gristmill.connectors.mongodb.config import MongoTableOptions
from gristmill.connectors.mongodb.source import _Stream, build_query, to_arrow
from gristmill.errors import ConfigError, SourceError
from gristmill.project import load_project
from gristmill.workspace import Workspace

URL_VARIABLE = "GRISTMILL_TEST_MONGODB_URL"
needs_mongodb = pytest.mark.skipif(
    not os.environ.get(URL_VARIABLE),
    reason=f"set {URL_VARIABLE} to run against a real MongoDB (no server package exists on this machine)",
)
ID = snake_case("_id")  # the landed name of _id


def _source_file(database: str, tables: str, connection: str = "${env:" + URL_VARIABLE + "}") -> str:
    return f"kind: mongodb\nconnection: {connection}\ndatabase: {database}\ntables:\n{tables}"


# -- no server needed ------------------------------------------------------------------------------


def test_unknown_table_option_names_the_line_and_suggests(make_project: Callable[..., Path]) -> None:
    root = make_project({"sources/shop.yml": _source_file("shop", "  orders:\n    colection: orders\n")})
    with pytest.raises(ConfigError) as caught:
        open_source(load_project(root).sources["shop"], root)
    assert str(caught.value).startswith('sources/shop.yml:6: unknown option "colection"')
    assert caught.value.hint == 'did you mean "collection"?'


def test_unknown_source_option_and_missing_connection(make_project: Callable[..., Path]) -> None:
    root = make_project({"sources/shop.yml": _source_file("shop", "  orders: {}\n") + "batch_sise: 5\n"})
    with pytest.raises(ConfigError) as caught:
        open_source(load_project(root).sources["shop"], root)
    assert str(caught.value).startswith('sources/shop.yml:6: unknown option "batch_sise"')
    assert caught.value.hint == 'did you mean "batch_size"?'
    (root / "sources" / "shop.yml").write_text("kind: mongodb\ntables: [orders]\n")
    with pytest.raises(ConfigError, match='missing required option "connection"'):
        open_source(load_project(root).sources["shop"], root)


def test_documents_convert_to_arrow_types() -> None:
    oid = ObjectId()
    batch = to_arrow(
        [
            {
                "_id": oid,
                "at": dt.datetime(2024, 1, 2, 3, 4, 5, 123000),  # BSON dates are UTC
                "amount": Decimal128("12.50"),
                "key": uuid.UUID(int=7),
                "customer": {"name": "Ann", "tags": ["vip"]},
                "items": [{"sku": "A1", "qty": 2}, {"sku": "B2", "qty": 1}],
            },
            {"_id": ObjectId(), "amount": Decimal128("3.1"), "customer": {"name": "Bo"}},
        ]
    )
    schema = batch.schema
    assert schema.field("_id").type == pa.string()
    assert schema.field("at").type == pa.timestamp("us", tz="UTC")
    assert pa.types.is_decimal128(schema.field("amount").type)
    assert schema.field("key").type == pa.string()
    assert schema.field("customer").type == pa.struct(
        [("name", pa.string()), ("tags", pa.list_(pa.string()))]
    )
    assert schema.field("items").type == pa.list_(pa.struct([("sku", pa.string()), ("qty", pa.int64())]))
    first, second = batch.to_pylist()
    assert first["_id"] == str(oid)
    assert first["at"] == dt.datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=dt.UTC)
    assert first["amount"] == Decimal("12.50") and second["amount"] == Decimal("3.10")
    assert first["key"] == "00000000-0000-0000-0000-000000000007"
    assert second["at"] is None and second["items"] is None  # missing fields are nulls
    assert second["customer"] == {"name": "Bo", "tags": None}


def test_a_field_with_two_types_is_named() -> None:
    with pytest.raises(SourceError, match='document 1, field "n": Could not convert'):
        to_arrow([{"n": 1}, {"n": "one"}])


def test_later_batches_are_cast_to_the_first_batchs_schema() -> None:
    first = to_arrow([{"_id": ObjectId(), "Amount": Decimal128("1.5"), "meta": {"a": 1}}])
    later = to_arrow([{"_id": ObjectId(), "Amount": Decimal128("12345.25")}, {"_id": ObjectId(), "meta": {}}])
    stream = _Stream("shop (orders)", iter([first, later]), None)
    assert stream.schema.names == [ID, "amount", "meta"]
    assert stream.schema.field("amount").type == pa.decimal128(38, 9)  # room for later, longer values
    table = pa.Table.from_batches(list(stream.batches()))
    assert table.column("amount").to_pylist() == [Decimal("1.5"), Decimal("12345.25"), None]
    assert table.column("meta").to_pylist() == [{"a": 1}, None, {"a": None}]


def test_a_field_the_first_batch_lacked_is_refused() -> None:
    first = to_arrow([{"a": 1}])
    later = to_arrow([{"a": 2, "b": "new"}])
    stream = _Stream("sources/shop.yml (orders): orders", iter([first, later]), None)
    with pytest.raises(SourceError, match='batch 1 has a field the first batch lacked: "b"'):
        list(stream.batches())


def test_query_for_a_table() -> None:
    options = MongoTableOptions(
        filter={
            "status": "paid",
            "created": {"$gte": {"$date": "2024-01-01T00:00:00Z"}},
            "day": dt.date(2024, 2, 1),
        },
        projection=["order_id", "amount", "updatedAt"],
    )
    query, projection, sort = build_query(options, None, None)
    assert query == {
        "status": "paid",
        "created": {"$gte": dt.datetime(2024, 1, 1, tzinfo=dt.UTC)},
        "day": dt.datetime(2024, 2, 1, tzinfo=dt.UTC),
    }
    assert projection == {"order_id": 1, "amount": 1, "updatedAt": 1, "_id": 0}
    assert sort is None
    since = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    query, _, sort = build_query(MongoTableOptions(), "updatedAt", since)
    assert query == {"updatedAt": {"$gte": since}} and sort == [("updatedAt", 1)]
    query, _, _ = build_query(MongoTableOptions(filter={"status": "paid"}), "n", Decimal("2.5"))
    assert query == {"$and": [{"status": "paid"}, {"n": {"$gte": Decimal128("2.5")}}]}
    oid = ObjectId()
    query, _, _ = build_query(MongoTableOptions(), "_id", str(oid))
    assert query == {"$or": [{"_id": {"$gte": str(oid)}}, {"_id": {"$gte": oid}}]}


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # nothing listens once the probe is closed


@pytest.mark.parametrize("from_env", [True, False])
def test_unreachable_server_names_the_source_without_the_password(
    make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, from_env: bool
) -> None:
    password = f"pw-{uuid.uuid4().hex[:12]}"
    url = f"mongodb://reader:{password}@127.0.0.1:{_closed_port()}/shop?serverSelectionTimeoutMS=200"
    monkeypatch.setenv("SHOP_MONGO_URL", url)
    connection = "${env:SHOP_MONGO_URL}" if from_env else f'"{url}"'
    root = make_project({"sources/shop.yml": f"kind: mongodb\nconnection: {connection}\ntables: [orders]\n"})
    spec = load_project(root).sources["shop"]
    source = open_source(spec, root)
    try:
        with pytest.raises(SourceError) as caught:
            source.schema(spec.tables["orders"])
    finally:
        source.close()
    message = str(caught.value)
    assert password not in message
    assert message.startswith("sources/shop.yml: cannot reach MongoDB at mongodb://reader:***@127.0.0.1:")
    assert "Connection refused" in message


def test_unset_connection_variable(
    make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_SUCH_MONGO_URL", raising=False)
    root = make_project(
        {"sources/shop.yml": "kind: mongodb\nconnection: ${env:NO_SUCH_MONGO_URL}\ntables: [orders]\n"}
    )
    spec = load_project(root).sources["shop"]
    with pytest.raises(ConfigError, match="environment variable NO_SUCH_MONGO_URL is not set"):
        open_source(spec, root).schema(spec.tables["orders"])


# -- against a real server -------------------------------------------------------------------------


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh database with sample orders, dropped afterwards."""
    name = f"gristmill_test_{uuid.uuid4().hex[:10]}"
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(os.environ[URL_VARIABLE])
    day = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    client[name].orders.insert_many(
        [
            {
                "_id": ObjectId(),
                "status": "paid" if i % 4 else "open",
                "amount": Decimal128(f"{i}.25"),
                "updatedAt": day + dt.timedelta(days=i),
                "customer": {"name": f"c{i}", "tags": ["a"] * (i % 3)},
                "items": [{"sku": f"S{j}", "qty": j} for j in range(i % 3)],
            }
            for i in range(1, 10)
        ]
    )
    client[name].customers.insert_one({"name": "Ann"})
    try:
        yield name
    finally:
        client.drop_database(name)
        client.close()


def _open(root: Path) -> tuple[Any, Any]:
    spec = load_project(root).sources["shop"]
    return open_source(spec, root), spec


@needs_mongodb
def test_reads_a_collection_with_filter_projection_and_types(
    make_project: Callable[..., Path], database: str
) -> None:
    root = make_project(
        {
            "sources/shop.yml": _source_file(
                database,
                "  orders:\n    filter: {status: paid}\n    batch_size: 2\n"
                "    projection: [_id, amount, updatedAt, customer, items]\n",
            )
        }
    )
    source, spec = _open(root)
    try:
        table = source.read(spec.tables["orders"]).read_all()
    finally:
        source.close()
    assert table.column_names == [ID, "amount", "updated_at", "customer", "items"]
    assert table.num_rows == 7  # two of nine are open
    assert table.schema.field(ID).type == pa.string()
    assert table.schema.field("updated_at").type == pa.timestamp("us", tz="UTC")
    assert pa.types.is_decimal(table.schema.field("amount").type)
    assert pa.types.is_struct(table.schema.field("customer").type)
    assert pa.types.is_list(table.schema.field("items").type)
    rows = sorted(table.to_pylist(), key=lambda r: r["updated_at"])
    assert rows[0]["amount"] == Decimal("1.25")
    assert rows[0]["items"] == [{"sku": "S0", "qty": 0}]
    assert rows[0]["customer"] == {"name": "c1", "tags": ["a"]}


@needs_mongodb
def test_incremental_reads_from_since_on_the_source_field(
    make_project: Callable[..., Path], database: str
) -> None:
    root = make_project({"sources/shop.yml": _source_file(database, "  orders: {incremental: updatedAt}\n")})
    source, spec = _open(root)
    try:
        since = dt.datetime(2024, 1, 8, tzinfo=dt.UTC)
        table = source.read(spec.tables["orders"], since).read_all()
    finally:
        source.close()
    assert table.column("updated_at").to_pylist() == [
        dt.datetime(2024, 1, 8, tzinfo=dt.UTC),
        dt.datetime(2024, 1, 9, tzinfo=dt.UTC),
        dt.datetime(2024, 1, 10, tzinfo=dt.UTC),
    ]


@needs_mongodb
def test_unknown_collection_suggests_one(make_project: Callable[..., Path], database: str) -> None:
    root = make_project({"sources/shop.yml": _source_file(database, "  orders:\n    collection: ordrs\n")})
    source, spec = _open(root)
    try:
        with pytest.raises(ConfigError) as caught:
            source.schema(spec.tables["orders"])
    finally:
        source.close()
    assert str(caught.value).startswith(
        f'sources/shop.yml:6: database "{database}" has no collection "ordrs"'
    )
    assert caught.value.hint == 'did you mean "orders"?'


@needs_mongodb
def test_a_project_run_lands_the_collection(make_project: Callable[..., Path], database: str) -> None:
    root = make_project({"sources/shop.yml": _source_file(database, "  orders: {}\n  customers: {}\n")})
    result = Workspace(root).run()
    assert result.ok, [s.error for s in result.steps]
    workspace = Workspace(root)
    assert workspace.query("select count(*) as n from raw.shop__orders").to_pylist() == [{"n": 9}]
    assert workspace.query("select name from raw.shop__customers").to_pylist() == [{"name": "Ann"}]
