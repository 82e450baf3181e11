"""The SQL guard: what it admits runs as written; the injection and escape corpus gets 0 through."""

from __future__ import annotations

import pytest

from gristmill.sql.guard import SqlRefused, capped, catalog_probe, guard_select

SERVED = {"marts.orders", "raw.customers"}

ADMITTED = [
    "select * from marts.orders",
    "SELECT id FROM MARTS.ORDERS",
    'select * from "marts"."orders"',
    "with x as (select 1 a) select * from x, marts.orders",
    "select count(*) from marts.orders o join raw.customers c on o.id = c.id;",
    "select * from unnest([1, 2])",
    "with recursive t(n) as (select 1 union all select n + 1 from t where n < 3) select * from t",
    "select 1 union all select id from marts.orders",
    "select * from marts.orders -- a comment",
]

CORPUS = [
    "select 1; drop table marts.orders",
    "select * from marts.orders; select * from main.secret",
    "select * from marts.orders /* ; */ ; copy marts.orders to '/tmp/x'",
    "drop table marts.orders",
    "delete from marts.orders",
    "update marts.orders set id = 1",
    "insert into marts.orders values (1)",
    "create table marts.x as select 1",
    "attach 'other.db' as o",
    "detach lake",
    "copy (select 1) to '/tmp/x.csv'",
    "pragma database_list",
    "set threads = 1",
    "install httpfs",
    "load httpfs",
    "call duckdb_settings()",
    "export database '/tmp/x'",
    "select 1 into t",
    "select * from read_csv('/etc/passwd')",
    "select * from read_text('/etc/passwd')",
    "select * from '/etc/passwd'",
    "select * from 'data.parquet'",
    "select * from parquet_scan('x.parquet')",
    "select * from glob('*')",
    "select * from query('select 1')",
    "select * from query_table('main.secret')",
    "select * from marts.orders, lateral read_parquet('x')",
    "select * from range(100000000000)",
    "select getenv('HOME')",
    "select current_setting('home_directory')",
    "select (select getenv('HOME'))",
    "select * from marts.orders where id in (select length(getenv('HOME')))",
    "select read_blob('/etc/passwd')",
    "select * from information_schema.tables",
    "select * from pg_catalog.pg_class",
    "select * from duckdb_tables()",
    "select * from duckdb_settings()",
    "select duckdb_secrets()",
    "select * from main.secret",
    "select * from secret",
    "select * from lake.marts.orders",
    'select * from "marts.orders"',
    "select * from (with secret as (select 1) select 1), secret",
    "with orders as (select * from read_csv('/etc/passwd')) select * from orders",
    "with x as (select * from main.secret) select * from x",
    "select * from marts.orders where id = (select max(id) from ducklake_snapshots('lake'))",
    "select * from marts.orders for update",
    "select ('HOME').getenv()",
    "select '/etc/passwd'.read_text()",
    "select \"GETENV\"('HOME')",
    "select * from \"read_csv\"('/etc/passwd')",
    "select * from read_csv_auto /* x */ ('/etc/passwd')",
    "select * from marts.orders union all select * from read_csv('/etc/passwd')",
    'select * from marts."/etc/passwd"',
    "select * from sqlite_scan('x.db', 'secret')",
    "select * from pragma_database_list()",
    "select nextval('seq')",
    "select * from marts.orders where id = ?",
    "select 1 --\n; drop table marts.orders",
    "from main.secret select *",
    "select * from marts.orders positional join main.secret",
    "",
    "   ;  ",
    "select from where",
]


@pytest.mark.parametrize("sql", ADMITTED)
def test_admitted_statements_pass_as_one_query(sql: str) -> None:
    assert guard_select(sql, SERVED).sql("duckdb")


@pytest.mark.parametrize("sql", CORPUS)
def test_injection_corpus_gets_nothing_through(sql: str) -> None:
    with pytest.raises(SqlRefused) as refused:
        guard_select(sql, SERVED)
    assert refused.value.hint  # every refusal says what to do


def test_parameters_become_literals_not_sql() -> None:
    query = guard_select(
        "select * from marts.orders where name = $1", SERVED, read="postgres", params=["x' or 1=1 --"]
    )
    assert "'x'' or 1=1 --'" in query.sql("duckdb")


def test_the_cap_reads_one_row_more_than_it_returns() -> None:
    assert capped(guard_select("select * from marts.orders", SERVED), 10).sql("duckdb").endswith("LIMIT 11")


def test_catalog_probes_only_read_catalogs() -> None:
    assert catalog_probe("select * from pg_catalog.pg_class") is not None
    assert catalog_probe("select version()") is not None
    assert catalog_probe("select * from marts.orders") is None
    assert catalog_probe("select * from read_csv('/etc/passwd')") is None
    assert catalog_probe("drop table marts.orders") is None
    for leak in ["select current_setting('home_directory')", "select getenv('HOME')", "select pg_sleep(100)"]:
        assert catalog_probe(leak) is None
    assert catalog_probe("select duckdb_secrets()") is None
    psql = (
        "select 1 from pg_catalog.pg_namespace n"
        " where n.nspname OPERATOR(pg_catalog.~) '^(marts)$' COLLATE pg_catalog.default"
    )
    assert "REGEXP_MATCHES" in (catalog_probe(psql) or "")


def test_catalog_probes_speak_psycopgs_type_lookup() -> None:
    probe = catalog_probe(
        "select oid::regtype::text from pg_type t where t.oid = to_regtype($1)", params=["numeric"]
    )
    assert probe is not None and "WHEN 1700 THEN" in probe and "'numeric'" in probe
