"""The catalog shadow answers what psql's ``\\d`` and pgjdbc's ``DatabaseMetaData`` send, in
PostgreSQL's words: type names from ``format_type``, primary keys from the models' keys."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pytest

from gristmill.engines.duckdb.shadow import OVERRIDES, CatalogShadow
from gristmill.sql.guard import catalog_probe

# pgjdbc 42.7's DatabaseMetaData.getPrimaryKeys, as it sends it
JDBC_PRIMARY_KEYS = (
    'SELECT result.TABLE_CAT AS "TABLE_CAT", result.TABLE_SCHEM AS "TABLE_SCHEM",'
    ' result.TABLE_NAME AS "TABLE_NAME", result.COLUMN_NAME AS "COLUMN_NAME",'
    ' result.KEY_SEQ AS "KEY_SEQ", result.PK_NAME AS "PK_NAME"FROM'
    " (SELECT current_database() AS TABLE_CAT, n.nspname AS TABLE_SCHEM, ct.relname AS TABLE_NAME,"
    " a.attname AS COLUMN_NAME, (information_schema._pg_expandarray(con.conkey)).n AS KEY_SEQ,"
    " con.conname AS PK_NAME, information_schema._pg_expandarray(con.conkey) AS KEYS,"
    " a.attnum AS A_ATTNUM FROM pg_catalog.pg_constraint con"
    " JOIN pg_catalog.pg_class ct ON (con.conrelid = ct.oid)"
    " JOIN pg_catalog.pg_namespace n ON (ct.relnamespace = n.oid)"
    " JOIN pg_catalog.pg_attribute a ON (a.attrelid = ct.oid)"
    " WHERE con.contype = 'p' AND n.nspname = $1 AND ct.relname = $2 ) result"
    " where result.A_ATTNUM = (result.KEYS).x ORDER BY result.table_name, result.pk_name, result.key_seq"
)

# psql 15's \d column listing
PSQL_COLUMNS = (
    "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),"
    " (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid, true) FROM pg_catalog.pg_attrdef d"
    " WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef), a.attnotnull"
    " FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relname = $1 AND n.nspname = $2 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
)


@pytest.fixture
def shadow() -> Iterator[CatalogShadow]:
    tables = {
        ("marts", "orders"): [("region", "VARCHAR"), ("order_id", "BIGINT"), ("amount", "DECIMAL(12,2)")],
        ("marts", "plain"): [("x", "INTEGER")],
    }
    metrics = {
        ("metrics", "revenue"): pa.schema([("country", pa.string()), ("revenue", pa.decimal128(38, 2))])
    }
    comments = {("marts", "orders", None): "One row per order", ("marts", "orders", "amount"): "In EUR"}
    built = CatalogShadow(tables, metrics, {("marts", "orders"): ["region", "order_id"]}, comments)
    yield built
    built.close()


def _ask(shadow: CatalogShadow, sql: str, *params: object) -> list[tuple[object, ...]]:
    probe = catalog_probe(sql, params=params, overrides=OVERRIDES)
    assert probe is not None, sql
    table = shadow.query(probe)
    return [tuple(row.values()) for row in table.to_pylist()]


def test_jdbc_finds_a_models_key_as_its_primary_key(shadow: CatalogShadow) -> None:
    keys = _ask(shadow, JDBC_PRIMARY_KEYS, "marts", "orders")
    assert [(row[3], row[4]) for row in keys] == [("region", 1), ("order_id", 2)]
    assert _ask(shadow, JDBC_PRIMARY_KEYS, "marts", "plain") == []


def test_psql_reads_columns_with_postgresql_type_names(shadow: CatalogShadow) -> None:
    columns = _ask(shadow, PSQL_COLUMNS, "orders", "marts")
    assert [row[:3] for row in columns] == [
        ("region", "character varying", None),
        ("order_id", "bigint", None),
        ("amount", "numeric(12,2)", None),
    ]
    metric = _ask(shadow, PSQL_COLUMNS, "revenue", "metrics")
    assert [row[:2] for row in metric] == [("country", "character varying"), ("revenue", "numeric(38,2)")]


def test_catalogs_duckdb_lacks_answer_empty_and_settings_say_nothing_of_the_server(
    shadow: CatalogShadow,
) -> None:
    for catalog in ("pg_policy", "pg_inherits", "pg_publication", "pg_statistic_ext", "pg_trigger"):
        assert _ask(shadow, f"select * from pg_catalog.{catalog}") == []
    settings = dict(_ask(shadow, "select name, setting from pg_catalog.pg_settings"))  # type: ignore[arg-type]
    assert settings["max_index_keys"] == "32" and not any("/" in str(v) for v in settings.values())
    schemas = {row[0] for row in _ask(shadow, "select nspname from pg_catalog.pg_namespace")}
    assert {"marts", "metrics"} <= schemas and "main" not in schemas


def test_descriptions_reach_psql_and_jdbc(shadow: CatalogShadow) -> None:
    described = _ask(
        shadow,
        "select a.attname, pg_catalog.col_description(a.attrelid, a.attnum) from pg_catalog.pg_attribute a"
        " join pg_catalog.pg_class c on c.oid = a.attrelid where c.relname = 'orders' order by a.attnum",
    )
    assert described == [("region", None), ("order_id", None), ("amount", "In EUR")]
    table = _ask(shadow, "select obj_description(c.oid, 'pg_class') from pg_class c where relname = 'orders'")
    assert table == [("One row per order",)]
