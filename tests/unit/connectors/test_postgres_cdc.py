"""The postgres_cdc source against a real PostgreSQL 15 cluster running with wal_level = logical."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pyarrow as pa
import pytest

from gristmill.connectors import open_source
from gristmill.connectors.postgres_cdc.source import Source
from gristmill.errors import ConfigError, SourceError, TransientSourceError
from gristmill.project import load_project
from gristmill.project.specs import SourceTable
from tests.support.pg_cluster import Cluster, running_cluster

_databases = itertools.count()

INVOICE = """
CREATE TABLE invoice (
    invoice_id int PRIMARY KEY,
    customer text NOT NULL,
    total numeric(10, 2),
    paid boolean,
    issued_at timestamptz,
    due date,
    "NoteText" text
);
INSERT INTO invoice VALUES
    (1, 'ada', 12.50, true, '2024-01-02 10:00:00+00', '2024-02-01', 'first'),
    (2, 'bob', 7.25, false, '2024-01-03 11:30:00+02', '2024-02-02', NULL),
    (3, 'cy', NULL, NULL, NULL, NULL, 'line one
line two, "quoted"');
"""


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    with running_cluster("logical") as running:
        yield running


@pytest.fixture
def db(cluster: Cluster) -> Iterator[tuple[str, psycopg.Connection[Any]]]:
    """A fresh database on the cluster: its URL and an autocommit connection to it."""
    name = f"shop{next(_databases)}"
    with cluster.connect() as admin:
        admin.execute(f"CREATE DATABASE {name}")
    with cluster.connect(name) as con:
        yield cluster.url(name), con


def _source(
    make_project: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    tables: str,
    slot: str | None = None,
) -> tuple[Callable[[], Source], dict[str, SourceTable]]:
    """A project whose source reads ``tables``; returns a factory of Source objects and the tables."""
    monkeypatch.setenv("SHOPDB_URL", url)
    slot = slot or _slot(url)
    root = make_project(
        {
            "sources/shop.yml": f"""
            kind: postgres_cdc
            connection: ${{env:SHOPDB_URL}}
            slot: {slot}
            publication: {slot}
            tables:
            {tables}
            """
        }
    )
    spec = load_project(root).sources["shop"]

    def make() -> Source:
        source = open_source(spec, root)
        assert isinstance(source, Source)
        return source

    return make, spec.tables


INVOICE_TABLE = (
    "  invoice: {table: public.invoice, key: [invoice_id], write: merge, incremental: {cursor: _gm_lsn}}"
)


def _read(source: Source, table: SourceTable, since: int | None = None) -> pa.Table:
    return source.read(table, since).read_all()


def _changes(table: pa.Table) -> list[tuple[str, Any]]:
    return list(zip(table.column("_gm_op").to_pylist(), table.column("invoice_id").to_pylist(), strict=True))


def _apply(snapshot: pa.Table, *changes: pa.Table, key: str = "invoice_id") -> list[dict[str, Any]]:
    """What a merge on the key makes of the snapshot and the changes: last op per key wins."""
    con = duckdb.connect()
    con.register("snapshot_rows", snapshot)
    for index, table in enumerate(changes):
        con.register(f"changes{index}", table)
    union = " UNION ALL ".join(
        ["SELECT * FROM snapshot_rows", *(f"SELECT * FROM changes{i}" for i in range(len(changes)))]
    )
    return (
        con.sql(
            f"""SELECT * EXCLUDE (_gm_op, _gm_lsn, _gm_seq, rn) FROM (
                SELECT *, row_number() OVER (PARTITION BY {key} ORDER BY _gm_lsn DESC, _gm_seq DESC) AS rn
                FROM ({union}))
            WHERE rn = 1 AND _gm_op <> 'delete' ORDER BY {key}"""
        )
        .to_arrow_table()
        .to_pylist()
    )


def _server_rows(con: psycopg.Connection[Any], table: str, key: str = "invoice_id") -> list[dict[str, Any]]:
    cur = con.execute(f"SELECT * FROM {table} ORDER BY {key}")
    names = [d.name for d in cur.description or []]
    landed = {"NoteText": "note_text"}
    return [{landed.get(n, n): v for n, v in zip(names, row, strict=True)} for row in cur.fetchall()]


def _slot(url: str) -> str:
    """Slots are named per server: one per test database."""
    return "gm_" + url.rsplit("/", 1)[1]


def _confirmed(con: psycopg.Connection[Any]) -> int:
    row = con.execute(
        "SELECT (confirmed_flush_lsn - '0/0')::int8 FROM pg_replication_slots"
        " WHERE database = current_database()"
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_snapshot_then_changes_converge_to_the_table(
    db: tuple[str, psycopg.Connection[Any]],
    make_project: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, con = db
    con.execute(INVOICE)
    make, tables = _source(make_project, monkeypatch, url, INVOICE_TABLE)
    source, invoice = make(), tables["invoice"]

    expected = pa.schema(
        [
            ("invoice_id", pa.int32()),
            ("customer", pa.string()),
            ("total", pa.decimal128(10, 2)),
            ("paid", pa.bool_()),
            ("issued_at", pa.timestamp("us", tz="UTC")),
            ("due", pa.date32()),
            ("note_text", pa.string()),
            ("_gm_op", pa.string()),
            ("_gm_lsn", pa.int64()),
            ("_gm_seq", pa.int64()),
        ]
    )
    assert source.schema(invoice) == expected
    snapshot = _read(source, invoice)
    assert snapshot.schema == expected
    assert _changes(snapshot) == [("insert", 1), ("insert", 2), ("insert", 3)]
    assert len(set(snapshot.column("_gm_lsn").to_pylist())) == 1
    assert snapshot.column("_gm_seq").to_pylist() == [0, 1, 2]
    rows = snapshot.to_pylist()
    assert rows[1]["issued_at"] == datetime(2024, 1, 3, 9, 30, tzinfo=UTC)
    assert rows[0]["total"] == Decimal("12.50") and rows[0]["due"] == date(2024, 2, 1)
    assert rows[1]["note_text"] is None and rows[2]["note_text"] == 'line one\nline two, "quoted"'
    assert rows[2]["total"] is None and rows[2]["paid"] is None
    snapshot_lsn = snapshot.column("_gm_lsn")[0].as_py()

    with con.transaction():
        con.execute("INSERT INTO invoice VALUES (4, 'dee', 3.00, false, now(), NULL, '')")
        con.execute("UPDATE invoice SET paid = true, total = 13.75 WHERE invoice_id = 1")
    with con.transaction():
        con.execute("DELETE FROM invoice WHERE invoice_id = 2")
        con.execute("UPDATE invoice SET customer = 'cyrus' WHERE invoice_id = 3")
    con.execute("UPDATE invoice SET invoice_id = 40 WHERE invoice_id = 4")  # the key itself changes
    with con.transaction():
        con.execute("INSERT INTO invoice VALUES (5, 'eve', 1.00, true, NULL, NULL, NULL)")
        con.execute("DELETE FROM invoice WHERE invoice_id = 5")

    changes = _read(source, invoice, snapshot_lsn + 1)
    assert changes.schema == expected
    assert _changes(changes) == [
        ("insert", 4),
        ("update", 1),
        ("delete", 2),
        ("update", 3),
        ("delete", 4),
        ("update", 40),
        ("insert", 5),
        ("delete", 5),
    ]
    lsns = changes.column("_gm_lsn").to_pylist()
    assert lsns == sorted(lsns) and len(set(lsns)) == 4 and lsns[0] > snapshot_lsn
    assert lsns[0] == lsns[1] and lsns[2] == lsns[3] and lsns[6] == lsns[7]
    assert changes.column("_gm_seq").to_pylist() == list(range(8))
    deleted = changes.to_pylist()[2]
    assert deleted["invoice_id"] == 2 and deleted["customer"] is None and deleted["total"] is None
    assert changes.to_pylist()[0]["note_text"] == ""  # an empty string is not NULL

    assert _apply(snapshot, changes) == _server_rows(con, "invoice")
    source.close()


def test_peeking_does_not_consume_until_acknowledged(
    db: tuple[str, psycopg.Connection[Any]],
    make_project: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, con = db
    con.execute(INVOICE)
    make, tables = _source(make_project, monkeypatch, url, INVOICE_TABLE)
    source, invoice = make(), tables["invoice"]
    snapshot = _read(source, invoice)
    since = snapshot.column("_gm_lsn")[0].as_py() + 1
    source.acknowledge(invoice, since - 1)
    for customer in ("x", "y", "z"):
        con.execute("UPDATE invoice SET customer = %s WHERE invoice_id = 1", [customer])

    first, second = _read(source, invoice, since), _read(source, invoice, since)
    assert first.num_rows == 3 and first.equals(second)
    # a new process sees the same: nothing was consumed
    assert _read(make(), invoice, since).equals(first)

    lsns = first.column("_gm_lsn").to_pylist()
    source.acknowledge(invoice, lsns[1])
    assert _confirmed(con) == lsns[1] + 1
    left = _read(make(), invoice, 1)  # everything still in the slot
    assert left.column("_gm_lsn").to_pylist() == [lsns[2]]
    assert left.column("customer").to_pylist() == ["z"]

    source.acknowledge(invoice, lsns[2])
    assert _read(make(), invoice, 1).num_rows == 0
    source.close()


def test_a_crash_between_commit_and_acknowledge_loses_and_doubles_nothing(
    db: tuple[str, psycopg.Connection[Any]],
    make_project: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, con = db
    con.execute(INVOICE)
    make, tables = _source(make_project, monkeypatch, url, INVOICE_TABLE)
    invoice = tables["invoice"]
    first = make()
    snapshot = _read(first, invoice)
    first.acknowledge(invoice, snapshot.column("_gm_lsn")[0].as_py())
    con.execute("INSERT INTO invoice VALUES (10, 'a', 1, true, NULL, NULL, NULL)")
    con.execute("UPDATE invoice SET total = 99 WHERE invoice_id = 10")

    batch1 = _read(first, invoice, snapshot.column("_gm_lsn")[0].as_py() + 1)
    committed = max(batch1.column("_gm_lsn").to_pylist())  # the lake commits this, then the process dies
    del first
    con.execute("DELETE FROM invoice WHERE invoice_id = 10")
    con.execute("INSERT INTO invoice VALUES (11, 'b', 2, false, NULL, NULL, NULL)")

    restarted = make()
    batch2 = _read(restarted, invoice, committed + 1)
    assert _changes(batch1) == [("insert", 10), ("update", 10)]
    assert _changes(batch2) == [("delete", 10), ("insert", 11)]
    assert min(batch2.column("_gm_lsn").to_pylist()) > committed
    assert _apply(snapshot, batch1, batch2) == _server_rows(con, "invoice")

    restarted.acknowledge(invoice, max(batch2.column("_gm_lsn").to_pylist()))
    assert _read(make(), invoice, 1).num_rows == 0
    restarted.close()


def test_tables_sharing_a_slot_keep_their_changes_until_all_acknowledge(
    db: tuple[str, psycopg.Connection[Any]],
    make_project: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, con = db
    con.execute(INVOICE)
    con.execute("CREATE TABLE customer (id bigint PRIMARY KEY, name varchar(20), score float8, meta jsonb)")
    con.execute("CREATE TABLE quiet (id int PRIMARY KEY)")
    make, tables = _source(
        make_project,
        monkeypatch,
        url,
        INVOICE_TABLE
        + "\n              customer: {key: [id], write: merge, incremental: {cursor: _gm_lsn}}"
        + "\n              quiet: {key: [id], write: merge, incremental: {cursor: _gm_lsn}}",
    )
    source = make()
    invoice, customer, quiet = tables["invoice"], tables["customer"], tables["quiet"]
    assert source.schema(customer).field("meta").type == pa.string()
    marks = {}
    for table in (invoice, customer, quiet):
        marks[table.key] = _read(source, table).column("_gm_lsn")
    lsn = {k: (v[0].as_py() if len(v) else None) for k, v in marks.items()}
    assert lsn["invoice"] is not None and lsn["quiet"] is None  # one exported snapshot for all
    since = lsn["invoice"] + 1
    source.acknowledge(invoice, lsn["invoice"])
    before = _confirmed(con)

    with con.transaction():
        con.execute("INSERT INTO customer VALUES (1, 'ada', 0.5, '{\"vip\": true}')")
        con.execute("UPDATE invoice SET customer = 'ada l.' WHERE invoice_id = 1")
    con.execute("UPDATE customer SET score = 1e300 WHERE id = 1")

    invoices = _read(source, invoice, since)
    assert _changes(invoices) == [("update", 1)]
    source.acknowledge(invoice, invoices.column("_gm_lsn")[0].as_py())
    assert _confirmed(con) == before  # customer has not committed its changes yet

    customers = _read(source, customer, since)
    assert customers.column("_gm_op").to_pylist() == ["insert", "update"]
    assert customers.column("score").to_pylist() == [0.5, 1e300]
    assert customers.column("meta").to_pylist()[0] == '{"vip": true}'
    assert customers.column("_gm_lsn")[0] == invoices.column("_gm_lsn")[0]  # one transaction, one LSN
    source.acknowledge(customer, max(customers.column("_gm_lsn").to_pylist()))
    assert _confirmed(con) == before  # quiet has not been read since

    assert _read(source, quiet, since).num_rows == 0  # nothing to commit: it holds nothing back
    assert _confirmed(con) > max(customers.column("_gm_lsn").to_pylist())
    fresh = make()
    assert all(_read(fresh, t, 1).num_rows == 0 for t in (invoice, customer, quiet))
    source.close()
    fresh.close()


def test_a_table_added_later_is_snapshotted_and_replayed_at_least_once(
    db: tuple[str, psycopg.Connection[Any]],
    make_project: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, con = db
    con.execute(INVOICE)
    con.execute("CREATE TABLE customer (id int PRIMARY KEY, name text)")
    make, tables = _source(make_project, monkeypatch, url, INVOICE_TABLE)
    first = make()
    first.read(tables["invoice"]).read_all()
    first.close()
    con.execute("INSERT INTO customer VALUES (1, 'a'), (2, 'b')")
    con.execute("UPDATE invoice SET total = 1 WHERE invoice_id = 1")

    make, tables = _source(
        make_project,
        monkeypatch,
        url,
        INVOICE_TABLE + "\n              customer: {key: [id], write: merge, incremental: {cursor: _gm_lsn}}",
    )
    source = make()
    snapshot = _read(source, tables["customer"])  # the publication gains the table, the slot exists
    assert snapshot.column("id").to_pylist() == [1, 2]
    con.execute("UPDATE customer SET name = 'bb' WHERE id = 2")
    con.execute("DELETE FROM customer WHERE id = 1")
    changes = _read(source, tables["customer"], snapshot.column("_gm_lsn")[0].as_py() + 1)
    assert changes.column("_gm_op").to_pylist() == ["update", "delete"]
    assert _apply(snapshot, changes, key="id") == [{"id": 2, "name": "bb"}]
    source.close()


def test_values_of_many_types_and_unchanged_large_values(
    db: tuple[str, psycopg.Connection[Any]],
    make_project: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, con = db
    con.execute(
        """CREATE TABLE doc (id smallint PRIMARY KEY, body text, amount numeric, ratio real, at timestamp,
                             t time, raw bytea, u uuid, tags text[])"""
    )
    con.execute("ALTER TABLE doc REPLICA IDENTITY FULL")
    big = "".join(f"{i:x}" for i in range(3000))  # stored out of line (TOASTed), barely compressible
    con.execute(
        "INSERT INTO doc VALUES (1, %s, 123456789.123456789, 0.25, '2024-05-06 07:08:09.5', '10:11:12',"
        " '\\x00ff', '7d444840-9dc0-11d1-b245-5ffdce74fad2', '{a,b}')",
        [big],
    )
    make, tables = _source(
        make_project, monkeypatch, url, "  doc: {key: [id], write: merge, incremental: {cursor: _gm_lsn}}"
    )
    source, doc = make(), tables["doc"]
    snapshot = _read(source, doc)
    con.execute("UPDATE doc SET ratio = 0.5 WHERE id = 1")  # body is not sent: pgoutput marks it unchanged
    changes = _read(source, doc, snapshot.column("_gm_lsn")[0].as_py() + 1)
    for rows in (snapshot, changes):
        row = rows.to_pylist()[-1]
        assert row["body"] == big
        assert row["amount"] == "123456789.123456789"  # unconstrained numeric stays exact, as text
        assert row["at"] == datetime(2024, 5, 6, 7, 8, 9, 500000)
        assert str(row["t"]) == "10:11:12" and row["raw"] == b"\x00\xff" and row["tags"] == "{a,b}"
    assert changes.column("ratio").to_pylist() == [0.5] and changes.schema.field("id").type == pa.int16()

    # without the full old row, the unchanged value is unknown: refuse rather than land a NULL
    con.execute("ALTER TABLE doc REPLICA IDENTITY DEFAULT")
    con.execute("UPDATE doc SET ratio = 0.75 WHERE id = 1")
    with pytest.raises(SourceError, match='left the large value of "body" unchanged') as caught:
        _read(source, doc, changes.column("_gm_lsn")[0].as_py() + 1)
    assert "REPLICA IDENTITY FULL" in (caught.value.hint or "")
    source.close()


def test_truncate_is_refused(
    db: tuple[str, psycopg.Connection[Any]],
    make_project: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, con = db
    con.execute(INVOICE)
    make, tables = _source(make_project, monkeypatch, url, INVOICE_TABLE)
    source, invoice = make(), tables["invoice"]
    since = _read(source, invoice).column("_gm_lsn")[0].as_py() + 1
    con.execute("TRUNCATE invoice")
    with pytest.raises(SourceError, match="was truncated"):
        _read(source, invoice, since)
    source.close()


def test_unknown_table_suggests_one(
    db: tuple[str, psycopg.Connection[Any]],
    make_project: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, con = db
    con.execute(INVOICE)
    make, tables = _source(
        make_project,
        monkeypatch,
        url,
        "  invoice: {table: public.invoce, key: [invoice_id], write: merge, incremental: {cursor: _gm_lsn}}",
    )
    with pytest.raises(ConfigError) as caught:
        make().schema(tables["invoice"])
    assert str(caught.value).startswith("sources/shop.yml:6: 127.0.0.1:")
    assert '"public.invoce" does not exist' in str(caught.value)
    assert caught.value.hint == 'did you mean "public.invoice"?'


def test_cdc_tables_must_be_incremental_on_the_lsn(
    make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    make, _ = _source(make_project, monkeypatch, "postgresql://x@127.0.0.1:1/x", "  invoice: {key: [id]}")
    with pytest.raises(ConfigError, match="incremental on _gm_lsn") as caught:
        make()
    assert "sources/shop.yml:6" in str(caught.value)
    with pytest.raises(ConfigError, match="slot"):
        _source(make_project, monkeypatch, "postgresql://x@h/x", INVOICE_TABLE, slot="Bad-Name")[0]()


def test_missing_privileges_and_unreachable_servers_never_show_the_password(
    db: tuple[str, psycopg.Connection[Any]],
    make_project: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, con = db
    con.execute(INVOICE)
    con.execute("CREATE ROLE clerk LOGIN PASSWORD 'pw-Secret-42'")
    con.execute("GRANT SELECT ON invoice TO clerk")
    password_url = url.replace("postgres@", "clerk:pw-Secret-42@")
    make, tables = _source(make_project, monkeypatch, password_url, INVOICE_TABLE, slot="gm_clerk")
    with pytest.raises(SourceError) as caught:
        make().read(tables["invoice"])
    assert 'role "clerk"' in str(caught.value) and "may not use replication slots" in str(caught.value)
    assert "ALTER ROLE clerk REPLICATION" in str(caught.value)
    assert "pw-Secret-42" not in str(caught.value)

    con.execute("ALTER ROLE clerk REPLICATION")
    with pytest.raises(SourceError) as not_owner:  # publishing a table takes its owner
        make().read(tables["invoice"])
    assert 'creating publication "gm_clerk"' in str(not_owner.value)
    assert "permission denied for database" in str(not_owner.value)
    assert "create the publication as an owner" in (not_owner.value.hint or "")
    con.execute("REVOKE SELECT ON invoice FROM clerk")
    with pytest.raises(SourceError, match=r"no SELECT privilege on public\.invoice"):
        make().read(tables["invoice"])

    closed = password_url.split("@")[0] + "@127.0.0.1:1/shop"
    make, tables = _source(make_project, monkeypatch, closed, INVOICE_TABLE, slot="gm_clerk")
    with pytest.raises(TransientSourceError) as unreachable:
        make().schema(tables["invoice"])
    assert "connecting on 127.0.0.1:1/shop" in str(unreachable.value)
    assert "pw-Secret-42" not in str(unreachable.value)
    # a literal password in the YAML (not an ${env:} reference) is scrubbed too
    monkeypatch.delenv("SHOPDB_URL")
    source = make()
    source.options = source.options.model_copy(update={"connection": closed})
    with pytest.raises(TransientSourceError) as literal:
        source.schema(tables["invoice"])
    assert "pw-Secret-42" not in str(literal.value)


def _replica_server() -> Iterator[str]:
    """A server without logical WAL: the shared one on 5432 when it is so, else a throwaway cluster."""
    shared = "postgresql://postgres:pw-Never-Shown@127.0.0.1:5432/postgres"
    try:
        with psycopg.connect(shared, connect_timeout=2) as con:
            row = con.execute("SHOW wal_level").fetchone()
        if row is not None and row[0] != "logical":
            yield shared
            return
    except psycopg.OperationalError:
        pass
    with running_cluster("replica") as replica:
        yield replica.url(password="pw-Never-Shown")


def test_wal_level_must_be_logical(
    make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    for url in _replica_server():
        make, tables = _source(make_project, monkeypatch, url, INVOICE_TABLE)
        with pytest.raises(SourceError) as caught:
            make().read(tables["invoice"])
        assert "wal_level = replica; change data capture needs wal_level = logical" in str(caught.value)
        assert "wal_level = logical" in (caught.value.hint or "") and "restart" in (caught.value.hint or "")
        assert "pw-Never-Shown" not in str(caught.value)


def test_a_dropped_slot_is_never_papered_over(
    db: tuple[str, psycopg.Connection[Any]],
    make_project: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, con = db
    con.execute(INVOICE)
    con.execute("CREATE TABLE customer (id int PRIMARY KEY, name text)")
    make, tables = _source(
        make_project,
        monkeypatch,
        url,
        INVOICE_TABLE + "\n              customer: {key: [id], write: merge, incremental: {cursor: _gm_lsn}}",
    )
    invoice, customer = tables["invoice"], tables["customer"]
    first = make()
    since = _read(first, invoice).column("_gm_lsn")[0].as_py() + 1
    first.read(customer).read_all()
    first.close()
    con.execute("SELECT pg_drop_replication_slot(%s)", [_slot(url)])
    con.execute("INSERT INTO customer VALUES (1, 'lost while no slot existed')")

    source = make()
    with pytest.raises(SourceError, match="does not exist, so changes committed after LSN") as missing:
        source.read(customer, since)
    assert "full refresh" in (missing.value.hint or "")
    _read(source, invoice)  # a full refresh of one table creates the slot again
    with pytest.raises(SourceError, match="was created anew"):
        source.read(customer, since)
    assert _read(source, customer).column("name").to_pylist() == ["lost while no slot existed"]
    source.close()


def test_the_key_must_be_what_deletes_carry(
    db: tuple[str, psycopg.Connection[Any]],
    make_project: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, con = db
    con.execute(INVOICE)
    con.execute("CREATE TABLE loose (name text)")
    make, tables = _source(
        make_project,
        monkeypatch,
        url,
        "  invoice: {key: [customer], write: merge, incremental: {cursor: _gm_lsn}}"
        "\n              loose: {key: [name], write: merge, incremental: {cursor: _gm_lsn}}",
    )
    source = make()
    with pytest.raises(
        SourceError, match=r"key column customer is not in the replica identity \(invoice_id\)"
    ):
        source.read(tables["invoice"])
    with pytest.raises(SourceError, match=r"public\.loose has no replica identity") as caught:
        source.read(tables["loose"])
    assert "REPLICA IDENTITY FULL" in (caught.value.hint or "")
    # nothing was published or created on the way
    assert con.execute("SELECT count(*) FROM pg_publication").fetchone() == (0,)
    source.close()
