"""The read-only SQL guard: the one door through which a user's free SQL reaches an engine.

Used by ``POST /api/v1/sql`` and the PostgreSQL wire door. It decides on the parsed tree, never on
the text: a statement is admitted only when it is exactly one query (SELECT, WITH, UNION ...),
every relation it reads is a served table (``schema.name``) or a CTE in scope, nothing in it is a
table function or file reader, and no function on the deny-list (files, environment, settings,
the engine's own catalog) appears anywhere. What runs is the tree rendered again by sqlglot, so a
comment, a second statement or a quoting trick the parser did not see cannot reach the engine.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from decimal import Decimal

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.optimizer.scope import traverse_scope

from gristmill.errors import SqlRefused

__all__ = ["SqlRefused", "capped", "catalog_probe", "guard_select"]


DENIED_FUNCTIONS = re.compile(
    r"^(read_.*|.*_scan|glob|query|query_table|getenv|current_setting|set_config|duckdb_.*|pg_.*"
    r"|parquet_.*|iceberg_.*|delta_.*|ducklake_.*|sqlite_.*|postgres_.*|mysql_.*|json_execute_.*"
    r"|sniff_csv|which_secret|load_extension|install_extension|enable_.*|disable_.*|checkpoint"
    r"|force_checkpoint|sql_auto_complete|has_.*_privilege|shobj_description|obj_description"
    r"|col_description|txid_.*|inet_.*|version|current_database|current_catalog|current_schemas?"
    r"|current_user|session_user|user|nextval|currval|setseed|make_.*_file|.*_file|file_.*)$"
)
"""Functions that reach files, the environment, settings, sequences or the engine's catalogs."""

CATALOG_FUNCTIONS = re.compile(
    r"^(pg_(?!sleep).*|version|current_(database|catalog|schema|schemas|user)|session_user|user"
    r"|has_.*_privilege|(obj|col|shobj)_description|format_type|to_regtype)$"
)
"""Of the denied functions, those a catalog probe may call on the catalog shadow (no data there)."""

_FORBIDDEN_NODES: tuple[type[exp.Expr], ...] = (
    exp.Insert,
    exp.Update,
    exp.Delete,
    exp.Merge,
    exp.Create,
    exp.Drop,
    exp.Alter,
    exp.Command,
    exp.Copy,
    exp.Attach,
    exp.Detach,
    exp.Pragma,
    exp.Set,
    exp.Use,
    exp.Into,
    exp.Lock,
    exp.Transaction,
    exp.Commit,
    exp.Rollback,
    exp.Describe,
    exp.Install,
    exp.Export,
    exp.Summarize,
)
_ALLOWED_TABLE_FUNCTIONS = (exp.Unnest,)


def guard_select(
    sql: str,
    served: Collection[str],
    *,
    read: str = "duckdb",
    params: Sequence[object] = (),
    rewrite: Callable[[exp.Query], exp.Query] | None = None,
) -> exp.Query:
    """The one query ``sql`` holds, checked; ``served`` names the relations it may read, as
    ``schema.name`` (compared case-insensitively, as DuckDB and PostgreSQL do for unquoted names).
    ``params`` are the values of ``$1``, ``$2`` ... (the wire protocol's bound parameters), put
    in as literals built by sqlglot. ``rewrite`` turns the bound tree into what runs (the
    ``metrics`` relations into their compiled queries), and what it returns is checked too.
    Raises ``SqlRefused`` naming the rule a statement broke."""
    if not sql.strip():
        raise SqlRefused("the statement is empty", hint="send one SELECT")
    try:
        statements = [s for s in sqlglot.parse(sql, read=read) if s is not None]
    except (ParseError, TokenError) as error:
        raise SqlRefused(
            f"the statement does not parse: {_first_line(error)}", hint="send one SELECT"
        ) from None
    if len(statements) != 1:
        raise SqlRefused(
            f"{len(statements)} statements sent; exactly one is allowed",
            hint="send one SELECT, no ';' between",
        )
    (tree,) = statements
    if not isinstance(tree, exp.Query):
        raise SqlRefused(f"only SELECT is allowed, not {tree.key.upper()}", hint="this endpoint is read-only")
    _check_nodes(tree)
    bound = _bind(tree, params)
    if rewrite is not None:
        bound = rewrite(bound)
        _check_nodes(bound)
    _check_relations(bound, {name.lower() for name in served})
    return bound


def capped(query: exp.Query, rows: int) -> exp.Query:
    """``query`` reading at most ``rows + 1`` rows: the extra row tells the caller it was cut."""
    return exp.select(exp.Star()).from_(query.subquery("_guarded")).limit(rows + 1)


