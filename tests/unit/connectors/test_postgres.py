"""The PostgreSQL source against the loopback server, on Chinook and on tables made here."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from gristmill.errors import ConfigError, SourceError, TransientSourceError
from gristmill.workspace import Workspace
from tests.support.sqldb_servers import Database, Sources, closed_port, postgres_chinook

ENV = "GM_TEST_PG_URL"


@pytest.fixture(scope="module")
def pg() -> Iterator[Database]:
    with postgres_chinook() as database:
        database.execute(
            """
            CREATE TABLE typed (
                id int PRIMARY KEY, amount numeric(12, 3), ratio numeric(5, 4), paid_at timestamptz,
                noted_at timestamp, due date, active boolean, payload bytea, doc json, docb jsonb
            );
            INSERT INTO typed VALUES
                (1, 123456789.123, 0.1234, '2024-03-01 12:00:00+02', '2024-03-01 12:00:00',
                 '2024-03-31', true, '\\x00ff10', '{"a": 1}', '{"b": [1, 2]}'),
                (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
            CREATE TABLE events (id int, changed_at timestamptz NOT NULL, note text);
            INSERT INTO events VALUES (1, '2024-01-01 00:00:00+00', 'old'),
                (2, '2024-02-01 00:00:00+00', 'old'), (3, '2024-03-01 00:00:00+00', 'old');
            CREATE TABLE sparse (id int, label text);
            INSERT INTO sparse SELECT CASE WHEN g % 10 = 0 THEN NULL ELSE g END, 'row ' || g
                FROM generate_series(1, 1000) g;
            """
        )
        yield database


@pytest.fixture
def sources(
    make_project: Callable[..., Path], pg: Database, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Sources]:
    monkeypatch.setenv(ENV, pg.url)
    opened = Sources(make_project, "postgres", ENV)
    yield opened
    opened.close()


def test_reads_chinook_with_exact_decimals(sources: Sources) -> None:
    source, tables = sources.open(
        """
        tables:
          invoice: {}
          invoice_line: {table: invoice_line}
        """
    )
    invoices = source.read(tables["invoice"]).read_all()
    assert invoices.num_rows == 412
    assert invoices.schema == source.schema(tables["invoice"])
    assert invoices.schema.field("total").type == pa.decimal128(10, 2)
    assert invoices.schema.field("invoice_date").type == pa.timestamp("us")
    assert pc.sum(invoices.column("total")).as_py() == Decimal("2328.60")
    assert source.read(tables["invoice_line"]).read_all().num_rows == 2240


def test_types_keep_precision_time_zone_and_kind(sources: Sources) -> None:
    source, tables = sources.open("tables:\n  typed: {}\n")
    schema = source.schema(tables["typed"])
    assert dict(zip(schema.names, schema.types, strict=True)) == {
        "id": pa.int32(),
        "amount": pa.decimal128(12, 3),
        "ratio": pa.decimal128(5, 4),
        "paid_at": pa.timestamp("us", tz="UTC"),
        "noted_at": pa.timestamp("us"),
        "due": pa.date32(),
        "active": pa.bool_(),
        "payload": pa.binary(),
        "doc": pa.string(),
        "docb": pa.string(),
    }
    rows = source.read(tables["typed"]).read_all().sort_by("id").to_pylist()
    assert rows[0] == {
        "id": 1,
        "amount": Decimal("123456789.123"),
        "ratio": Decimal("0.1234"),
        "paid_at": datetime(2024, 3, 1, 10, 0, tzinfo=UTC),
        "noted_at": datetime(2024, 3, 1, 12, 0),
        "due": date(2024, 3, 31),
        "active": True,
        "payload": b"\x00\xff\x10",
        "doc": '{"a": 1}',  # json keeps its text; jsonb comes back normalised
        "docb": '{"b": [1, 2]}',
    }
    assert set(rows[1].values()) == {2, None}


def test_columns_and_custom_query(sources: Sources, pg: Database) -> None:
    source, tables = sources.open(
        """
        tables:
          invoice: {columns: [invoice_id, Total]}
          big_invoices:
            query: select invoice_id, billing_country, total from invoice where total > 10
            columns: [invoice_id, total]
        """
    )
    picked = source.read(tables["invoice"]).read_all()
    assert picked.column_names == ["invoice_id", "total"] and picked.num_rows == 412
    big = source.read(tables["big_invoices"]).read_all()
    assert big.column_names == ["invoice_id", "total"]
    assert big.num_rows == pg.scalar("select count(*) from invoice where total > 10") > 0
    assert big.schema == source.schema(tables["big_invoices"])


def test_incremental_read_filters_on_the_server(
    sources: Sources, pg: Database, capfd: pytest.CaptureFixture[str]
) -> None:
    pg.execute(
        "INSERT INTO events VALUES (4, '2024-06-01 00:00:00+00', 'new'), (5, '2024-06-02 12:30:00+02', 'new')"
    )
    source, tables = sources.open(
        """
        tables:
          events: {incremental: {cursor: changed_at}}
          events_split: {table: events, incremental: {cursor: changed_at}, partition: {column: id, parts: 2}}
        """
    )
    source.schema(tables["events"])  # connects
    source.con.execute("SET GLOBAL pg_debug_show_queries = true")
    capfd.readouterr()
    since = datetime(2024, 6, 1, tzinfo=UTC)
    fresh = source.read(tables["events"], since=since).read_all()
    assert sorted(fresh.column("id").to_pylist()) == [4, 5]
    assert pc.min(fresh.column("changed_at")).as_py() >= since
    sent = capfd.readouterr().err
    assert "WHERE \"changed_at\" >= CAST('2024-06-01 00:00:00+00:00' AS TIMESTAMPTZ)" in sent
    # the bound is inclusive, and without one everything comes back
    assert source.read(tables["events"], since=datetime(2024, 6, 2, 10, 30, tzinfo=UTC)).read_all()[
        "id"
    ].to_pylist() == [5]
    assert source.read(tables["events"]).read_all().num_rows == 5
    # with partitions, the ranges split what is past the bound
    split = source.read(tables["events_split"], since=since).read_all()
    assert sorted(split.column("id").to_pylist()) == [4, 5]


def test_partitioned_read_returns_the_same_rows(sources: Sources, capfd: pytest.CaptureFixture[str]) -> None:
    source, tables = sources.open(
        """
        tables:
          whole: {table: invoice_line}
          split: {table: invoice_line, partition: {column: invoice_line_id, parts: 4}}
          sparse: {partition: {column: id, parts: 3}}
          by_total: {table: invoice, partition: {column: total, parts: 3}}
        """
    )
    whole = source.read(tables["whole"]).read_all()
    source.con.execute("SET GLOBAL pg_debug_show_queries = true")
    capfd.readouterr()
    split = source.read(tables["split"]).read_all()
    assert capfd.readouterr().err.count('FROM "public"."invoice_line" WHERE') == 4  # one SELECT per range
    assert split.num_rows == whole.num_rows == 2240
    assert split.schema == whole.schema
    for column in ("invoice_line_id", "unit_price", "quantity"):
        assert pc.sum(split.column(column)).as_py() == pc.sum(whole.column(column)).as_py()
    assert whole.sort_by("invoice_line_id").equals(split.sort_by("invoice_line_id"))
    # rows whose partition column is NULL are read too (by the first range)
    sparse = source.read(tables["sparse"]).read_all()
    assert sparse.num_rows == 1000 and sparse.column("id").null_count == 100
    # a decimal column splits at decimal bounds
    by_total = source.read(tables["by_total"]).read_all()
    assert by_total.num_rows == 412 and pc.sum(by_total.column("total")).as_py() == Decimal("2328.60")


def test_partitions_are_read_at_the_same_time(sources: Sources) -> None:
    source, tables = sources.open(
        """
        tables:
          slow:
            query: >-
              select g as id, clock_timestamp() as began, pg_sleep(0.3)::text as slept,
                     clock_timestamp() as ended from generate_series(1, 4) g
            partition: {column: id, parts: 4}
        """
    )
    rows = source.read(tables["slow"]).read_all()  # one row per range, each sleeping on the server
    assert rows.num_rows == 4
    # the server's own clock shows every range had begun before any had ended: they ran together
    assert pc.max(rows.column("began")).as_py() < pc.min(rows.column("ended")).as_py()


def test_partition_column_must_be_a_number(sources: Sources) -> None:
    source, tables = sources.open("tables:\n  invoice:\n    partition: {column: billing_city, parts: 2}\n")
    with pytest.raises(ConfigError, match=r'sources/shop.yml:5: partition column "billing_city" is VARCHAR'):
        source.read(tables["invoice"])


def test_unreachable_server_names_the_table_and_hides_the_password(
    sources: Sources, monkeypatch: pytest.MonkeyPatch
) -> None:
    password = "Very-Secret-pw42"
    monkeypatch.setenv(ENV, f"postgresql://postgres:{password}@127.0.0.1:{closed_port()}/chinook")
    source, tables = sources.open("tables:\n  invoice: {}\n")
    with pytest.raises(TransientSourceError) as caught:  # the server may come back: worth a retry
        source.schema(tables["invoice"])
    text = str(caught.value)
    assert password not in text and "Very-Secret" not in text
    assert text.startswith(
        "sources/shop.yml (invoice): cannot connect to postgresql://postgres:***@127.0.0.1:"
    )
    assert "Connection refused" in text
    assert "sources/shop.yml:2: ${env:GM_TEST_PG_URL}" in (caught.value.hint or "")


def test_unknown_role_is_refused(sources: Sources, pg: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, pg.url.replace("postgres@", "nobody:pw-nobody-1@"))
    source, tables = sources.open("tables:\n  invoice: {}\n")
    with pytest.raises(SourceError, match='role "nobody" does not exist') as caught:
        source.read(tables["invoice"])
    assert "pw-nobody-1" not in str(caught.value)


def test_unknown_table_and_column_suggest_names(sources: Sources) -> None:
    source, tables = sources.open(
        """
        tables:
          invoice:
            table: invoce
          line:
            table: invoice_line
            columns: [invoice_line_id, unit_prise]
        """
    )
    with pytest.raises(ConfigError) as caught:
        source.schema(tables["invoice"])
    assert str(caught.value).startswith('sources/shop.yml:5: schema "public" has no table "invoce"')
    assert caught.value.hint == 'did you mean "invoice"?'
    with pytest.raises(ConfigError) as caught:
        source.schema(tables["line"])
    assert str(caught.value).startswith("sources/shop.yml:8: ")
    assert 'has no column "unit_prise"' in str(caught.value)
    assert caught.value.hint == 'did you mean "unit_price"?'


def test_options_are_validated(sources: Sources) -> None:
    with pytest.raises(
        ConfigError, match=re.escape('sources/shop.yml:5: unknown option "partiton"')
    ) as caught:
        sources.open("tables:\n  invoice:\n    partiton: {column: invoice_id, parts: 2}\n")
    assert caught.value.hint == 'did you mean "partition"?'
    with pytest.raises(ConfigError, match='give either "table" or "query", not both'):
        sources.open("tables:\n  invoice: {table: invoice, query: select 1}\n")
    with pytest.raises(ConfigError, match=re.escape('sources/shop.yml:3: unknown option "schema_name"')):
        sources.open("schema_name: public\ntables:\n  invoice: {}\n")
    with pytest.raises(ConfigError, match="query does not parse"):
        sources.open("tables:\n  q: {query: 'select from where ('}\n")


def test_runs_end_to_end_into_the_lake(make_project: Callable[..., Path], pg: Database, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(ENV, pg.url)
    root = make_project(
        {
            "sources/shop.yml": f"""
            kind: postgres
            connection: ${{env:{ENV}}}
            source_schema: public
            tables:
              invoice: {{}}
              invoice_line: {{partition: {{column: invoice_line_id, parts: 2}}}}
            """,
        }
    )
    result = Workspace(root).run()
    assert result.ok, [(s.asset, s.error) for s in result.steps]
    landed = Workspace(root).query("select count(*) as n, sum(total) as total from raw.shop__invoice")
    assert landed.to_pylist() == [{"n": 412, "total": Decimal("2328.60")}]
    lines = Workspace(root).query("select count(*) as n from raw.shop__invoice_line")
    assert lines.column("n").to_pylist() == [2240]


def test_a_run_names_a_mistyped_table(make_project: Callable[..., Path], pg: Database, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(ENV, pg.url)
    root = make_project(
        {"sources/shop.yml": f"kind: postgres\nconnection: ${{env:{ENV}}}\ntables:\n  invoce: {{}}\n"}
    )
    [step] = Workspace(root).run().steps
    assert step.status == "failed" and step.error is not None
    assert 'has no table "invoce"' in step.error and 'did you mean "invoice"?' in step.error
    assert pg.url.split("@")[0] not in step.error or ":" not in pg.url.split("@")[0].split("//")[1]


def test_a_whole_table_load_never_imports_pyarrow_or_numpy(pg: Database, tmp_path: Path) -> None:
    """DuckDB's scanner lands a whole table itself, so the process needs neither pyarrow nor numpy
    (~0.15 CPU-s and ~30 MB of a small load's whole process)."""
    import json
    import subprocess
    import sys

    (tmp_path / "sources").mkdir()
    (tmp_path / "gristmill.toml").write_text('name = "pg"\n')
    (tmp_path / "sources" / "pg.yml").write_text(
        f"kind: postgres\nconnection: {pg.url}\ntables:\n  sparse: {{}}\n"
    )
    script = (
        "import json, sys\nfrom gristmill.cli.entry import main\n"
        f"sys.argv = ['gristmill', 'run', '--project', {str(tmp_path)!r}]\n"
        "try:\n    main()\nexcept SystemExit as stop:\n    assert not stop.code, stop.code\n"
        "print('\\n' + json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr + done.stdout
    modules = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert "gristmill.runtime.load.loader" in modules  # it did load
    assert not {m.split(".")[0] for m in modules} & {"pyarrow", "numpy"}
    assert (
        Workspace(tmp_path).query("SELECT count(*) AS n FROM raw.pg__sparse").column("n")[0].as_py() == 1000
    )


def test_a_run_engine_has_the_scanner_loaded_as_it_connects(pg: Database, tmp_path: Path) -> None:
    """Loaded later (the native read's ``LOAD postgres``), DuckDB checks the 41 MB scanner's
    signature by hashing it: ~0.2 CPU-s and ~40 MB of every run reading PostgreSQL. A fresh process,
    so no earlier test has announced the extension already."""
    import subprocess
    import sys

    (tmp_path / "sources").mkdir()
    (tmp_path / "gristmill.toml").write_text('name = "pg"\n')
    (tmp_path / "sources" / "pg.yml").write_text(
        f"kind: postgres\nconnection: {pg.url}\ntables:\n  sparse: {{}}\n"
    )
    script = (
        "import sys\nfrom pathlib import Path\nfrom gristmill.project import load_project\n"
        "from gristmill.runtime.session import Session\n"
        "with Session(load_project(Path(sys.argv[1]))).engine(read_only=False) as engine:\n"
        '    loaded = engine.query("SELECT loaded FROM duckdb_extensions()'
        " WHERE extension_name = 'postgres_scanner'\")\n"
        "print(loaded.column(0).to_pylist())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[True]"
