"""Check a model against the columns of what it reads, before any SQL runs."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from sqlglot import exp
from sqlglot.errors import OptimizeError, SqlglotError
from sqlglot.optimizer.qualify import qualify

from gristmill._util.suggest import did_you_mean
from gristmill.errors import SQLError
from gristmill.project.dialect import PROJECT_DIALECT
from gristmill.sql.parse import ParsedModel

_UNKNOWN_COLUMN = re.compile(r"""(?:Unknown column: |Column ')"?([^"']+)"?'?""")


def check_tables(parsed: ParsedModel, known: Sequence[str]) -> None:
    if parsed.passthrough:
        return  # its dotted names may be columns; only known assets count as reads
    for ref in parsed.reads:
        if ref.asset in known:
            continue
        if "." not in ref.asset:
            hint = did_you_mean(ref.asset, [k.split(".", 1)[1] for k in known])
            raise SQLError(
                f'table "{ref.asset}" has no schema; refer to tables as <schema>.<name>',
                location=f"{parsed.file}:{ref.line}:{ref.col}",
                hint=(hint + " (with its schema)") if hint else None,
            )
        raise SQLError(
            f'unknown table "{ref.asset}"',
            location=f"{parsed.file}:{ref.line}:{ref.col}",
            hint=did_you_mean(ref.asset, known) or "it is neither a model nor a source table",
        )


def qualify_model(parsed: ParsedModel, schemas: Mapping[str, Sequence[str]]) -> exp.Query | None:
    """The model's query with every column qualified, or an SQLError naming the column that does
    not exist. ``schemas`` maps each asset the model reads to its column names. Returns None when
    sqlglot cannot reason about the query (the engine then has the last word)."""
    if parsed.passthrough:
        return None
    by_schema: dict[str, dict[str, dict[str, str]]] = {}
    for asset, columns in schemas.items():
        schema, name = asset.split(".", 1)
        by_schema.setdefault(schema, {})[name] = {c: "unknown" for c in columns}
    nested: dict[str, object] = dict(by_schema)
    try:
        qualified = qualify(
            parsed.fresh(),
            schema=nested,
            dialect=PROJECT_DIALECT,
            validate_qualify_columns=True,
            identify=False,
        )
    except OptimizeError as err:
        found = _UNKNOWN_COLUMN.search(str(err))
        if found:
            _raise_unknown_column(parsed, found.group(1), schemas)
        return None
    except SqlglotError:
        return None
    return qualified if isinstance(qualified, exp.Query) else None


def _raise_unknown_column(parsed: ParsedModel, name: str, schemas: Mapping[str, Sequence[str]]) -> None:
    aliases = {t.alias_or_name: f"{t.db}.{t.name}" for t in parsed.expression.find_all(exp.Table) if t.db}
    for column in parsed.expression.find_all(exp.Column):
        if column.name != name:
            continue
        table = aliases.get(column.table) if column.table else None
        candidates = schemas.get(table, []) if table else [c for cols in schemas.values() for c in cols]
        if table and name in candidates:
            continue
        where = f" in {table}" if table else ""
        raise SQLError(
            f'column "{name}" does not exist{where}',
            location=parsed.where(column),
            hint=did_you_mean(name, candidates)
            or (f"{table} has: " + ", ".join(candidates) if table else None),
        )
    raise SQLError(f'column "{name}" does not exist', location=parsed.where())