def _check_nodes(tree: exp.Expr) -> None:
    for node in tree.walk():
        if isinstance(node, _FORBIDDEN_NODES):
            raise SqlRefused(
                f"{node.key.upper()} is not allowed in a read-only query", hint="send one SELECT"
            )
        if isinstance(node, exp.Func):
            name = _function_name(node)
            if DENIED_FUNCTIONS.match(name):
                raise SqlRefused(
                    f"function {name}() is not allowed: it reaches files, settings or catalogs",
                    hint="read the served tables by name, schema.table",
                )
        if isinstance(node, exp.Table) and not isinstance(node.this, exp.Identifier):
            raise SqlRefused(
                "table functions are not allowed", hint="read the served tables by name, schema.table"
            )
        if isinstance(node, (exp.Lateral, exp.TableFromRows)) or (
            isinstance(node, exp.UDTF) and not isinstance(node, _ALLOWED_TABLE_FUNCTIONS)
        ):
            raise SqlRefused(
                "table functions are not allowed", hint="read the served tables by name, schema.table"
            )


def _function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return node.sql_name().lower()


def _check_relations(tree: exp.Query, served: set[str]) -> None:
    for scope in traverse_scope(tree):
        for table in scope.tables:
            name = table.name.lower()
            if not table.args.get("db"):
                if name in scope.cte_sources or name in _ctes_in_scope(table):
                    continue
                raise SqlRefused(
                    f'table "{table.name}" needs its schema', hint="name served tables as schema.table"
                )
            if table.args.get("catalog"):
                raise SqlRefused(
                    f'"{table.sql()}" names a catalog; only served tables are readable',
                    hint="name served tables as schema.table",
                )
            if f"{table.db.lower()}.{name}" not in served:
                raise SqlRefused(
                    f'"{table.db}.{table.name}" is not a served table',
                    hint="GET /api/v1/tables lists the served tables",
                )


def _ctes_in_scope(table: exp.Table) -> set[str]:
    """CTE names of the queries enclosing ``table`` (a recursive CTE reads its own name)."""
    names: set[str] = set()
    node: exp.Expr | None = table
    while node is not None:
        with_ = node.args.get("with_") or node.args.get("with") if isinstance(node, exp.Query) else None
        if isinstance(with_, exp.With):
            names.update(cte.alias.lower() for cte in with_.expressions)
        node = node.parent
    return names


def _bind(tree: exp.Query, params: Sequence[object]) -> exp.Query:
    def replace(node: exp.Expr) -> exp.Expr:
        if isinstance(node, (exp.Placeholder, exp.Parameter)):
            index = _param_index(node)
            if index is None or not 1 <= index <= len(params):
                raise SqlRefused(
                    f"parameter {node.sql()} has no value", hint=f"{len(params)} parameter value(s) were sent"
                )
            return _literal(params[index - 1])
        return node

    if not any(True for _ in tree.find_all(exp.Placeholder, exp.Parameter)):
        return tree
    bound = tree.transform(replace)
    assert isinstance(bound, exp.Query)  # only leaves were replaced
    return bound


def _param_index(node: exp.Expr) -> int | None:
    text = node.name if isinstance(node, exp.Placeholder) else node.this.name if node.this else ""
    return int(text) if str(text).isdigit() else None


def _literal(value: object) -> exp.Expr:
    if value is None:
        return exp.null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, (int, float, Decimal)):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0][:200]


CATALOG_SCHEMAS = frozenset({"pg_catalog", "information_schema"})


