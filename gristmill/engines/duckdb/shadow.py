"""The catalog shadow: an in-memory DuckDB holding an empty copy of every served relation, and
nothing else, that answers the catalog queries BI tools send on connect (``pg_catalog``,
``information_schema``, ``version()``) through DuckDB's PostgreSQL catalog emulation.

It lists exactly the served schemas, tables and columns with their types, and no data: a
catalog query cannot read a row, and external access is off and the configuration locked, so no
query can reach a file, an extension or a setting from here."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp

from gristmill.errors import EngineError
from gristmill.sql.render import render

_PG_TYPE_OF = (
    ("DECIMAL%", 1700),
    ("BIGINT", 20),
    ("INTEGER", 23),
    ("SMALLINT", 21),
    ("TINYINT", 21),
    ("UTINYINT", 21),
    ("USMALLINT", 23),
    ("UINTEGER", 20),
    ("UBIGINT", 1700),
    ("HUGEINT", 1700),
    ("UHUGEINT", 1700),
    ("BOOLEAN", 16),
    ("DOUBLE", 701),
    ("FLOAT", 700),
    ("DATE", 1082),
    ("TIME", 1083),
    ("TIME WITH TIME ZONE", 1266),
    ("TIMESTAMP WITH TIME ZONE", 1184),
    ("TIMESTAMP%", 1114),
    ("INTERVAL", 1186),
    ("BLOB", 17),
    ("UUID", 2950),
    ("VARCHAR", 1043),
)
"""DuckDB's column types as PostgreSQL type OIDs; anything else (lists, structs) is ``varchar``."""


def _pg_attribute() -> exp.Query:
    """``pg_catalog.pg_attribute`` with PostgreSQL's type OIDs and numeric typmods: DuckDB's
    emulation puts its own type ids there, which JDBC (DBeaver, Metabase) reads as ``int2``."""
    column = exp.column("data_type", table="d")
    oid = exp.Case(
        ifs=[
            exp.If(this=column.like(exp.Literal.string(name)), true=exp.Literal.number(type_oid))
            if "%" in name
            else exp.If(this=column.eq(exp.Literal.string(name)), true=exp.Literal.number(type_oid))
            for name, type_oid in _PG_TYPE_OF
        ],
        default=exp.Literal.number(1043),
    )
    known = exp.column("data_type", table="d").is_(exp.null())
    typmod = sqlglot.parse_one(
        "CASE WHEN d.data_type LIKE 'DECIMAL%'"
        " THEN ((d.numeric_precision << 16) | d.numeric_scale) + 4 ELSE -1 END",
        read="duckdb",
    )
    replaced = exp.Star(
        replace=[
            exp.alias_(exp.If(this=known, true=exp.column("atttypid", table="a"), false=oid), "atttypid"),
            exp.alias_(
                exp.If(this=known, true=exp.column("atttypmod", table="a"), false=typmod), "atttypmod"
            ),
            exp.alias_(exp.Literal.string("p"), "attstorage"),  # plain, as psql's \d+ shows it
        ]
    )
    star = exp.Column(this=replaced, table=exp.to_identifier("a"))
    columns = exp.Anonymous(this="duckdb_columns", expressions=[])
    return (
        exp.select(star)
        .from_(exp.alias_(exp.table_("pg_attribute", db="pg_catalog"), "a", table=True))
        .join(
            exp.alias_(exp.Table(this=columns), "d", table=True),
            on="d.table_oid = a.attrelid AND d.column_index = a.attnum",
            join_type="left",
        )
    )


def _query(sql: str, read: str = "duckdb") -> exp.Query:
    query = sqlglot.parse_one(sql, read=read)
    assert isinstance(query, exp.Query)  # the texts here are SELECTs
    return query


def _empty(columns: str) -> exp.Query:
    """A catalog DuckDB lacks, answered as a server without them would: no rows, typed columns
    (``name type, ...``), the ones psql's ``\\d`` reads."""
    nulls = [
        exp.alias_(exp.cast(exp.null(), exp.DataType.build(kind, dialect="duckdb")), name)
        for name, kind in (column.split() for column in columns.split(","))
    ]
    return exp.select(*nulls).where(exp.false())


_MISSING = {
    "pg_inherits": "inhrelid bigint, inhparent bigint, inhseqno integer, inhdetachpending boolean",
    "pg_policy": "oid bigint, polname varchar, polrelid bigint, polcmd varchar, polpermissive boolean,"
    " polroles bigint[], polqual varchar, polwithcheck varchar",
    "pg_publication": "oid bigint, pubname varchar, puballtables boolean, pubviaroot boolean",
    "pg_publication_rel": "oid bigint, prpubid bigint, prrelid bigint, prqual varchar, prattrs integer[]",
    "pg_publication_namespace": "oid bigint, pnpubid bigint, pnnspid bigint",
    "pg_statistic_ext": "oid bigint, stxrelid bigint, stxname varchar, stxnamespace bigint, stxowner bigint,"
    " stxstattarget integer, stxkeys integer[], stxkind varchar[], stxexprs varchar",
    "pg_trigger": "oid bigint, tgrelid bigint, tgparentid bigint, tgname varchar, tgfoid bigint,"
    " tgtype integer, tgenabled varchar, tgisinternal boolean, tgconstraint bigint",
    "pg_rewrite": "oid bigint, rulename varchar, ev_class bigint, ev_type varchar, ev_enabled varchar",
    "pg_partitioned_table": "partrelid bigint, partstrat varchar, partnatts integer",
    "pg_foreign_table": "ftrelid bigint, ftserver bigint, ftoptions varchar[]",
    "pg_roles": "oid bigint, rolname varchar, rolsuper boolean",
}
"""Catalogs psql and JDBC read that DuckDB's emulation does not have."""

