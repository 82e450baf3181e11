"""The MySQL source against the loopback MariaDB server, on Chinook and on tables made here.

The source connects as a user with a password (from a secret reference), never as root."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote, urlsplit

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from gristmill.errors import ConfigError, SourceError, TransientSourceError
from gristmill.workspace import Workspace
from tests.support.sqldb_servers import MY_PASSWORD, Database, Sources, closed_port, mysql_chinook

ENV = "GM_TEST_MY_URL"


@pytest.fixture(scope="module")
def my() -> Iterator[Database]:
    with mysql_chinook() as database:
        database.execute(
            """
            SET time_zone = '+02:00';
            CREATE TABLE typed (
                id INT PRIMARY KEY, amount DECIMAL(12, 3), fine DECIMAL(30, 15), paid_at TIMESTAMP(6) NULL,
                noted_at DATETIME, due DATE, active BOOLEAN, flag BIT(1), payload BLOB, doc JSON, took TIME,
                big BIGINT UNSIGNED
            );
            INSERT INTO typed VALUES
                (1, 123456789.123, 123456789012345.123456789012345, '2024-03-01 12:00:00.123456',
                 '2024-03-01 12:00:00', '2024-03-31', TRUE, b'1', x'00ff10', '{"a": 1}', '-12:30:00',
                 18446744073709551615),
                (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
            SET time_zone = '+00:00';
            CREATE TABLE events (id INT, changed_at DATETIME(6) NOT NULL, seen_at TIMESTAMP NULL);
            INSERT INTO events VALUES (1, '2024-01-01', '2024-01-01'), (2, '2024-02-01', '2024-02-01'),
                                      (3, '2024-03-01', '2024-03-01');
            CREATE TABLE sparse (id INT NULL, label VARCHAR(20));
            INSERT INTO sparse SELECT IF(seq % 10 = 0, NULL, seq), CONCAT('row ', seq) FROM seq_1_to_1000;
            """
        )
        yield database


@pytest.fixture
def sources(
    make_project: Callable[..., Path], my: Database, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Sources]:
    monkeypatch.setenv(ENV, my.url)
    opened = Sources(make_project, "mysql", ENV)
    yield opened
    opened.close()


def test_reads_chinook_with_exact_decimals(sources: Sources) -> None:
    source, tables = sources.open(
        """
        tables:
          invoice: {}
          invoice_line: {}
        """
    )
    invoices = source.read(tables["invoice"]).read_all()
    assert invoices.num_rows == 412
    assert invoices.schema == source.schema(tables["invoice"])
    assert invoices.column_names[:3] == ["invoice_id", "customer_id", "invoice_date"]
    assert invoices.schema.field("total").type == pa.decimal128(10, 2)
    assert pc.sum(invoices.column("total")).as_py() == Decimal("2328.60")
    assert source.read(tables["invoice_line"]).read_all().num_rows == 2240  # found as InvoiceLine


def test_password_may_be_a_reference_of_its_own(
    sources: Sources, my: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = urlsplit(my.url)
    monkeypatch.setenv("GM_TEST_MY_PW", MY_PASSWORD)  # has @ : / in it: the source encodes it for the URL
    source, tables = sources.open(
        "tables:\n  genre: {}\n",
        connection=f"mysql://{url.username}:${{env:GM_TEST_MY_PW}}@{url.hostname}:{url.port}{url.path}",
    )
    assert source.read(tables["genre"]).read_all().num_rows == 25


def test_types_keep_precision_time_zone_and_kind(sources: Sources) -> None:
    source, tables = sources.open("tables:\n  typed: {}\n")
    schema = source.schema(tables["typed"])
    assert dict(zip(schema.names, schema.types, strict=True)) == {
        "id": pa.int32(),
        "amount": pa.decimal128(12, 3),
        "fine": pa.decimal128(30, 15),
        "paid_at": pa.timestamp("us", tz="UTC"),  # TIMESTAMP is an instant
        "noted_at": pa.timestamp("us"),  # DATETIME is wall-clock time
        "due": pa.date32(),
        "active": pa.bool_(),
        "flag": pa.bool_(),
        "payload": pa.binary(),
        "doc": pa.string(),
        "took": pa.string(),  # TIME spans ±838 hours: text
        "big": pa.uint64(),
    }
    table = source.read(tables["typed"]).read_all()
    assert table.schema == schema
    rows = table.sort_by("id").to_pylist()
    assert rows[0] == {
        "id": 1,
        "amount": Decimal("123456789.123"),
        "fine": Decimal("123456789012345.123456789012345"),
        "paid_at": datetime(2024, 3, 1, 10, 0, 0, 123456, tzinfo=UTC),  # written at +02:00
        "noted_at": datetime(2024, 3, 1, 12, 0),
        "due": date(2024, 3, 31),
        "active": True,
        "flag": True,
        "payload": b"\x00\xff\x10",
        "doc": '{"a": 1}',
        "took": "-12:30:00",
        "big": 18446744073709551615,
    }
    assert set(rows[1].values()) == {2, None}


def test_columns_and_custom_query(sources: Sources, my: Database) -> None:
    source, tables = sources.open(
        """
        tables:
          invoice: {table: Invoice, columns: [InvoiceId, total]}
          big_invoices:
            query: SELECT InvoiceId, BillingCountry, Total FROM Invoice WHERE Total > 10
            columns: [InvoiceId, Total]
        """
    )
    picked = source.read(tables["invoice"]).read_all()
    assert picked.column_names == ["invoice_id", "total"] and picked.num_rows == 412
    big = source.read(tables["big_invoices"]).read_all()
    assert big.column_names == ["invoice_id", "total"]
    assert big.schema == source.schema(tables["big_invoices"])
    assert big.num_rows == int(str(my.scalar("SELECT COUNT(*) FROM Invoice WHERE Total > 10"))) > 0
    assert pc.min(big.column("total")).as_py() > 10


def test_incremental_read_returns_rows_from_the_bound(sources: Sources, my: Database) -> None:
    my.execute(
        "SET time_zone = '+00:00'; INSERT INTO events VALUES"
        " (4, '2024-06-01', '2024-06-01'), (5, '2024-06-02 12:30', '2024-06-02 12:30');"
    )
    source, tables = sources.open(
        """
        tables:
          events: {incremental: {cursor: changed_at}}
          seen: {table: events, incremental: {cursor: seen_at}}
        """
    )
    # Rows come straight from the driver into Arrow: the server applied the bound.
    fresh = source.read(tables["events"], since=datetime(2024, 6, 1)).read_all()
    assert sorted(fresh.column("id").to_pylist()) == [4, 5]
    assert source.read(tables["events"], since=datetime(2024, 6, 2, 12, 30)).read_all()["id"].to_pylist() == [
        5
    ]
    # an aware bound on a TIMESTAMP column compares as the same instant
    aware = source.read(
        tables["seen"], since=datetime(2024, 6, 2, 14, 30, tzinfo=timezone(timedelta(hours=2)))
    ).read_all()
    assert aware.column("id").to_pylist() == [5]
    assert source.read(tables["events"]).read_all().num_rows == 5


def test_partitioned_read_returns_the_same_rows(sources: Sources) -> None:
    source, tables = sources.open(
        """
        tables:
          whole: {table: InvoiceLine}
          split: {table: InvoiceLine, partition: {column: InvoiceLineId, parts: 4}}
          sparse: {partition: {column: id, parts: 3}}
        """
    )
    whole = source.read(tables["whole"]).read_all()
    split = source.read(tables["split"]).read_all()
    assert split.num_rows == whole.num_rows == 2240
    assert split.schema == whole.schema
    for column in ("invoice_line_id", "unit_price", "quantity"):
        assert pc.sum(split.column(column)).as_py() == pc.sum(whole.column(column)).as_py()
    assert whole.sort_by("invoice_line_id").equals(split.sort_by("invoice_line_id"))
    sparse = source.read(tables["sparse"]).read_all()
    assert sparse.num_rows == 1000 and sparse.column("id").null_count == 100


def test_wrong_password_is_refused_without_showing_it(sources: Sources, my: Database, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    wrong = "Not-The-Pw-77"
    url = urlsplit(my.url)
    monkeypatch.setenv(ENV, f"mysql://{url.username}:{wrong}@{url.hostname}:{url.port}{url.path}")
    source, tables = sources.open("tables:\n  invoice: {}\n")
    with pytest.raises(SourceError) as caught:
        source.read(tables["invoice"])
    assert not isinstance(caught.value, TransientSourceError)  # retrying cannot help
    text = str(caught.value)
    assert wrong not in text and MY_PASSWORD not in text
    assert text.startswith(
        f"sources/shop.yml (invoice): cannot connect to mysql://{url.username}:***@127.0.0.1:"
    )
    assert "Access denied" in text
    assert "${env:GM_TEST_MY_URL}" in (caught.value.hint or "")


def test_closed_port_is_a_connection_error(sources: Sources, monkeypatch: pytest.MonkeyPatch) -> None:
    encoded = quote(MY_PASSWORD, safe="")
    monkeypatch.setenv(ENV, f"mysql://app:{encoded}@127.0.0.1:{closed_port()}/shop")
    source, tables = sources.open("tables:\n  invoice: {}\n")
    with pytest.raises(
        TransientSourceError, match=re.escape("cannot connect to mysql://app:***@127.0.0.1")
    ) as caught:
        source.schema(tables["invoice"])
    assert MY_PASSWORD not in str(caught.value) and encoded not in str(caught.value)


def test_unknown_table_and_column_suggest_names(sources: Sources) -> None:
    source, tables = sources.open(
        """
        tables:
          invoice: {table: Invoce}
          line: {table: InvoiceLine, columns: [InvoiceLineId, UnitPrise]}
        """
    )
    with pytest.raises(ConfigError) as caught:
        source.schema(tables["invoice"])
    assert str(caught.value).startswith('sources/shop.yml:4: database "gristmill_test_my_')
    assert 'has no table "Invoce"' in str(caught.value)
    assert caught.value.hint == 'did you mean "Invoice"?'
    with pytest.raises(ConfigError) as caught:
        source.schema(tables["line"])
    assert str(caught.value).startswith("sources/shop.yml:5: ")
    assert caught.value.hint == 'did you mean "UnitPrice"?'


def test_url_without_database_is_refused(sources: Sources, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "mysql://app@127.0.0.1:3306")
    source, tables = sources.open("tables:\n  invoice: {}\n")
    with pytest.raises(ConfigError, match=re.escape("sources/shop.yml:2: connection names no database")):
        source.schema(tables["invoice"])


def test_runs_end_to_end_into_the_lake(make_project: Callable[..., Path], my: Database, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(ENV, my.url)
    root = make_project(
        {
            "sources/shop.yml": f"""
            kind: mysql
            connection: ${{env:{ENV}}}
            tables:
              invoice: {{}}
              invoice_line: {{partition: {{column: InvoiceLineId, parts: 2}}}}
            """,
        }
    )
    result = Workspace(root).run()
    assert result.ok, [(s.asset, s.error) for s in result.steps]
    landed = Workspace(root).query("select count(*) as n, sum(total) as total from raw.shop__invoice")
    assert landed.to_pylist() == [{"n": 412, "total": Decimal("2328.60")}]
    lines = Workspace(root).query("select count(*) as n from raw.shop__invoice_line")
    assert lines.column("n").to_pylist() == [2240]
