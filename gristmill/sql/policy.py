"""Enforce an access policy by rewriting a query before it reaches the engine.

Every base-table reference becomes a subquery over that table that selects its columns with the
principal's masks applied and its row filters in WHERE, under the reference's own alias. Whatever
the outer query does (CTEs, joins, UNION, window functions, ``SELECT *``, casts and functions over a
column) it can only see masked values of permitted rows: nothing is filtered after the engine.
What cannot be checked this way (table functions, file readers, catalogs, other statements) is
refused. Aggregates read masked values too; access_specs only allows an aggregate on a mask that
keeps it exact (count: NULL-ness, count_distinct: hash), so no raw value is ever exposed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlglot import exp, parse
from sqlglot.errors import ParseError

from gristmill.errors import PolicyRefusal
from gristmill.project.access_specs import (
    COLUMN_PLACEHOLDER,
    PRINCIPAL_PLACEHOLDER,
    AccessPolicy,
    Mask,
    Privilege,
)

__all__ = ["PolicyRefusal", "Principal", "granted", "rewrite"]


@dataclass(frozen=True)
class Principal:
    """Who asks: the roles resolved from their key, subject or groups, and their attributes."""

    name: str
    roles: tuple[str, ...]
    attributes: Mapping[str, str | int | float | bool] = field(default_factory=dict)


# Functions that read outside the policed tables (files, catalogs, settings, other databases).
_FORBIDDEN_PREFIXES = (
    "read_",
    "parquet_",
    "duckdb_",
    "pg_",
    "glob",
    "query",
    "getenv",
    "current_setting",
    "sniff_",
    "iceberg_",
    "delta_",
    "sqlite_",
    "postgres_",
    "mysql_",
    "dblink",
    "lo_",
    "txid_",
    "set_config",
)
_STATEMENT_ROOTS = (exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Subquery)
_PLACEHOLDER_COLUMN = "__gm_column__"


def rewrite(
    query: str | exp.Expr,
    *,
    catalog: Mapping[str, Sequence[str]],
    principal: Principal,
    policy: AccessPolicy,
    classes: Mapping[str, Mapping[str, frozenset[str]]] | None = None,
    dialect: str = "duckdb",
) -> exp.Expr:
    """The query with the policy applied to every table it reads, or PolicyRefusal."""
    tree = _parsed(query, dialect) if isinstance(query, str) else query.copy()
    if not isinstance(tree, _STATEMENT_ROOTS):
        raise PolicyRefusal("only SELECT queries can be served")
    _refuse_outside_reads(tree)
    for table in list(tree.find_all(exp.Table)):
        if _is_cte_reference(table):
            continue
        asset = _asset_of(table, catalog)
        if not _granted(policy, principal, asset, "read"):
            raise PolicyRefusal(f"{principal.name} may not read {asset}")
        view = _view(asset, catalog[asset], principal, policy, (classes or {}).get(asset, {}), dialect)
        alias = table.alias or table.name
        table.replace(exp.Subquery(this=view, alias=exp.TableAlias(this=exp.to_identifier(alias))))
    return tree


def granted(policy: AccessPolicy, principal: Principal, target: str, privilege: Privilege) -> bool:
    """May the principal use ``target`` (an asset or ``metric:name``) this way?"""
    return _granted(policy, principal, target, privilege)


def _granted(policy: AccessPolicy, principal: Principal, target: str, privilege: Privilege) -> bool:
    return any(
        grant.covers(target, privilege)
        for role in principal.roles
        if role in policy.roles
        for grant in policy.roles[role].grants
    )


def _parsed(sql: str, dialect: str) -> exp.Expr:
    try:
        statements = [s for s in parse(sql, read=dialect) if s is not None]
    except ParseError as err:
        raise PolicyRefusal(f"the query does not parse: {str(err).splitlines()[0]}") from None
    if len(statements) != 1:
        raise PolicyRefusal("send exactly one statement")
    return statements[0]


def _refuse_outside_reads(tree: exp.Expr) -> None:
    for node in tree.walk():
        if isinstance(node, exp.Func):
            name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
            if name.startswith(_FORBIDDEN_PREFIXES):
                raise PolicyRefusal(f"{name}() reads outside the policed tables")
        if isinstance(node, exp.Table) and not isinstance(node.this, exp.Identifier):
            raise PolicyRefusal("table functions are not served: query the assets by name")
        if isinstance(node, (exp.Command, exp.Insert, exp.Update, exp.Delete, exp.Create, exp.Drop)):
            raise PolicyRefusal("only SELECT queries can be served")
        if isinstance(node, exp.Placeholder):
            raise PolicyRefusal("parameters are not supported in served SQL")


def _is_cte_reference(table: exp.Table) -> bool:
    """An unqualified name bound to a CTE of an enclosing WITH (never a CTE's own body)."""
    if table.args.get("db") or table.args.get("catalog"):
        return False
    node = table.parent
    while node is not None:
        with_ = node.args.get("with_")
        if isinstance(with_, exp.With):
            for cte in with_.expressions:
                if cte.alias_or_name == table.name and (with_.recursive or not _inside(table, cte)):
                    return True
        node = node.parent
    return False


def _inside(node: exp.Expr, ancestor: exp.Expr) -> bool:
    while node is not None:
        if node is ancestor:
            return True
        node = node.parent  # type: ignore[assignment]
    return False


def _asset_of(table: exp.Table, catalog: Mapping[str, Sequence[str]]) -> str:
    if table.args.get("catalog"):
        raise PolicyRefusal(f"{table.sql()}: name assets as schema.table")
    if not table.db:
        raise PolicyRefusal(f'"{table.name}" is neither a CTE nor a schema.table asset')
    asset = f"{table.db}.{table.name}"
    if asset not in catalog:
        raise PolicyRefusal(f"no asset {asset}")
    return asset


_VIEWS: dict[tuple[object, ...], tuple[AccessPolicy, exp.Select]] = {}


def _view(
    asset: str,
    columns: Sequence[str],
    principal: Principal,
    policy: AccessPolicy,
    classes: Mapping[str, frozenset[str]],
    dialect: str,
) -> exp.Select:
    """The policed subquery of an asset, built once per policy, principal shape and schema: most
    of a request's rewrite cost is building these, and the same few repeat on every request."""
    key = (
        id(policy),
        asset,
        tuple(columns),
        principal.roles,
        tuple(sorted((k, repr(v)) for k, v in principal.attributes.items())),
        tuple(sorted((c, tuple(sorted(found))) for c, found in classes.items())),
        dialect,
    )
    cached = _VIEWS.get(key)
    # The policy object is kept with its view: an id reused by a new policy never matches.
    if cached is None or cached[0] is not policy:
        if len(_VIEWS) >= 4096:
            _VIEWS.clear()
        cached = (policy, _policed(asset, columns, principal, policy, classes, dialect))
        _VIEWS[key] = cached
    return cached[1].copy()


def _policed(
    asset: str,
    columns: Sequence[str],
    principal: Principal,
    policy: AccessPolicy,
    classes: Mapping[str, frozenset[str]],
    dialect: str,
) -> exp.Select:
    roles = [policy.roles[r] for r in principal.roles if r in policy.roles]
    masks = [m for role in roles for m in role.masks]
    schema, name = asset.split(".", 1)
    projections = []
    for column in columns:
        # The most restrictive reading: a mask declared by any of the principal's roles applies.
        mask = next((m for m in masks if m.applies_to(column, classes.get(column, frozenset()))), None)
        ref = exp.column(column, quoted=True)
        value = ref if mask is None else _masked(ref, mask, dialect)
        projections.append(exp.alias_(value, column, quoted=True))
    view = exp.select(*projections).from_(exp.table_(name, db=schema, quoted=True))
    filters = [f for role in roles for f in role.row_filters if f.asset == asset]
    for row_filter in filters:  # every role's filter holds (AND): no role widens another's rows
        view = view.where(_bound(row_filter.where, principal, dialect), copy=False)
    return view


def _masked(ref: exp.Column, mask: Mask, dialect: str) -> exp.Expr:
    text = exp.cast(ref.copy(), "VARCHAR")
    if mask.policy == "null":
        return exp.Null()
    if mask.policy == "hash":
        return exp.MD5(this=text)
    if mask.policy == "redact":
        value: exp.Expr = exp.Literal.string("****")
    elif mask.policy == "partial":
        keep = exp.Literal.number(mask.keep_last or 4)
        value = exp.DPipe(this=exp.Literal.string("****"), expression=exp.Right(this=text, expression=keep))
    else:
        value = _custom(mask.expr or "", ref, dialect)
    # NULL stays NULL, so count() over the masked column is exact.
    return exp.case().when(exp.Is(this=ref.copy(), expression=exp.Null()), exp.Null()).else_(value)


@lru_cache(maxsize=1024)
def _template(sql: str, dialect: str, what: str) -> exp.Expr:
    """A mask's or filter's SQL parsed once (per process): the rewrite copies it on every use."""
    try:
        return exp.maybe_parse(sql, dialect=dialect)
    except ParseError:
        raise PolicyRefusal(f"{what} does not parse: {sql}") from None


def _custom(template: str, ref: exp.Column, dialect: str) -> exp.Expr:
    sql = COLUMN_PLACEHOLDER.sub(_PLACEHOLDER_COLUMN, template)
    tree = _template(sql, dialect, "mask expression").copy()
    for node in tree.walk():
        if isinstance(node, (exp.Query, exp.Table)):
            raise PolicyRefusal(f"mask expression may not read tables: {template}")
        if isinstance(node, exp.Column) and node.name != _PLACEHOLDER_COLUMN:
            # Another column in a mask would copy its value into the masked one.
            raise PolicyRefusal(f"mask expression may only read {{{{ column }}}}: {template}")
    return tree.transform(lambda n: ref.copy() if isinstance(n, exp.Column) else n)


def _bound(template: str, principal: Principal, dialect: str) -> exp.Expr:
    """The row filter with each ``{{ principal.x }}`` replaced by a literal node, never by text."""
    names = PRINCIPAL_PLACEHOLDER.findall(template)
    missing = [n for n in names if n not in principal.attributes]
    if missing:
        raise PolicyRefusal(f"{principal.name} has no attribute {missing[0]} required by a row filter")
    sql = PRINCIPAL_PLACEHOLDER.sub(lambda m: f"__gm_principal_{m.group(1)}__", template)
    tree = _template(sql, dialect, "row filter").copy()

    def bind(node: exp.Expr) -> Any:
        if isinstance(node, exp.Column) and node.name.startswith("__gm_principal_"):
            return exp.convert(principal.attributes[node.name[len("__gm_principal_") : -2]])
        return node

    return tree.transform(bind)