_PG_CLASS = exp.select(
    exp.Star(replace=[exp.alias_(exp.Literal.string("d"), "relreplident")]),
    exp.alias_(exp.false(), "relforcerowsecurity"),
).from_(exp.table_("pg_class", db="pg_catalog"))


OVERRIDES = {
    **{name: _empty(columns) for name, columns in _MISSING.items()},
    # psql's \d reads relforcerowsecurity (PostgreSQL 9.5+), which DuckDB's pg_class lacks
    "pg_class": _PG_CLASS,
    # DuckDB's own default schema holds nothing served
    "pg_namespace": exp.select(exp.Star())
    .from_(exp.table_("pg_namespace", db="pg_catalog"))
    .where(exp.column("nspname").neq(exp.Literal.string("main"))),
    "pg_attribute": _pg_attribute(),
    # DuckDB numbers a constraint's columns from 0; PostgreSQL (and pg_attribute.attnum) from 1
    "pg_constraint": _query(
        "SELECT * REPLACE (list_transform(conkey, lambda k: k + 1) AS conkey) FROM pg_catalog.pg_constraint",
        read="duckdb",
    ),
    # DuckDB's settings name the server's directories (temp, secrets, allowed paths): only these,
    # which JDBC reads (getImportedKeys asks max_index_keys)
    "pg_settings": _query(
        "SELECT * FROM (VALUES ('max_index_keys', '32'), ('max_identifier_length', '63'),"
        " ('server_version', '16.0'), ('standard_conforming_strings', 'on'), ('server_encoding', 'UTF8'))"
        " AS s(name, setting)",
        read="duckdb",
    ),
}
"""Catalog relations the shadow answers better than DuckDB's emulation: a query put in their place."""


class CatalogShadow:
    """``tables``: each served table's columns as (name, DuckDB type); ``relations``: more
    relations by their Arrow schema (the ``metrics`` relations); ``keys``: tables' primary keys;
    ``comments``: descriptions of (schema, table, column or None for the table)."""

    def __init__(
        self,
        tables: Mapping[tuple[str, str], Sequence[tuple[str, str]]],
        relations: Mapping[tuple[str, str], pa.Schema] | None = None,
        keys: Mapping[tuple[str, str], Sequence[str]] | None = None,
        comments: Mapping[tuple[str, str, str | None], str] | None = None,
    ) -> None:
        self._con = duckdb.connect(":memory:", config={"enable_external_access": "false"})
        self._lock = threading.Lock()
        for schema in sorted({schema for schema, _ in [*tables, *(relations or {})]}):
            self._con.execute(
                render(exp.Create(this=exp.to_identifier(schema), kind="SCHEMA", exists=True), "duckdb")
            )
        for (schema, name), columns in tables.items():
            definition = exp.Schema(
                this=exp.table_(name, db=schema, quoted=True),
                expressions=[
                    exp.ColumnDef(
                        this=exp.to_identifier(column, quoted=True),
                        kind=exp.DataType.build(kind, dialect="duckdb"),
                    )
                    for column, kind in columns
                ],
            )
            key = [k for k in (keys or {}).get((schema, name), ()) if k in {c for c, _ in columns}]
            if key:  # a model's declared key, for JDBC's getPrimaryKeys (the table stays empty)
                definition.append(
                    "expressions",
                    exp.PrimaryKey(expressions=[exp.to_identifier(k, quoted=True) for k in key]),
                )
            self._con.execute(render(exp.Create(this=definition, kind="TABLE"), "duckdb"))
        for (schema, name), arrow_schema in (relations or {}).items():
            self._con.register("_shadow_empty", arrow_schema.empty_table())
            create = exp.Create(
                this=exp.table_(name, db=schema, quoted=True),
                kind="TABLE",
                expression=exp.select(exp.Star()).from_("_shadow_empty"),
            )
            self._con.execute(render(create, "duckdb"))
            self._con.unregister("_shadow_empty")
        for (schema, name, column), text in (comments or {}).items():
            target: exp.Expr = exp.table_(name, db=schema, quoted=True)
            if column is not None:
                target = exp.column(column, table=name, db=schema, quoted=True)
            kind = "TABLE" if column is None else "COLUMN"
            comment = exp.Comment(this=target, kind=kind, expression=exp.Literal.string(text))
            self._con.execute(render(comment, "duckdb"))
        self._con.execute("SET lock_configuration = true")

    def query(self, sql: str) -> pa.Table:
        """Run a catalog query (already checked by ``gristmill.sql.guard.catalog_probe``)."""
        with self._lock:
            try:
                return self._con.sql(sql).to_arrow_table()
            except duckdb.Error as error:
                raise EngineError(str(error).splitlines()[0]) from None

    def close(self) -> None:
        self._con.close()
