"""DuckDB's answers to what compiling a dbt project asks (``project.probe.CompileProbe``).

Each question runs on a private in-memory DuckDB with no file or network access (a seed's CSV is
read with access to that file only), opened for it and closed after: nothing is shared with the
project's lake. It is also the probe of last resort for an engine kind without its own (see
``engines/registry.py``). Errors come back as ``EngineError`` (the first line of DuckDB's
message)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import duckdb
from sqlglot import exp

from gristmill.errors import EngineError
from gristmill.project.probe import Types
from gristmill.sql import types as sql_types
from gristmill.sql.render import render


@contextmanager
def _scratch(*, files: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(config={"enable_external_access": files})
    try:
        yield con
    except duckdb.Error as err:
        raise EngineError(str(err).splitlines()[0]) from None
    finally:
        con.close()


class DuckDBProbe:
    """Stateless: every question gets a fresh connection."""

    dialect: ClassVar[str] = "duckdb"
    """The project's dialect is DuckDB's, so the SQL it is given runs as written."""

    def run_constant(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        utc = exp.EQ(this=exp.column("TimeZone"), expression=exp.Literal.string("UTC"))
        with _scratch() as con:
            con.execute(render(exp.Set(expressions=[exp.SetItem(this=utc)]), self.dialect))
            cursor = con.execute(sql)
            names = [str(d[0]) for d in cursor.description or ()]
            return names, (cursor.fetchall() if cursor.description else [])

    def csv_types(
        self, path: str, nullstr: list[str], delim: str | None, types: Mapping[str, str] | None
    ) -> Types:
        args: list[exp.Expr] = [
            exp.Placeholder(),
            _named("header", exp.true()),
            _named("nullstr", exp.Placeholder()),
        ]
        params: list[object] = [path, nullstr]
        for name, value in (("delim", delim), ("types", dict(types or {}))):
            if value:
                args.append(_named(name, exp.Placeholder()))
                params.append(value)
        read = exp.Table(this=exp.Anonymous(this="read_csv", expressions=args))
        with _scratch(files=True) as con:
            relation = con.sql(render(exp.select("*").from_(read), self.dialect), params=params)
            return self._typed(relation.columns, relation.types)

    def query_types(self, sql: str, tables: Mapping[str, Types]) -> Types:
        with _scratch() as con:
            for name, columns in tables.items():
                schema, table = name.split(".", 1)
                create = exp.Create(this=exp.to_identifier(schema, quoted=True), kind="SCHEMA", exists=True)
                con.execute(render(create, self.dialect))
                con.execute(render(_create_table(schema, table, columns), self.dialect))
            relation = con.sql(sql)
            return self._typed(relation.columns, relation.types)

    def _typed(self, columns: Sequence[str], kinds: Sequence[Any]) -> Types:
        return {str(c): sql_types.parse(str(t), self.dialect) for c, t in zip(columns, kinds, strict=True)}


def _named(name: str, value: exp.Expr) -> exp.Expr:
    """A named argument of a DuckDB table function (``header = true``)."""
    return exp.EQ(this=exp.column(name), expression=value)


def _create_table(schema: str, name: str, columns: Types) -> exp.Create:
    table = exp.Table(this=exp.to_identifier(name, quoted=True), db=exp.to_identifier(schema, quoted=True))
    defined = [
        exp.ColumnDef(this=exp.to_identifier(column, quoted=True), kind=_duckdb_type(kind))
        for column, kind in columns.items()
    ]
    return exp.Create(this=exp.Schema(this=table, expressions=defined), kind="TABLE")


def _duckdb_type(kind: exp.DataType) -> exp.DataType:
    """``kind`` as DuckDB spells it (its own text when DuckDB gave it), built anew: parsed types
    are shared, and a type DuckDB has but sqlglot does not know stays as written."""
    dialect = DuckDBProbe.dialect
    return exp.DataType.build(sql_types.render(kind, dialect), dialect=dialect, udt=True)
