"""A private in-memory DuckDB for what compiling a dbt project asks before anything is built.

A dbt project here is compiled as dbt-duckdb compiles it: a package may compute a value with a
query that reads no table (dbt_date sizes its series with ``datediff``), and a dbt unit test's
input rows take the column types its inputs will have (a seed's as its CSV lands, a model's as
its SQL types them). Both ask DuckDB itself, on a connection with no file or network access
(a seed's CSV is read with access to that file only), so nothing above this module imports
DuckDB to compile. Errors come back as ``EngineError`` (the first line of DuckDB's message)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import duckdb
from sqlglot import exp

from gristmill.errors import EngineError

DIALECT = "duckdb"
"""This module talks to DuckDB itself: its statements are written for DuckDB."""

Types = dict[str, str]
"""Column -> DuckDB type, as DuckDB spells it (``DECIMAL(18,3)``, ``STRUCT(x INTEGER)``)."""


@contextmanager
def _scratch(*, files: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(config={"enable_external_access": files})
    try:
        yield con
    except duckdb.Error as err:
        raise EngineError(str(err).splitlines()[0]) from None
    finally:
        con.close()


def run_constant(sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The column names and rows of ``sql`` (a query reading no table), in UTC."""
    utc = exp.EQ(this=exp.column("TimeZone"), expression=exp.Literal.string("UTC"))
    with _scratch() as con:
        con.execute(exp.Set(expressions=[exp.SetItem(this=utc)]).sql(dialect=DIALECT))
        cursor = con.execute(sql)
        names = [str(d[0]) for d in cursor.description or ()]
        return names, (cursor.fetchall() if cursor.description else [])


def csv_types(path: str, nullstr: list[str], delim: str | None, types: Any) -> Types:
    """The columns of a CSV file with a header, typed as DuckDB's reader types them."""
    args: list[exp.Expr] = [
        exp.Placeholder(),
        _named("header", exp.true()),
        _named("nullstr", exp.Placeholder()),
    ]
    params: list[object] = [path, nullstr]
    for name, value in (("delim", delim), ("types", types)):
        if value:
            args.append(_named(name, exp.Placeholder()))
            params.append(value)
    query = exp.select("*").from_(exp.Table(this=exp.Anonymous(this="read_csv", expressions=args)))
    with _scratch(files=True) as con:
        relation = con.sql(query.sql(dialect=DIALECT), params=params)
        return {str(c): str(t) for c, t in zip(relation.columns, relation.types, strict=True)}


def query_types(sql: str, tables: Mapping[str, Types]) -> Types:
    """The columns of ``sql`` over empty tables typed as ``tables`` says (``schema.name`` -> types)."""
    with _scratch() as con:
        for name, columns in tables.items():
            schema, table = name.split(".", 1)
            create = exp.Create(this=exp.to_identifier(schema, quoted=True), kind="SCHEMA", exists=True)
            con.execute(create.sql(dialect=DIALECT))
            con.execute(_create_table(schema, table, columns).sql(dialect=DIALECT))
        relation = con.sql(sql)
        return {str(c): str(t) for c, t in zip(relation.columns, relation.types, strict=True)}


def _named(name: str, value: exp.Expr) -> exp.Expr:
    """A named argument of a DuckDB table function (``header = true``)."""
    return exp.EQ(this=exp.column(name), expression=value)


def _create_table(schema: str, name: str, columns: Types) -> exp.Create:
    table = exp.Table(this=exp.to_identifier(name, quoted=True), db=exp.to_identifier(schema, quoted=True))
    defined = [
        exp.ColumnDef(
            this=exp.to_identifier(column, quoted=True),
            kind=exp.DataType.build(kind, dialect=DIALECT, udt=True),
        )
        for column, kind in columns.items()
    ]
    return exp.Create(this=exp.Schema(this=table, expressions=defined), kind="TABLE")
