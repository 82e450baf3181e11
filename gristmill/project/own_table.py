"""Native models that read their own table: ``this`` and ``is_incremental()``.

An ``incremental`` or ``fact`` model may name its own table as ``this`` (``select max(id) from
this``) and ask ``is_incremental()``, as dbt models do with ``{{ this }}``. The model gets two
renderings, like a dbt incremental model:

- the incremental one, for a build that adds to an existing table: ``is_incremental()`` is
  ``true`` and ``this`` is the model's own asset (the executor maps it to the table being built);
- the full one, for a first build (a new model, a changed definition, ``--full-refresh``):
  ``is_incremental()`` is ``false`` and ``this`` is an empty table with the columns the model
  reads from it, so ``max(id)`` over it is NULL.

The replacements are made in the text, token by token, so every line keeps its number."""

from __future__ import annotations

import re

from gristmill.errors import ConfigError

KINDS = ("incremental", "fact")
"""The kinds whose table a later build adds to: the only ones with an own table to read."""
_MENTION = re.compile(r"\b(is_incremental\s*\(|(from|join)\s+this\b)", re.IGNORECASE)
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)


def mentions_own_table(sql: str) -> bool:
    """A cheap test before any parsing (most models never read ``this`` nor ask
    ``is_incremental()``; "-- this model…" in a comment is no reason to parse)."""
    return _MENTION.search(_COMMENTS.sub(" ", sql)) is not None


def renderings(
    sql: str,
    *,
    asset: str,
    kind: str,
    file: str,
    first_line: int,
    dialect: str,
    split_by: str | None = None,
) -> tuple[str, str] | None:
    """``(full, incremental)`` texts of a model that reads its own table; ``None`` when it does
    not (or cannot be parsed: the parse error is reported where every model is parsed).
    ``split_by`` names the header key (``time``, ``partition_by``) of a model built by interval or
    partition: such a model rebuilds whole intervals (restated, late rows), which a filter on its
    own table would empty, so it may not read ``this``."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError
    from sqlglot.optimizer.scope import traverse_scope
    from sqlglot.tokens import TokenType

    try:
        tree = sqlglot.parse_one(sql, read=dialect)
        tokens = sqlglot.tokenize(sql, read=dialect)
    except SqlglotError:
        return None
    tables: list[tuple[exp.Table, list[str]]] = []
    try:
        scopes = traverse_scope(tree)
    except SqlglotError:
        return None
    for scope in scopes:
        for alias, source in scope.sources.items():
            if not (isinstance(source, exp.Table) and source.name.lower() == "this" and not source.db):
                continue
            only = len(scope.sources) == 1
            selected = scope.expression.expressions if isinstance(scope.expression, exp.Select) else []
            if any(
                (isinstance(e, exp.Star) and only)
                or (isinstance(e, exp.Column) and e.is_star and e.table == alias)
                for e in selected
            ):
                raise _star(file, first_line, source)
            names = [c.name for c in scope.columns if c.table == alias or (only and not c.table)]
            tables.append((source, list(dict.fromkeys(names))))
    calls: list[tuple[int, int]] = []
    lines: list[int] = [int(table.this.meta.get("line", 1)) for table, _ in tables]
    for index, token in enumerate(tokens):
        if token.text.lower() == "is_incremental" and index + 2 < len(tokens):
            opening, closing = tokens[index + 1], tokens[index + 2]
            if opening.token_type == TokenType.L_PAREN and closing.token_type == TokenType.R_PAREN:
                calls.append((token.start, closing.end))
                lines.append(token.line)
    if not tables and not calls:
        return None
    where = f"{file}:{first_line + min(lines) - 1}"
    if kind not in KINDS:
        raise ConfigError(
            f"this and is_incremental() are about the model's own rows, which only incremental and fact "
            f"models keep (this one is kind: {kind})",
            location=where,
            hint="make the model kind: incremental (or fact), or read another model",
        )
    if split_by:
        raise ConfigError(
            f"a model built by {split_by} already processes only the intervals or partitions due; "
            "reading this would drop the rows of those it rebuilds (restated, late rows)",
            location=where,
            hint=f"remove this and is_incremental() from the SQL, or {split_by}: from the header",
        )
    schema, name = asset.split(".", 1)
    full: list[tuple[int, int, str]] = [(start, end, "false") for start, end in calls]
    again: list[tuple[int, int, str]] = [(start, end, "true") for start, end in calls]
    for table, columns in tables:
        meta = table.this.meta
        start, end = int(meta["start"]), int(meta["end"])
        alias = "" if table.alias else " AS this"
        full.append((start, end, f"({_empty_this(tree, columns, dialect)}){alias}"))
        again.append((start, end, f'"{schema}"."{name}"{alias}'))
    return _spliced(sql, full), _spliced(sql, again)


def _empty_this(tree: object, columns: list[str], dialect: str) -> str:
    """The model's own table before its first build: no rows, and each column typed as the
    model's output column of that name, so ``id > (select max(id) from this)`` compares like
    types on every engine (PostgreSQL takes a bare ``NULL`` in a subquery as text). The types come
    from the model's own top SELECT over its own FROM with ``WHERE false``; a column it does not
    output, or one whose expression reads ``this`` itself, is a bare NULL."""
    from sqlglot import exp

    def reads_this(node: exp.Expr) -> bool:
        return any(t.name.lower() == "this" and not t.db for t in node.find_all(exp.Table))

    fallback = ", ".join(f'NULL AS "{c}"' for c in columns) or 'NULL AS "_gm_none"'
    untyped = f"SELECT {fallback} WHERE false"
    top = tree
    while isinstance(top, exp.SetOperation):
        top = top.left
    if not isinstance(top, exp.Select) or top.args.get("from_") is None:
        return untyped
    shell = top.copy()
    outputs = {e.alias_or_name: e for e in shell.expressions}
    shell.set("where", None)
    shell.set("order", None)
    shell.set("limit", None)
    shell.set("expressions", [])
    if reads_this(shell):
        return untyped
    chosen: list[exp.Expr] = []
    for name in columns or ["_gm_none"]:
        found = outputs.get(name)
        value = found.unalias().copy() if found is not None and not reads_this(found) else exp.null()
        chosen.append(exp.alias_(value, name, quoted=True))
    shell.set("expressions", chosen)
    shell = shell.where(exp.false())
    if isinstance(tree, exp.Expr) and tree is not top and tree.args.get("with") is not None:
        ctes = tree.args["with"].copy()
        if reads_this(ctes):
            return untyped
        shell.set("with", ctes)
    return shell.sql(dialect=dialect)


def _spliced(sql: str, replacements: list[tuple[int, int, str]]) -> str:
    """``sql`` with each inclusive ``[start, end]`` span replaced, never adding a line."""
    out, at = [], 0
    for start, end, text in sorted(replacements):
        out += [sql[at:start], text]
        at = end + 1
    out.append(sql[at:])
    return "".join(out)


def _star(file: str, first_line: int, table: object) -> ConfigError:
    meta = getattr(getattr(table, "this", None), "meta", {}) or {}
    return ConfigError(
        "select * from this: name the columns read from the model's own table",
        location=f"{file}:{first_line + int(meta.get('line', 1)) - 1}:{meta.get('col', 1)}",
        hint="on a first build this is an empty table with only the columns the model names",
    )