def catalog_probe(
    sql: str,
    *,
    read: str = "postgres",
    write: str = "duckdb",
    params: Sequence[object] = (),
    overrides: Mapping[str, exp.Query] | None = None,
) -> str | None:
    """``sql`` rendered for the catalog shadow (an engine holding only the served tables' empty
    copies) when it is one query that reads only ``pg_catalog``/``information_schema`` relations
    or none at all, as BI tools send on connect; None for anything else. ``overrides`` maps a
    catalog relation (``pg_attribute``) to a query the shadow answers it better with. Catalog functions are
    allowed here, and only here, because the shadow holds no data and cannot reach files."""
    try:
        statements = [s for s in sqlglot.parse(sql, read=read) if s is not None]
    except (ParseError, TokenError):
        return None
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        return None
    tree = statements[0]
    if any(isinstance(node, _FORBIDDEN_NODES) for node in tree.walk()):
        return None
    for function in tree.find_all(exp.Func):
        name = _function_name(function)
        if DENIED_FUNCTIONS.match(name) and not CATALOG_FUNCTIONS.match(name):
            return None  # settings, files, the environment: not even on the shadow
    for table in tree.find_all(exp.Table):
        if isinstance(table.this, (exp.Explode, exp.Unnest)):  # psql's unnest(reloptions): none here
            no_options = exp.select(exp.alias_(exp.cast(exp.null(), exp.DataType.Type.TEXT), "x"))
            table.replace(no_options.where(exp.false()).subquery(table.alias_or_name or "x"))
            continue
        if isinstance(table.this, exp.ExplodingGenerateSeries):  # psql's publication probe: numbers only
            table.set("db", None)
            alias = table.args.get("alias")
            if alias is None or not alias.columns:  # PostgreSQL names its one column as the alias
                series = exp.to_identifier(table.alias_or_name or "s")
                table.set("alias", exp.TableAlias(this=series, columns=[series.copy()]))
            continue
        if not isinstance(table.this, exp.Identifier):
            return None
        schema = table.db.lower()
        if schema and schema not in CATALOG_SCHEMAS:
            return None
        if not schema and not table.name.lower().startswith("pg_") and not _is_cte(table):
            return None
    for table in list(tree.find_all(exp.Table)):
        name = table.name.lower()
        if overrides and name in overrides and table.db.lower() in ("", "pg_catalog") and not _is_cte(table):
            table.replace(overrides[name].subquery(table.alias_or_name))
    for column in tree.find_all(exp.Column):  # pg_catalog.pg_class.relname: the stand-in is pg_class
        if column.args.get("db") is not None and column.text("db").lower() == "pg_catalog":
            column.set("db", None)
    # psql's COLLATE pg_catalog.default: DuckDB's default collation
    tree = tree.transform(lambda node: node.this if isinstance(node, exp.Collate) else node)
    return _bind(tree.transform(_stand_in), params).sql(dialect=write, comments=False)


_STAND_INS = {
    "pg_get_userbyid": lambda: exp.Literal.string("gristmill"),
    # SQLAlchemy (Superset) reads the server's version from this text, as PostgreSQL words it
    "version": lambda: exp.Literal.string("PostgreSQL 16.0 on gristmill (read-only, DuckDB)"),
    "pg_encoding_to_char": lambda: exp.Literal.string("UTF8"),
    "pg_get_indexdef": exp.null,
    "pg_get_expr": exp.null,  # column defaults: served relations have none
    "pg_get_constraintdef": exp.null,
    "pg_relation_is_publishable": exp.false,  # no logical replication here
    "pg_get_statisticsobjdef_columns": exp.null,
    "pg_get_partkeydef": exp.null,
    "pg_get_function_result": exp.null,
    "pg_get_function_arguments": exp.null,
}
"""Catalog functions DuckDB's emulation lacks, answered as a one-owner, UTF-8 server would."""


_FORMAT_TYPE = sqlglot.parse_one(
    "CASE gm_oid WHEN 16 THEN 'boolean' WHEN 17 THEN 'bytea' WHEN 20 THEN 'bigint'"
    " WHEN 21 THEN 'smallint' WHEN 23 THEN 'integer' WHEN 25 THEN 'text' WHEN 700 THEN 'real'"
    " WHEN 701 THEN 'double precision' WHEN 1043 THEN 'character varying' WHEN 1082 THEN 'date'"
    " WHEN 1083 THEN 'time without time zone' WHEN 1114 THEN 'timestamp without time zone'"
    " WHEN 1184 THEN 'timestamp with time zone' WHEN 1186 THEN 'interval'"
    " WHEN 1266 THEN 'time with time zone' WHEN 2950 THEN 'uuid'"
    " WHEN 1700 THEN CASE WHEN gm_mod >= 4 THEN 'numeric(' || CAST(((gm_mod - 4) >> 16) AS VARCHAR)"
    " || ',' || CAST(((gm_mod - 4) & 65535) AS VARCHAR) || ')' ELSE 'numeric' END"
    " ELSE (SELECT typname FROM pg_catalog.pg_type WHERE oid = gm_oid LIMIT 1) END",
    read="duckdb",
)
"""PostgreSQL's ``format_type(oid, typmod)``: DuckDB's reads its own type ids, not the OIDs its
``pg_type`` (and the shadow's ``pg_attribute``) list."""


def _format_type(oid: exp.Expr, typmod: exp.Expr | None) -> exp.Expr:
    arguments = {"gm_oid": oid, "gm_mod": typmod if typmod is not None else exp.null()}
    return _FORMAT_TYPE.transform(
        lambda n: arguments[n.name].copy() if isinstance(n, exp.Column) and n.name in arguments else n
    )


