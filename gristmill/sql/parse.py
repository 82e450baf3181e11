"""Parse a model's SQL once; find the tables it reads; report errors at file:line:col."""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
import sqlglot.dialects.duckdb  # loaded with the package, not inside the first run
from sqlglot import exp

from gristmill.errors import SQLError

DIALECT = "duckdb"


@dataclass(frozen=True)
class TableRef:
    """A table the model reads, as written: ``schema.name`` plus where it appears."""

    asset: str
    line: int
    col: int


@dataclass(frozen=True)
class ParsedModel:
    file: str
    text: str
    first_line: int
    expression: exp.Query
    reads: tuple[TableRef, ...]
    dialect: str = DIALECT
    """The dialect the model is written in."""

    def position(self, node: exp.Expr) -> tuple[int, int] | None:
        """File line and column of a node, from the token offsets sqlglot records."""
        first = node.args.get("db") if isinstance(node, exp.Table) else None
        first = first or node.args.get("table") if isinstance(node, exp.Column) else first
        anchor = first if isinstance(first, exp.Expr) else node.this
        meta = (anchor.meta if isinstance(anchor, exp.Expr) else {}) or node.meta
        start = meta.get("start")
        if start is None:
            return None
        line = self.first_line + self.text.count("\n", 0, start)
        col = start - (self.text.rfind("\n", 0, start) + 1) + 1
        return line, col

    def where(self, node: exp.Expr | None = None) -> str:
        position = self.position(node) if node is not None else None
        return f"{self.file}:{position[0]}:{position[1]}" if position else f"{self.file}:{self.first_line}"

    @property
    def fingerprint_sql(self) -> str:
        """The SQL normalised so that formatting and comments do not count as a change."""
        return self.expression.sql(dialect=DIALECT, normalize=True, comments=False)


def parse_model(text: str, *, file: str, first_line: int = 1, dialect: str = DIALECT) -> ParsedModel:
    """Parse a model written in ``dialect``; the AST is then rendered in the engine's dialect."""
    try:
        statements = [s for s in sqlglot.parse(text, dialect=dialect) if s is not None]
    except sqlglot.ParseError as err:
        detail = err.errors[0] if err.errors else {}
        line = int(detail.get("line", 1)) + first_line - 1
        highlight = str(detail.get("highlight", ""))
        col = max(1, int(detail.get("col", 1)) - len(highlight) + 1)
        description = str(detail.get("description", "")).split(" for <class")[0]
        raise SQLError(
            f'syntax error near "{highlight}" ({description})',
            location=f"{file}:{line}:{col}",
            hint="fix the SQL at this position; a model is one SELECT statement",
        ) from None
    except sqlglot.TokenError as err:
        raise SQLError(f"cannot read the SQL: {err}", location=f"{file}:{first_line}") from None
    if len(statements) != 1:
        raise SQLError(
            f"a model is exactly one SELECT statement, found {len(statements)}",
            location=f"{file}:{first_line}",
            hint="split it into one model per file",
        )
    [statement] = statements
    if not isinstance(statement, exp.Query):
        raise SQLError(
            f"a model is a SELECT query, not {statement.key.upper()}",
            location=f"{file}:{first_line}",
            hint="write the SELECT; Gristmill creates and replaces the table itself",
        )
    parsed = ParsedModel(file, text, first_line, statement, (), dialect)
    return ParsedModel(file, text, first_line, statement, _reads(parsed), dialect)


def asset_name(table: exp.Table) -> str:
    """``schema.name`` as the engine resolves it: unquoted identifiers are case-insensitive."""
    parts = [table.args.get("db"), table.this]
    names = [p.name if p.quoted else p.name.lower() for p in parts if isinstance(p, exp.Identifier)]
    return ".".join(names)


def _reads(parsed: ParsedModel) -> tuple[TableRef, ...]:
    ctes = {cte.alias_or_name.lower() for cte in parsed.expression.find_all(exp.CTE)}
    refs: list[TableRef] = []
    for table in parsed.expression.find_all(exp.Table):
        if not table.name or isinstance(table.this, exp.Func):
            continue  # a table function such as range() or read_csv()
        if not table.db and table.name.lower() in ctes:
            continue
        if table.catalog:
            raise SQLError(
                f'"{table.sql(dialect=DIALECT)}" names a catalog; refer to tables as <schema>.<name>',
                location=parsed.where(table),
            )
        line, col = parsed.position(table) or (parsed.first_line, 1)
        refs.append(TableRef(asset_name(table), line, col))
    return tuple(refs)