_EXPAND_ARRAY = sqlglot.parse_one(
    "unnest(list_transform(range(1, len(gm_arr) + 1),"
    " lambda gm_i: struct_pack(x := gm_arr[gm_i], n := gm_i)))",
    read="duckdb",
)
"""PostgreSQL's ``information_schema._pg_expandarray(a)``, rows of (x: element, n: position), which
JDBC's ``getPrimaryKeys`` reads."""

_OID_ALIASES = frozenset({"regclass", "regnamespace", "regproc", "regprocedure", "regrole", "regoper", "oid"})


def _pg_type_name(kind: exp.Expr) -> str:
    """``regtype`` of ``::regtype`` and of ``::pg_catalog.regtype``; "" for DuckDB's own types."""
    if isinstance(kind, exp.ObjectIdentifier):
        return kind.name.lower()
    if isinstance(kind, exp.DataType) and isinstance(kind.args.get("kind"), exp.Dot):
        return kind.args["kind"].expression.name.lower()
    return ""


def _stand_in(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.Operator):  # psql's OPERATOR(pg_catalog.~): a regular expression match
        operator = str(node.args.get("operator", "")).rsplit(".", 1)[-1]
        if operator in ("~", "!~"):
            match = exp.RegexpLike(this=node.this, expression=node.expression)
            return match if operator == "~" else exp.Not(this=match)
    if (
        isinstance(node, exp.Dot)
        and isinstance(node.expression, exp.Func)
        and node.this.name in ("pg_catalog", "information_schema")
    ):
        node = node.expression  # DuckDB finds pg_catalog's functions unqualified
    if isinstance(node, exp.Cast):
        target = _pg_type_name(node.to)
        if target == "regtype":  # a type's name, as PostgreSQL prints it
            return _format_type(node.this.transform(_stand_in), None)
        # a replaced node's children are not visited by transform: stand in inside it here
        if target in _OID_ALIASES:
            return node.this.transform(_stand_in)
        if target == "text":
            return exp.cast(node.this.transform(_stand_in), exp.DataType.Type.TEXT)
    if isinstance(node, exp.Anonymous) and str(node.name).lower() == "to_regtype":
        return (
            exp.select("oid")
            .from_(exp.table_("pg_type", db="pg_catalog"))
            .where(exp.column("typname").eq(node.expressions[0]))
            .limit(1)
            .subquery()
        )
    if isinstance(node, exp.DataType) and isinstance(node.args.get("kind"), exp.Dot):
        try:  # pg_catalog.int2: DuckDB knows PostgreSQL's type names unqualified
            return exp.DataType.build(node.args["kind"].expression.name, dialect="postgres")
        except Exception:  # sqlglot's ParseError and ValueError: a name it does not know stays
            return node
    if isinstance(node, exp.Anonymous) and str(node.name).lower() == "format_type" and node.expressions:
        oid, *typmod = (argument.transform(_stand_in) for argument in node.expressions)
        return _format_type(oid, typmod[0] if typmod else None)
    if isinstance(node, exp.Anonymous) and str(node.name).lower() == "_pg_expandarray" and node.expressions:
        array = node.expressions[0].transform(_stand_in)
        return _EXPAND_ARRAY.transform(
            lambda n: array.copy() if isinstance(n, exp.Column) and n.name == "gm_arr" else n
        )
    if isinstance(node, exp.Anonymous) and str(node.name).lower() in ("col_description", "obj_description"):
        return _description(node)
    if isinstance(node, exp.Anonymous) and str(node.name).lower() == "array_upper" and node.expressions:
        return exp.Anonymous(this="len", expressions=[node.expressions[0].transform(_stand_in)])
    if isinstance(node, exp.Anonymous) and str(node.name).lower() in _STAND_INS:
        return _STAND_INS[str(node.name).lower()]()
    return node


def _description(node: exp.Anonymous) -> exp.Expr:
    """``col_description(table, attnum)``, ``obj_description(oid[, catalog])`` read from
    ``pg_description`` (DuckDB's functions answer NULL even where a comment is there)."""
    target, *rest = (argument.transform(_stand_in) for argument in node.expressions)
    column = rest[0] if str(node.name).lower() == "col_description" and rest else exp.Literal.number(0)
    return (
        exp.select("description")
        .from_(exp.table_("pg_description", db="pg_catalog"))
        .where(exp.column("objoid").eq(target), exp.column("objsubid").eq(column))
        .limit(1)
        .subquery()
    )


def _is_cte(table: exp.Table) -> bool:
    return table.name.lower() in _ctes_in_scope(table)
