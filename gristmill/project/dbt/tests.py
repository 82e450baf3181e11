"""dbt tests as Gristmill checks, with dbt's meaning.

Generic tests under ``tests:`` / ``data_tests:`` (on a column, or on a model with ``column_name``)
become a built-in check where one means exactly the same (unique, not_null, accepted_values,
relationships, dbt_utils.unique_combination_of_columns, dbt_utils.accepted_range with numeric
bounds, dbt_utils.not_null_proportion with ``at_least: 1``); a test of single rows becomes an
``expression`` check (expression_is_true, not_empty_string, not_accepted_values…), which shares
the table's one scan; anything else becomes a ``query`` check running the SELECT of failing rows
dbt runs (recency, equal_rowcount, cardinality_equality, sequential_values…). docs/dbt.md has the
table.

Configs keep their meaning: ``where`` restricts the rows tested (dbt's ``get_where_subquery``);
``severity`` picks error or warn; with ``error_if``/``warn_if``/``fail_calc`` the test becomes a
query check returning dbt's rows only when dbt's condition on them holds (an error check and a
warn check when dbt warns below its error threshold), ``limit`` capping the rows counted;
``enabled: false`` drops the test; ``store_failures`` is ignored (Gristmill keeps samples).

Custom generic tests (``{% test name(model, column_name) %}`` blocks in the macro or test
folders, or ``test_<name>`` macros) are rendered with the project's macros as dbt renders them,
into a query check. Singular tests (``tests/**/*.sql``) are rendered the same way and checked on
the first asset they ref. A check that reads an asset built from its own runs when the last
asset it reads is built, as dbt runs such a test after every node it reads. A model whose
contract is enforced gets a ``schema`` check (its columns and their ``data_type``, exactly) and a
check per constraint (on tables only, as dbt applies them).

Whatever cannot be mapped is not run, and a warning names its file and line and the reason.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlglot import exp

from gristmill.errors import ProjectError
from gristmill.project.checks import parse_condition, parse_failing_rows_query, query_reads
from gristmill.project.dbt.compile import Collecting
from gristmill.project.dbt.config import DbtProject, folder_config, merge_config, read_target
from gristmill.project.dbt.context import Scope, build_context
from gristmill.project.dbt.crossdb import CrossDb
from gristmill.project.dbt.jinja import DbtError, Jinja, MacroDef, Relation
from gristmill.project.dbt.packages import load_macros
from gristmill.project.dbt.properties import Entry, Properties, SourceTable
from gristmill.project.specs import CheckSpec

log = logging.getLogger("gristmill.dbt")
_TEST_KEYS = ("data_tests", "tests")
_CONFIG_KEYS = {
    "severity",
    "where",
    "limit",
    "enabled",
    "tags",
    "meta",
    "error_if",
    "warn_if",
    "fail_calc",
    "store_failures",
    "store_failures_as",
    "alias",
    "schema",
    "database",
    "description",
}
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
_LOOKS_LIKE_CALL = re.compile(r"^\s*(env_var|ref|var|source|doc)\s*\(.+\)\s*$", re.DOTALL)
_FK_EXPRESSION = re.compile(r'^\s*(?P<table>[\w."]+)\s*\(\s*(?P<column>[\w"]+)\s*\)\s*$')
_CROSS_DB = CrossDb()

Evaluate = Callable[[str, str], Any]
"""Evaluates a Jinja expression such as ``ref('customers')`` at a location; returns a relation."""
Builtin = tuple[str, tuple[str, ...], dict[str, Any]]
"""A built-in check: kind, columns, params."""


class _Skip(Exception):
    """A reason not to run one test."""


# --- what one test checks ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Test:
    """One dbt test, in the forms a check can take.

    ``builtins`` mean exactly the test when no config restricts it. ``row`` is a condition that is
    true for a failing row, for tests that judge one row at a time. ``sql`` gives the SELECT of
    failing rows for a ``where`` clause (None: every row). ``dbt_sql`` is dbt's own query where it
    returns other rows (one per failing value): ``fail_calc``, ``error_if`` and ``warn_if`` count
    those."""

    builtins: tuple[Builtin, ...] = ()
    row: str | None = None
    sql: Callable[[str | None], str] | None = None
    dbt_sql: Callable[[str | None], str] | None = None

    def failing_rows(self, where: str | None) -> str:
        if self.sql is not None:
            return self.sql(where)
        assert self.row is not None
        return f"select * from {_model(where)} where {self.row}"

    def dbt_rows(self, where: str | None) -> str:
        return self.dbt_sql(where) if self.dbt_sql is not None else self.failing_rows(where)


def _model(where: str | None) -> str:
    """What a test reads: the asset, or only its rows meeting ``where`` (dbt's get_where_subquery)."""
    return f"(select * from this where {where}) dbt_subquery" if where else "this"


def _literal(value: Any, quote: bool = True) -> str:
    """A value as dbt writes it into a test's SQL: quoted (``'{{ value }}'``) or as written."""
    return "'" + str(value).replace("'", "''") + "'" if quote else str(value)


def _group_by(columns: Any) -> tuple[str, str]:
    """(``a, b, ``, ``group by a, b``) for dbt_utils' ``group_by_columns``."""
    names = [str(c) for c in (columns or [])]
    if not names:
        return "", ""
    return ", ".join(names) + ", ", "group by " + ", ".join(names)


def _bare(column: str | None) -> str | None:
    """The column a built-in check can name (one with ``quote: true`` comes double-quoted), if any."""
    name = column[1:-1] if column and len(column) > 2 and column[0] == column[-1] == '"' else column
    return name if name and _COLUMN.match(name) else None


def _plain_column(column: str | None, test: str) -> str:
    name = _bare(column)
    if name is None:
        raise _Skip(f"{test} needs a plain column name, not {column!r}")
    return name


def _needs_column(column: str | None, test: str) -> str:
    if not column:
        raise _Skip(f"{test} needs a column (put it under a column, or give column_name)")
    return column


def _not_null(column: str) -> _Test:
    return _Test(builtins=(("not_null", (column,), {}),), row=f"{column} is null")


def _unique(columns: tuple[str, ...]) -> _Test:
    """Rows sharing a key with an earlier row, as the ``unique`` check counts them (a one-column key
    skips NULLs; a composite one compares them as values). dbt returns one row per repeated key:
    ``unique``'s query, or dbt_utils.unique_combination_of_columns' for several columns."""
    keys = ", ".join(columns)
    skip_null = f" where {columns[0]} is not null" if len(columns) == 1 else ""

    def sql(where: str | None) -> str:
        return (
            "select * exclude (dbt_row_number) from (select *, row_number() over (partition by "
            f"{keys}) as dbt_row_number from {_model(where)}{skip_null}) dbt_numbered "
            "where dbt_row_number > 1"
        )

    def dbt_sql(where: str | None) -> str:
        if len(columns) == 1:
            return (
                f"select {keys} as unique_field, count(*) as n_records from {_model(where)}{skip_null} "
                f"group by {keys} having count(*) > 1"
            )
        return (
            f"with validation_errors as (select {keys} from {_model(where)} group by {keys} "
            "having count(*) > 1) select * from validation_errors"
        )

    return _Test(builtins=(("unique", columns, {}),), sql=sql, dbt_sql=dbt_sql)


def _relationships(column: str, parent: str, field_name: str) -> _Test:
    def sql(where: str | None) -> str:
        return (
            f"with child as (select * from {_model(where)}) select * from child where child.{column} is "
            f"not null and not exists (select 1 from {parent} as parent "
            f"where parent.{field_name} = child.{column})"
        )

    return _Test(builtins=(("relationships", (column,), {"to": f"{parent}.{field_name}"}),), sql=sql)


def _accepted_values(column: str, values: list[Any], quote: bool) -> _Test:
    """Rows whose value is not listed (NULL passes). dbt returns one row per value that is not."""
    if not values:
        raise _Skip("accepted_values needs values")
    listed = ", ".join(_literal(v, quote) for v in values)
    row = f"{column} not in ({listed})"

    def dbt_sql(where: str | None) -> str:
        return (
            f"with all_values as (select {column} as value_field, count(*) as n_records from "
            f"{_model(where)} group by {column}) select * from all_values where value_field not in ({listed})"
        )

    if not quote and any(isinstance(v, str) for v in values):
        return _Test(row=row, dbt_sql=dbt_sql)  # values are SQL as written: no built-in means the same
    builtin: Builtin = ("accepted_values", (column,), {"values": list(values)})
    return _Test(builtins=(builtin,), row=row, dbt_sql=dbt_sql)


def _accepted_range(column: str, args: dict[str, Any]) -> _Test:
    low, high = args.get("min_value"), args.get("max_value")
    inclusive = args.get("inclusive", True) is not False
    equal = "=" if inclusive else ""
    parts = ["1 = 2"]
    if low is not None:
        parts.append(f"not {column} >{equal} {low}")
    if high is not None:
        parts.append(f"not {column} <{equal} {high}")
    row = " or ".join(parts)
    numbers = [v for v in (low, high) if v is not None]
    bare = _bare(column)
    if bare and numbers and all(isinstance(v, int | float) and not isinstance(v, bool) for v in numbers):
        params: dict[str, Any] = {k: v for k, v in (("min", low), ("max", high)) if v is not None}
        if not inclusive:
            params["exclusive"] = True
        return _Test(builtins=(("range", (bare,), params),), row=row)
    return _Test(row=row)


def _not_null_proportion(column: str, args: dict[str, Any]) -> _Test:
    at_least = args.get("at_least", args.get("arg"))
    at_most = args.get("at_most", args.get("arg", 1))
    if at_least is None:
        raise _Skip("dbt_utils.not_null_proportion needs at_least")
    select, group = _group_by(args.get("group_by_columns"))
    bare = _bare(column)
    if bare and _number(at_least) >= 1 and _number(at_most) >= 1 and not group:
        return _not_null(bare)  # a proportion of 1 is no NULL at all

    def sql(where: str | None) -> str:
        return (
            f"with validation as (select {select}sum(case when {column} is null then 0 else 1 end) / "
            f"cast(count(*) as {_CROSS_DB.type_numeric()}) as not_null_proportion from {_model(where)} "
            f"{group}), validation_errors as (select {select}not_null_proportion from validation where "
            f"not_null_proportion < {at_least} or not_null_proportion > {at_most}) "
            "select * from validation_errors"
        )

    return _Test(sql=sql)


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _at_least_one(column: str, args: dict[str, Any]) -> _Test:
    groups = [c for c in (args.get("group_by_columns") or []) if c != column]
    select, group = _group_by(groups)

    def sql(where: str | None) -> str:
        return (
            f"select * from (select {select}count({column}) as filler_column from (select {select}{column} "
            f"from {_model(where)} where {column} is not null limit 1) pruned_rows {group} "
            f"having count({column}) = 0) validation_errors"
        )

    return _Test(sql=sql)


def _not_constant(column: str, args: dict[str, Any]) -> _Test:
    select, group = _group_by(args.get("group_by_columns"))

    def sql(where: str | None) -> str:
        return (
            f"select {select}count(distinct {column}) as filler_column from {_model(where)} {group} "
            f"having count(distinct {column}) = 1"
        )

    return _Test(sql=sql)


def _not_empty_string(column: str, args: dict[str, Any]) -> _Test:
    if str(args.get("trim_whitespace", True)).lower() not in ("false", "0"):
        return _Test(row=f"trim(translate({column}, chr(9) || chr(10) || chr(13), '   ')) = ''")
    return _Test(row=f"{column} = ''")


def _expression_is_true(column: str | None, args: dict[str, Any]) -> _Test:
    expression = args.get("expression")
    if not isinstance(expression, str) or not expression.strip():
        raise _Skip("dbt_utils.expression_is_true needs an expression")
    return _Test(row=f"not({column} {expression})" if column else f"not({expression})")


def _not_accepted_values(column: str, args: dict[str, Any]) -> _Test:
    values = list(args.get("values") or [])
    quote = args.get("quote", True) is not False
    if not values:
        return _Test(row="false")
    return _Test(row=f"{column} in ({', '.join(_literal(v, quote) for v in values)})")


def _recency(args: dict[str, Any]) -> _Test:
    datepart, field_name, interval = args.get("datepart"), args.get("field"), args.get("interval")
    if not datepart or not field_name or interval is None:
        raise _Skip("dbt_utils.recency needs datepart, field and interval")
    ignore_time = args.get("ignore_time_component", False) is True
    try:
        shifted = _CROSS_DB.dateadd(str(datepart), -int(interval), _CROSS_DB.current_timestamp())
    except (TypeError, ValueError, DbtError):
        raise _Skip(f"dbt_utils.recency: interval {interval!r} is not a whole number") from None
    threshold = f"cast({shifted} as {'date' if ignore_time else _CROSS_DB.type_timestamp()})"
    latest = f"cast(max({field_name}) as date)" if ignore_time else f"max({field_name})"
    select, group = _group_by(args.get("group_by_columns"))

    def sql(where: str | None) -> str:
        return (
            f"with recency as (select {select}{latest} as most_recent from {_model(where)} {group}) "
            f"select {select}most_recent, {threshold} as threshold from recency "
            f"where most_recent < {threshold}"
        )

    return _Test(sql=sql)


def _compare_counts(compare: str, args: dict[str, Any], *, fewer: bool, expand: bool) -> _Test:
    """equal_rowcount and fewer_rows_than, as dbt_utils writes them. dbt counts their failures as
    ``sum(diff_count)`` / ``sum(row_count_delta)``: each result row is repeated that many times, so
    the failing rows count the same."""
    extra = [str(c) for c in (args.get("group_by_columns") or [])]
    keys = ["id_dbtutils_test_equal_rowcount", *extra]
    select, _ = _group_by(extra)
    group = "group by " + ", ".join(keys)
    join = "".join(f" and a.{c} = b.{c}" for c in extra)
    pairs = "".join(f"a.{c} as {c}_a, b.{c} as {c}_b, " for c in keys)
    first, second = ("count_our_model", "count_comparison_model") if fewer else ("count_a", "count_b")
    measure = "row_count_delta" if fewer else "diff_count"

    def sql(where: str | None) -> str:
        counts = (
            f"with a as (select {select}1 as id_dbtutils_test_equal_rowcount, count(*) as {first} "
            f"from {_model(where)} {group}), b as (select {select}1 as id_dbtutils_test_equal_rowcount, "
            f"count(*) as {second} from {compare} {group}), "
        )
        if fewer:
            body = (
                f"counts as (select {pairs}{first}, {second} from a full join b on "
                f"a.id_dbtutils_test_equal_rowcount = b.id_dbtutils_test_equal_rowcount{join}), "
                f"final as (select *, case when {first} > {second} then ({first} - {second}) "
                f"when {first} = {second} then 1 else 0 end as {measure} from counts) "
            )
        else:
            body = (
                f"final as (select {pairs}coalesce({first}, 0) as {first}, coalesce({second}, 0) as "
                f"{second}, abs(coalesce({first}, 0) - coalesce({second}, 0)) as {measure} from a full "
                f"join b on a.id_dbtutils_test_equal_rowcount = b.id_dbtutils_test_equal_rowcount{join}) "
            )
        if expand:
            return counts + body + f"select final.* from final, range(coalesce(final.{measure}, 0))"
        return counts + body + "select * from final"

    return _Test(sql=sql)


def _cardinality_equality(column: str, parent: str, field_name: str) -> _Test:
    def sql(where: str | None) -> str:
        return (
            f"with table_a as (select {column}, count(*) as num_rows from {_model(where)} "
            f"group by {column}), "
            f"table_b as (select {field_name}, count(*) as num_rows from {parent} group by {field_name}), "
            "except_a as (select * from table_a except select * from table_b), "
            "except_b as (select * from table_b except select * from table_a), "
            "unioned as (select * from except_a union all select * from except_b) select * from unioned"
        )

    return _Test(sql=sql)


def _sequential_values(column: str, args: dict[str, Any]) -> _Test:
    interval, datepart = args.get("interval", 1), args.get("datepart")
    previous = "previous_" + re.sub(r"[^a-z0-9_]+", "_", re.sub(r"[ -]+", "_", column.lower()))
    groups = [str(c) for c in (args.get("group_by_columns") or [])]
    select = ", ".join(groups) + ", " if groups else ""
    partition = "partition by " + ", ".join(groups) + " " if groups else ""
    if datepart:
        stamp = _CROSS_DB.type_timestamp()
        shifted = _CROSS_DB.dateadd(str(datepart), interval, previous)
        failing = f"not(cast({column} as {stamp}) = cast({shifted} as {stamp}))"
    else:
        failing = f"not({column} = {previous} + {interval})"

    def sql(where: str | None) -> str:
        return (
            f"with windowed as (select {select}{column}, lag({column}) over ({partition}order by {column}) "
            f"as {previous} from {_model(where)}), validation_errors as (select * from windowed where "
            f"{failing}) select * from validation_errors"
        )

    return _Test(sql=sql)


def _relationships_where(column: str, parent: str, field_name: str, args: dict[str, Any]) -> _Test:
    from_condition = args.get("from_condition", "1=1")
    to_condition = args.get("to_condition", "1=1")

    def sql(where: str | None) -> str:
        return (
            f"with left_table as (select {column} as id from {_model(where)} where {column} is not null "
            f"and {from_condition}), right_table as (select {field_name} as id from {parent} where "
            f"{field_name} is not null and {to_condition}), exceptions as (select left_table.id, "
            "right_table.id as right_id from left_table left join right_table on left_table.id = "
            "right_table.id where right_table.id is null) select * from exceptions"
        )

    return _Test(sql=sql)


def _composite_unique_constraint(columns: tuple[str, ...]) -> _Test:
    """A UNIQUE constraint on several columns: rows with a NULL in the key never clash."""
    keys = ", ".join(columns)
    filled = " and ".join(f"{c} is not null" for c in columns)
    return _Test(
        sql=lambda where: (
            "select * exclude (dbt_row_number) from (select *, row_number() over (partition by "
            f"{keys}) as dbt_row_number from {_model(where)} where {filled}) dbt_numbered "
            "where dbt_row_number > 1"
        )
    )


# --- parsing test entries ---------------------------------------------------------------------------


def _test_items(data: dict[str, Any]) -> list[tuple[Any, int]]:
    items: list[tuple[Any, int]] = []
    for key in _TEST_KEYS:
        found = data.get(key)
        if isinstance(found, list):
            lines = getattr(found, "item_lines", [getattr(data, "key_lines", {}).get(key, 1)] * len(found))
            items.extend(zip(found, lines, strict=True))
    return items


@dataclass
class _Entry:
    """One test entry as dbt reads it."""

    name: str
    args: dict[str, Any]
    config: dict[str, Any]
    given_name: str | None = None


def _parse_item(item: Any) -> _Entry:
    """The test name, arguments, config and given name of one entry, in any of dbt's spellings."""
    if isinstance(item, str):
        return _Entry(item, {}, {})
    if not isinstance(item, dict):
        raise _Skip(f"cannot read the test entry {item!r}")
    if "test_name" in item:
        name, args = str(item["test_name"]), {k: v for k, v in item.items() if k != "test_name"}
    elif len(item) == 1:
        [(name, args)] = item.items()
        args = dict(args or {})
    else:
        raise _Skip(f"cannot read the test entry {dict(item)!r}")
    given = args.pop("name", None)
    args = {**args, **(args.pop("arguments", None) or {})}
    config = dict(args.pop("config", None) or {})
    config.update({k: args.pop(k) for k in list(args) if k in _CONFIG_KEYS})
    return _Entry(str(name), args, config, str(given) if given else None)


def _dbt_test_name(test: str, target: str, args: dict[str, Any], *, source: bool) -> str:
    """The name dbt gives a generic test (``not_null_orders_id``, ``accepted_values_orders_status__a__b``)."""
    namespace, _, short = test.rpartition(".")
    name = ("source_" if source else "") + short
    if namespace:
        name = f"{namespace}_{name}"
    flat: list[str] = []
    for key in sorted(args):
        value = args[key]
        parts = (
            list(value.values()) if isinstance(value, dict) else value if isinstance(value, list) else [value]
        )
        flat.extend(str(part) for part in parts)
    return f"{name}_{target}_" + "__".join(re.sub(r"[^0-9a-zA-Z_]+", "_", part) for part in flat)


def _normal(condition: Any) -> str:
    return re.sub(r"\s+", "", str(condition)).lower()


def _severity(config: dict[str, Any]) -> str:
    return "warn" if str(config.get("severity", "error")).strip().lower() == "warn" else "error"


def _disabled(config: dict[str, Any]) -> bool:
    return str(config.get("enabled", True)).strip().lower() == "false"


# --- rendering -----------------------------------------------------------------------------------------


class _Resolver:
    """``ref()`` and ``source()`` as the project's compiler resolves them (through ``evaluate``),
    remembering the relations used, in order."""

    def __init__(self, evaluate: Evaluate, where: str, landed: Callable[[str, str], str | None]) -> None:
        self._evaluate = evaluate
        self._where = where
        self._landed = landed
        self.used: list[Relation] = []

    def _call(self, expression: str) -> Any:
        try:
            return self._evaluate(expression, self._where)
        except ProjectError as err:
            raise DbtError(_reason(err).removeprefix(f"cannot evaluate {expression!r}: "), err.hint) from None

    def ref(self, name: str, package: str | None) -> Relation:
        found = self._call(f"ref({package!r}, {name!r})" if package else f"ref({name!r})")
        self.used.append(found)
        return found

    def source(self, source: str, table: str) -> Relation:
        missing = self._landed(source, table)
        if missing is not None:  # asking the compiler would make the project's load fail
            raise DbtError(f'source("{source}", "{table}") reads {missing}, which nothing lands')
        found = self._call(f"source({source!r}, {table!r})")
        self.used.append(found)
        return found

    def columns(self, relation: Any) -> list[str]:
        if not isinstance(relation, Relation):
            raise DbtError(f"{relation!r} is not a relation: pass ref('…') or source('…', '…')")
        created = f"api.Relation.create(schema={relation.schema!r}, identifier={relation.identifier!r})"
        return [column.name for column in self._call(f"adapter.get_columns_in_relation({created})")]

    def relation(self, schema: str, identifier: str) -> Relation | None:
        found = self._call(f"adapter.get_relation(schema={schema!r}, identifier={identifier!r})")
        return found if isinstance(found, Relation) else None


class _Renderer:
    """The project's Jinja (its macros, and its ``{% test %}`` blocks as ``test_<name>`` macros) with
    the names dbt gives a test; ``ref()`` resolves as it does in models."""

    def __init__(self, project: DbtProject, resolver: Callable[[str], _Resolver]) -> None:
        self.project = project
        self.resolver = resolver
        self.target = read_target(project.root, project)
        self.jinja = Jinja()
        load_macros(self.jinja, project, tests=True)
        self._shared: dict[str, Any] | None = None

    def context(self, scope: Scope, resolver: Any) -> dict[str, Any]:
        context = build_context(self.jinja, self.project, self.target, scope, resolver)
        context.setdefault("should_store_failures", lambda: False)
        return context

    def _shared_context(self) -> dict[str, Any]:
        if self._shared is None:
            self._shared = self.context(Scope("test", "", "test"), self.resolver(""))
        return self._shared

    def value(self, value: Any, where: str, key: str = "") -> Any:
        """A test argument or config as dbt renders it: ``ref('x')`` and other calls evaluated, Jinja
        in strings rendered; lists and mappings item by item."""
        if isinstance(value, list):
            return [self.value(v, where) for v in value]
        if isinstance(value, dict):
            return {k: self.value(v, where) for k, v in value.items()}
        if not isinstance(value, str) or key == "column_name":
            return value
        if _LOOKS_LIKE_CALL.match(value):
            return self.jinja.evaluate(value.strip(), self._shared_context(), where=where)
        if "{{" in value or "{%" in value:
            return self.jinja.render_text(value, self._shared_context(), where=where)
        return value


_DBT_UTILS_TESTS = {
    "unique_combination_of_columns",
    "expression_is_true",
    "unique_where",
    "not_null_where",
    "equal_rowcount",
    "fewer_rows_than",
    "recency",
    "accepted_range",
    "not_null_proportion",
    "at_least_one",
    "not_constant",
    "not_empty_string",
    "not_accepted_values",
    "sequential_values",
    "cardinality_equality",
    "relationships_where",
}


def _has_builtin(namespace: str, test: str) -> bool:
    """Whether a test of dbt (``unique``…) or dbt_utils maps to a check that means the same."""
    if namespace == "dbt":
        return test in ("unique", "not_null", "accepted_values", "relationships")
    return test in _DBT_UTILS_TESTS


def _reason(err: ProjectError) -> str:
    """An error's message without the location it starts with."""
    return err.message.removeprefix(f"{err.location}: ") if err.location else err.message


def _sql_files(base: Path) -> list[Path]:
    return sorted(base.rglob("*.sql")) if base.is_dir() else []


def _needs_rendering(value: Any) -> bool:
    if isinstance(value, list):
        return any(_needs_rendering(v) for v in value)
    if isinstance(value, dict):
        return any(_needs_rendering(v) for v in value.values())
    return isinstance(value, str) and bool(_LOOKS_LIKE_CALL.match(value) or "{{" in value or "{%" in value)


# --- checks ----------------------------------------------------------------------------------------------


@dataclass
class _Target:
    """What a test entry tests: the asset, and dbt's name for the node (for test names)."""

    asset: str
    name: str
    source: bool = False
    relation: Relation = field(init=False)

    def __post_init__(self) -> None:
        schema, identifier = self.asset.split(".", 1)
        self.relation = Relation(schema, identifier)


class TestMapper:
    def __init__(
        self,
        project: DbtProject,
        evaluate: Evaluate,
        known: set[str] | None = None,
        sources: dict[tuple[str, str], SourceTable] | None = None,
    ) -> None:
        """``known`` holds the assets a check may read (built or landed; None: any), ``sources``
        the declared source tables, so that a test reading one nothing lands is not run."""
        self.project = project
        self.evaluate = evaluate
        self.known = known
        self.sources = sources or {}
        self._renderer: _Renderer | None = None
        self._model_files: dict[str, tuple[Path, tuple[str, ...]]] | None = None

    @property
    def renderer(self) -> _Renderer:
        if self._renderer is None:
            self._renderer = _Renderer(self.project, self.resolver)
        return self._renderer

    def resolver(self, where: str) -> _Resolver:
        return _Resolver(self.evaluate, where, self._unlanded)

    def _unlanded(self, source: str, table: str) -> str | None:
        found = self.sources.get((source, table))
        if found is None or self.known is None or found.asset in self.known:
            return None
        return found.asset

    def for_entry(
        self, data: dict[str, Any], asset: str, file: str, name: str = "", *, source: bool = False
    ) -> list[CheckSpec]:
        """Checks from an entry's own tests and its columns' tests. ``name`` is dbt's name for the
        node (``orders``; ``<source>_<table>`` for a source table), as test names carry it."""
        folder = Path(file).parent.parts
        defaults = merge_config(
            folder_config(self.project.configs.get("tests"), (self.project.name, *folder[1:])),
            folder_config(self.project.configs.get("data_tests"), (self.project.name, *folder[1:])),
        )
        defaults = {k: v for k, v in defaults.items() if k in _CONFIG_KEYS}
        target = _Target(asset, name or asset.split(".", 1)[1], source)
        checks: list[CheckSpec] = []
        for item, line in _test_items(data):
            checks.extend(self._checks(item, target, None, f"{file}:{line}", defaults))
        columns = data.get("columns")
        for column in columns if isinstance(columns, list) else []:
            if isinstance(column, dict) and column.get("name"):
                name_in_sql = str(column["name"])
                if column.get("quote") is True:
                    name_in_sql = '"' + name_in_sql.replace('"', '""') + '"'
                for item, line in _test_items(column):
                    checks.extend(self._checks(item, target, name_in_sql, f"{file}:{line}", defaults))
        return checks

    def _checks(
        self, item: Any, target: _Target, column: str | None, where: str, defaults: dict[str, Any]
    ) -> list[CheckSpec]:
        name = str(item) if isinstance(item, str) else "test"
        try:
            entry = _parse_item(item)
            name = entry.name
            own = entry.config
            if _needs_rendering(own):
                own = self._rendered(own, where)
            if _needs_rendering(defaults):
                defaults = self._rendered(defaults, where)
            config = {**defaults, **own}
            if _disabled(config):
                return []
            args = dict(entry.args)
            column = str(args.pop("column_name", None) or column or "") or None
            named = {**args, **({"column_name": column} if column else {})}
            check_name = entry.given_name or _dbt_test_name(name, target.name, named, source=target.source)
            if _needs_rendering(args):
                args = self._rendered(args, where)
            custom = self._custom(name, args, column, target, {**defaults, **own}, where)
            if custom is None:
                test = self._mapped(name, args, column, config)
            else:
                test, captured = custom
                config = {**defaults, **captured, **own}
                config.pop("where", None)  # the rendered test already reads only those rows
            return self.emit(test, target.asset, config, check_name, where)
        except _Skip as skip:
            log.warning("%s: test not run: %s", where, skip)
            return []

    def _rendered(self, values: dict[str, Any], where: str) -> dict[str, Any]:
        try:
            return {k: self.renderer.value(v, where, k) for k, v in values.items()}
        except ProjectError as err:
            raise _Skip(_reason(err)) from None

    # --- one test as checks ---------------------------------------------------------------------------

    def emit(self, test: _Test, asset: str, config: dict[str, Any], name: str, where: str) -> list[CheckSpec]:
        """The checks that mean what dbt does with ``test`` under ``config``.

        dbt fails a test (severity error) when ``fail_calc`` over its failing rows meets ``error_if``,
        else warns when it meets ``warn_if``; with severity warn only ``warn_if`` counts."""
        restrict = str(config["where"]) if config.get("where") not in (None, "") else None
        fail_calc = str(config.get("fail_calc") or "count(*)")
        counted = _normal(fail_calc) == "count(*)"
        error_if = str(config.get("error_if") or "!= 0")
        warn_if = str(config.get("warn_if") or "!= 0")

        def any_failure(condition: str) -> bool:
            return _normal(condition) in ("!=0", "<>0") or (counted and _normal(condition) == ">0")

        severity = _severity(config)
        wanted: list[tuple[str, str, str | None]] = (
            [("warn", warn_if, None)] if severity == "warn" else [("error", error_if, None)]
        )
        if severity == "error" and not any_failure(error_if):
            wanted.append(("warn", warn_if, error_if))
        if len(wanted) == 1 and counted and any_failure(wanted[0][1]):
            return self._plain(test, asset, restrict, name, severity, where)
        failing = test.dbt_rows(restrict).strip().rstrip(";")
        if config.get("limit") is not None:
            if not str(config["limit"]).strip().isdigit():
                raise _Skip(f"limit must be a whole number, not {config['limit']!r}")
            failing = f"select * from (\n{failing}\n) dbt_limited limit {int(config['limit'])}"
        measured = f"(select {fail_calc} from dbt_test)"
        checks = []
        for level, condition, unless in wanted:
            holds = f"{measured} {condition}"
            if unless is not None:
                holds = f"not coalesce({measured} {unless}, false) and {holds}"
            sql = f"with dbt_test as (\n{failing}\n)\nselect * from dbt_test where {holds}"
            label = name if unless is None else f"{name} (warn_if {warn_if})"
            checks.append(_query(asset, sql, label, level, where))
        return checks

    def _plain(
        self, test: _Test, asset: str, restrict: str | None, name: str, severity: str, where: str
    ) -> list[CheckSpec]:
        """The test as it is: built-in checks, a row expression, or its failing-rows query."""
        if restrict is None and test.builtins:
            return [
                CheckSpec(kind, asset, columns, params, severity, where)  # type: ignore[arg-type]
                for kind, columns, params in test.builtins
            ]
        if test.row is not None:
            condition = f"({test.row}) is not true"
            if restrict is not None:
                condition = f"({restrict}) is not true or {condition}"
            found = _expression(asset, condition, name, severity, where)
            if found is not None:
                return [found]
        return [_query(asset, test.failing_rows(restrict), name, severity, where)]

    # --- generic tests ---------------------------------------------------------------------------------

    def _mapped(self, name: str, args: dict[str, Any], column: str | None, config: dict[str, Any]) -> _Test:
        namespace, _, test = name.rpartition(".")
        if namespace in ("", "dbt") and test in ("unique", "not_null", "accepted_values", "relationships"):
            plain = _plain_column(column, name)
            if test == "unique":
                return _unique((plain,))
            if test == "not_null":
                return _not_null(plain)
            if test == "accepted_values":
                quote = args.get("quote", True) is not False
                return _accepted_values(plain, list(args.get("values") or []), quote)
            parent, field_name = self._parent(args, "to", "field", name)
            return _relationships(plain, parent, field_name)
        if namespace == "dbt_utils":
            return self._dbt_utils(test, args, column, config)
        if namespace and namespace not in self.renderer.jinja.package_macros and namespace != "dbt":
            raise _Skip(
                f'"{name}" is a test of the package {namespace}, which is not in dbt_packages/ '
                "(run `dbt deps`, or check packages.yml)"
            )
        raise _Skip(
            f'"{name}" has no equivalent Gristmill check and no test macro in the project or its packages'
        )

    def _dbt_utils(
        self, test: str, args: dict[str, Any], column: str | None, config: dict[str, Any]
    ) -> _Test:
        name = f"dbt_utils.{test}"
        if test == "unique_combination_of_columns":
            columns = tuple(str(c) for c in args.get("combination_of_columns") or [])
            if not columns or not all(_COLUMN.match(c) for c in columns):
                raise _Skip(f"{name} needs plain column names in combination_of_columns")
            return _unique(columns)
        if test == "expression_is_true":
            if args.get("condition"):  # dbt_utils before 0.8: a where clause as an argument
                config["where"] = (
                    f"({config['where']}) and ({args['condition']})"
                    if config.get("where")
                    else args["condition"]
                )
            return _expression_is_true(column, args)
        if test in ("unique_where", "not_null_where"):  # dbt_utils before 1.0: where is a config now
            plain = _plain_column(column, name)
            return _unique((plain,)) if test == "unique_where" else _not_null(plain)
        if test in ("equal_rowcount", "fewer_rows_than"):
            compare = self._relation(args.get("compare_model"), "compare_model", name)
            return _compare_counts(
                compare, args, fewer=test == "fewer_rows_than", expand=not config.get("fail_calc")
            )
        if test == "recency":
            return _recency(args)
        column = _needs_column(column, name)
        if test == "accepted_range":
            if args.get("min_value") is None and args.get("max_value") is None:
                raise _Skip(f"{name} needs min_value, max_value or both")
            return _accepted_range(column, args)
        if test == "not_null_proportion":
            return _not_null_proportion(column, args)
        if test == "at_least_one":
            return _at_least_one(column, args)
        if test == "not_constant":
            return _not_constant(column, args)
        if test == "not_empty_string":
            return _not_empty_string(column, args)
        if test == "not_accepted_values":
            return _not_accepted_values(column, args)
        if test == "sequential_values":
            return _sequential_values(column, args)
        if test == "cardinality_equality":
            parent, field_name = self._parent(args, "to", "field", name)
            return _cardinality_equality(column, parent, field_name)
        if test == "relationships_where":
            parent, field_name = self._parent(args, "to", "field", name)
            return _relationships_where(column, parent, field_name, args)
        raise _Skip(f'"{name}" has no equivalent Gristmill check')

    def _relation(self, value: Any, key: str, test: str) -> str:
        if not isinstance(value, Relation) or value.is_cte:
            raise _Skip(
                f"{test} needs {key}: ref('…') or source('…', '…') naming a built table, got {value!r}"
            )
        return value.asset

    def _parent(self, args: dict[str, Any], to: str, field_key: str, test: str) -> tuple[str, str]:
        parent = args.get(to)
        field_name = str(args.get(field_key, ""))
        if not isinstance(parent, Relation) or parent.is_cte or not _COLUMN.match(field_name):
            raise _Skip(f"{test} needs {to}: ref('…') and a {field_key}, got {args!r}")
        return parent.asset, field_name

    def _custom(
        self,
        name: str,
        args: dict[str, Any],
        column: str | None,
        target: _Target,
        config: dict[str, Any],
        where: str,
    ) -> tuple[_Test, dict[str, Any]] | None:
        """A test macro of the project (``{% test name %}`` or ``test_<name>``) rendered as dbt
        renders it: ``model`` is the asset (or its rows meeting ``where``), then the arguments.
        Returns the test and the configs its ``config()`` calls set; None if it is not one."""
        definition = self._test_macro(name)
        if definition is None:
            return None
        macro = definition.name
        restrict = config.get("where")
        model: Any = target.relation
        if restrict:
            model = f"(select * from {target.relation} where {restrict}) dbt_subquery"
        scope = Scope(name, where.split(":")[0], "test", config=dict(config))
        context = self.renderer.context(scope, self.resolver(where))
        kwargs = {**args, "model": model, **({"column_name": column} if column else {})}
        called = macro if definition.package is None else f"{definition.package}.{macro}"
        # Called from a template, as dbt does, so that an error names the macro's own line.
        call = self.renderer.jinja.env.from_string("{{ " + called + "(**dbt_generic_test_kwargs) }}")
        try:
            sql = call.render({**context, "dbt_generic_test_kwargs": kwargs}).strip().rstrip(";")
        except Exception as err:  # the project's macro: report where it went wrong, and go on
            error = self.renderer.jinja.error(err, definition.file, context)
            raise _Skip(f"{name} could not be rendered: {error.message}") from None
        if not sql:
            raise _Skip(f"{name} rendered no SQL ({definition.file}:{definition.line})")
        captured = {k: v for k, v in scope.captured.items() if k in _CONFIG_KEYS and k != "where"}
        return _Test(sql=lambda _: sql), captured

    def _test_macro(self, name: str) -> MacroDef | None:
        """The generic test ``name`` names: ``test_<name>`` in the root project, then (bare) in the
        installed packages by name, or in the package ``<package>.<name>`` names. dbt_utils' tests
        with a built-in equivalent keep it (a package copy is used only for the others)."""
        namespace, _, test = name.rpartition(".")
        macro = f"test_{test}"
        jinja = self.renderer.jinja
        if namespace in ("", self.project.name) and macro in jinja.macros:
            return jinja.macros[macro]
        if namespace in ("", "dbt") and _has_builtin("dbt", test):
            return None
        if namespace == "dbt_utils" and _has_builtin(namespace, test):
            return None
        packages = [namespace] if namespace not in ("", self.project.name) else list(jinja.package_macros)
        for package in packages:
            found = jinja.package_macros.get(package, {}).get(macro)
            if found is not None:
                return found
        return None

    # --- contracts -------------------------------------------------------------------------------------

    def contract_checks(self, entry: Entry, asset: str) -> list[CheckSpec]:
        """An enforced contract: a ``schema`` check of the columns and their ``data_type``, exactly,
        and a check per constraint (dbt applies constraints to tables, not views)."""
        config = self._model_config(entry)
        contract = config.get("contract")
        if not (isinstance(contract, dict) and str(contract.get("enforced")).lower() == "true"):
            return []
        where = f"{entry.file}:{entry.line}"
        expect = {
            str(c["name"]): (str(c["data_type"]) if c.get("data_type") else None) for c in entry.columns
        }
        if not expect:
            log.warning("%s: contract of %s not checked: it lists no columns", where, entry.name)
            return []
        checks = [CheckSpec("schema", asset, (), {"expect": expect, "exact": True}, "error", where)]
        constraints: list[tuple[dict[str, Any], tuple[str, ...], str]] = []
        for column in entry.columns:
            constraints.extend(
                (c, (str(column["name"]),), f"{entry.file}:{line}")
                for c, line in _listed(column, "constraints", getattr(column, "line", entry.line))
            )
        for constraint, number in _listed(entry.data, "constraints", entry.line):
            listed = constraint.get("columns")
            names = tuple(str(c) for c in ([listed] if isinstance(listed, str) else listed or []))
            constraints.append((constraint, names, f"{entry.file}:{number}"))
        if not constraints:
            return checks
        relation = self.evaluate(f"ref({entry.name!r})", where)
        if isinstance(relation, Relation) and relation.is_view:
            log.warning(
                "%s: constraints of %s not checked: dbt does not apply constraints to a view",
                where,
                entry.name,
            )
            return checks
        for constraint, columns, located in constraints:
            try:
                checks.extend(self._constraint(constraint, columns, asset, located))
            except _Skip as skip:
                log.warning("%s: constraint not checked: %s", located, skip)
        return checks

    def _constraint(
        self, constraint: dict[str, Any], columns: tuple[str, ...], asset: str, where: str
    ) -> list[CheckSpec]:
        kind = str(constraint.get("type", "")).lower()
        if kind in ("not_null", "unique", "primary_key", "foreign_key") and not columns:
            raise _Skip(f"a {kind} constraint needs columns")
        if kind in ("not_null", "unique", "primary_key", "foreign_key") and not all(
            _COLUMN.match(c) for c in columns
        ):
            raise _Skip(f"{kind} needs plain column names, not {list(columns)}")
        if kind == "not_null":
            return [CheckSpec("not_null", asset, (c,), {}, "error", where) for c in columns]
        if kind == "unique":
            if len(columns) == 1:
                return [CheckSpec("unique", asset, columns, {}, "error", where)]
            name = f"unique({', '.join(columns)})"
            return [
                _query(asset, _composite_unique_constraint(columns).failing_rows(None), name, "error", where)
            ]
        if kind == "primary_key":
            return [
                *(CheckSpec("not_null", asset, (c,), {}, "error", where) for c in columns),
                CheckSpec("unique", asset, columns, {}, "error", where),
            ]
        if kind == "check":
            expression = constraint.get("expression")
            if not isinstance(expression, str) or not expression.strip():
                raise _Skip("a check constraint needs an expression")
            name = str(constraint.get("name") or f"check({expression})")
            found = _expression(asset, f"({expression}) is not false", name, "error", where)
            if found is None:
                found = _query(asset, f"select * from this where not ({expression})", name, "error", where)
            return [found]
        if kind == "foreign_key":
            if len(columns) != 1:
                raise _Skip("a foreign key over several columns has no equivalent check")
            parent = self._foreign_parent(constraint, where)
            return [CheckSpec("relationships", asset, columns, {"to": parent}, "error", where)]
        raise _Skip(f'a "{kind or "custom"}" constraint has no equivalent check')

    def _foreign_parent(self, constraint: dict[str, Any], where: str) -> str:
        """``<schema>.<asset>.<column>`` a foreign key points at: ``to: ref('x')`` with one of
        ``to_columns``, or ``expression: schema.table (column)``."""
        if constraint.get("to"):
            relation = self.renderer.value(str(constraint["to"]), where)
            to_columns = constraint.get("to_columns") or []
            if not isinstance(relation, Relation) or relation.is_cte or len(to_columns) != 1:
                raise _Skip("a foreign key needs to: ref('…') and one of to_columns")
            return f"{relation.asset}.{to_columns[0]}"
        match = _FK_EXPRESSION.match(str(constraint.get("expression") or ""))
        if match is None or match.group("table").replace('"', "").count(".") != 1:
            raise _Skip(
                "a foreign key needs to: ref('…') and to_columns, or expression: schema.table (column)"
            )
        return f"{match.group('table').replace(chr(34), '')}.{match.group('column').replace(chr(34), '')}"

    def _model_config(self, entry: Entry) -> dict[str, Any]:
        """A model's configs: dbt_project.yml by folder, the property file, then its ``config()``."""
        if self._model_files is None:
            self._model_files = {}
            for folder in self.project.model_paths:
                base = self.project.root / folder
                for path in _sql_files(base):
                    fqn = (self.project.name, *path.relative_to(base).parts[:-1], path.stem)
                    self._model_files.setdefault(path.stem, (path, fqn))
        if entry.name not in self._model_files:
            return entry.config
        path, fqn = self._model_files[entry.name]
        config = merge_config(folder_config(self.project.configs.get("models"), fqn), entry.config)
        if "contract" in path.read_text(encoding="utf-8"):
            config = merge_config(config, self._called_config(path, config))
        return config

    def _called_config(self, path: Path, config: dict[str, Any]) -> dict[str, Any]:
        file = path.relative_to(self.project.root).as_posix()
        jinja = self.renderer.jinja
        jinja.add(f"{file}#config", file, path.read_text(encoding="utf-8"))
        scope = Scope(path.stem, file, "model", config=dict(config), executing=False)
        context = build_context(
            jinja, self.project, self.renderer.target, scope, Collecting(self.renderer.target)
        )
        try:
            jinja.render(f"{file}#config", context, file=file)
        except ProjectError:
            return {}  # the model's own rendering reports it
        return scope.captured


def _listed(data: Any, key: str, line: int) -> list[tuple[dict[str, Any], int]]:
    items = data.get(key) if isinstance(data, dict) else None
    if not isinstance(items, list):
        return []
    lines = getattr(items, "item_lines", [line] * len(items))
    return [(item, n) for item, n in zip(items, lines, strict=True) if isinstance(item, dict)]


def _expression(asset: str, sql: str, name: str, severity: str, where: str) -> CheckSpec | None:
    """An ``expression`` check (fused into the table's scan), or None when ``sql`` is no row condition."""
    try:
        condition = parse_condition(sql)
    except ValueError:
        return None
    columns = tuple(dict.fromkeys(c.name for c in condition.find_all(exp.Column) if not c.table))
    return CheckSpec("expression", asset, columns, {"sql": sql, "name": name}, severity, where)  # type: ignore[arg-type]


def _query(asset: str, sql: str, name: str, severity: str, where: str) -> CheckSpec:
    try:
        parse_failing_rows_query(sql)
    except ValueError as err:
        raise _Skip(f"{name}: its SQL cannot be read: {err}") from None
    return CheckSpec("query", asset, (), {"sql": sql, "name": name}, severity, where)  # type: ignore[arg-type]


# --- the project -----------------------------------------------------------------------------------------


def dbt_checks(
    project: DbtProject,
    properties: Properties,
    assets: dict[tuple[str, str], str],
    landed: set[str],
    evaluate: Evaluate,
) -> list[CheckSpec]:
    """Checks from every property file, model contract and singular test. ``assets`` maps
    (models|seeds|snapshots, name) to the asset a node builds; ``landed`` holds the assets sources
    land (source tests need one)."""
    known = {*assets.values(), *landed}
    mapper = TestMapper(project, evaluate, known, properties.sources)
    checks: list[CheckSpec] = []
    for (kind, name), entry in properties.entries.items():
        asset = assets.get((kind, name))
        if asset is None:
            if _test_items(entry.data) or any(_test_items(c) for c in entry.columns):
                log.warning("%s:%s: tests of %s not run: no such %s", entry.file, entry.line, name, kind[:-1])
            continue
        checks.extend(mapper.for_entry(entry.data, asset, entry.file, name))
        if kind == "models":
            checks.extend(mapper.contract_checks(entry, asset))
    for table in properties.sources.values():
        checks.extend(_source_checks(mapper, table, landed))
    checks.extend(_singular_checks(mapper, known))
    return _placed(checks, mapper, known)


def _placed(checks: list[CheckSpec], mapper: TestMapper, known: set[str]) -> list[CheckSpec]:
    """Checks that read other assets, each run where it can be: one reading an asset built from
    its own runs when the last asset it reads is built, as dbt runs a test once every node it
    reads is built (checked with its own asset, the run would have to loop)."""
    lineage: _Lineage | None = None
    schemas = {asset.split(".", 1)[0] for asset in known}
    placed: list[CheckSpec] = []
    for check in checks:
        reads = _reads(check)
        strangers = [r for r in reads if r not in known and r.split(".", 1)[0] in schemas]
        if strangers:
            log.warning(
                "%s: test not run: %s reads %s, which no model, seed or source builds",
                check.location,
                check.name,
                strangers[0],
            )
            continue
        reads = [r for r in reads if r in known and r != check.asset]
        if not reads:
            placed.append(check)
            continue
        lineage = lineage or _Lineage(mapper)
        if not any(lineage.built_from(r, check.asset) for r in reads):
            placed.append(check)
            continue
        everything = [check.asset, *reads]
        last = next(c for c in reads if not any(lineage.built_from(o, c) for o in everything if o != c))
        placed.append(_moved(check, last))
    return placed


def _reads(check: CheckSpec) -> list[str]:
    if check.kind == "relationships":
        return [str(check.params["to"]).rsplit(".", 1)[0]]
    return list(query_reads(check))


def _moved(check: CheckSpec, asset: str) -> CheckSpec:
    """``check`` as a query check on ``asset``, reading its own asset by name."""
    if check.kind == "relationships":
        parent, field_name = str(check.params["to"]).rsplit(".", 1)
        sql = _relationships(check.columns[0], parent, field_name).failing_rows(None)
    else:
        sql = str(check.params["sql"])
    query = parse_failing_rows_query(sql)
    ctes = {cte.alias for cte in query.find_all(exp.CTE)}
    for table in list(query.find_all(exp.Table)):
        if not table.db and not table.catalog and table.name == "this" and "this" not in ctes:
            table.replace(exp.to_table(check.asset, dialect="duckdb").as_(table.alias or "this"))
    name = str(check.params.get("name") or check.name)
    params = {"sql": query.sql(dialect="duckdb"), "name": name}
    return CheckSpec("query", asset, (), params, check.severity, check.location)


class _Lineage:
    """The assets each model reads (through ephemeral models too), from rendering the models
    again with a resolver that records ``ref()`` and ``source()``."""

    def __init__(self, mapper: TestMapper) -> None:
        self._reads: dict[str, set[str]] = {}
        project, renderer = mapper.project, mapper.renderer
        for folder in project.model_paths:
            for path in _sql_files(project.root / folder):
                file = path.relative_to(project.root).as_posix()
                try:
                    relation = mapper.evaluate(f"ref({path.stem!r})", file)
                except ProjectError:
                    continue  # a disabled model
                resolver = mapper.resolver(file)
                scope = Scope(path.stem, file, "model", None if relation.is_cte else relation)
                template = f"{file}#lineage"
                try:
                    renderer.jinja.add(template, file, path.read_text(encoding="utf-8"))
                    renderer.jinja.render(template, renderer.context(scope, resolver), file=file)
                except ProjectError:
                    pass  # the model's own rendering reports it
                self._reads[relation.asset] = {r.asset for r in resolver.used}

    def built_from(self, asset: str, ancestor: str) -> bool:
        """Whether ``asset`` reads ``ancestor``, directly or through other models."""
        seen: set[str] = set()
        stack = list(self._reads.get(asset, ()))
        while stack:
            current = stack.pop()
            if current == ancestor:
                return True
            if current not in seen:
                seen.add(current)
                stack.extend(self._reads.get(current, ()))
        return False


def _source_checks(mapper: TestMapper, table: SourceTable, landed: set[str]) -> list[CheckSpec]:
    if not (_test_items(table.data) or any(_test_items(c) for c in _columns(table.data))):
        return []
    if table.asset not in landed:
        log.warning("%s: tests of source %s not run: nothing lands %s", table.where, table.name, table.asset)
        return []
    return mapper.for_entry(table.data, table.asset, table.file, f"{table.source}_{table.name}", source=True)


def _columns(data: dict[str, Any]) -> Iterable[dict[str, Any]]:
    columns = data.get("columns")
    return [c for c in columns if isinstance(c, dict)] if isinstance(columns, list) else []


def _singular_checks(mapper: TestMapper, known: set[str]) -> list[CheckSpec]:
    """Each ``tests/**/*.sql`` that is not a ``{% test %}`` definition (nor a unit-test fixture),
    rendered like a model, as a query check on the first asset it refs."""
    project = mapper.project
    checks: list[CheckSpec] = []
    for folder in project.test_paths:
        base = project.root / folder
        for path in _sql_files(base):
            relative = path.relative_to(base)
            if relative.parts[0] == "fixtures":
                continue
            text = path.read_text(encoding="utf-8")
            if re.search(r"{%-?\s*test\s", text):
                continue  # a generic test's definition; its uses are checked where they are
            fqn = (project.name, *relative.parts[:-1], path.stem)
            defaults = merge_config(
                folder_config(project.configs.get("tests"), fqn),
                folder_config(project.configs.get("data_tests"), fqn),
            )
            checks.extend(
                _singular(mapper, path, text, {k: v for k, v in defaults.items() if k in _CONFIG_KEYS}, known)
            )
    return checks


def _singular(
    mapper: TestMapper, path: Path, text: str, defaults: dict[str, Any], known: set[str]
) -> list[CheckSpec]:
    project = mapper.project
    file = path.relative_to(project.root).as_posix()
    where = f"{file}:1"
    renderer = mapper.renderer
    scope = Scope(path.stem, file, "test", config=dict(defaults))
    resolver = mapper.resolver(file)
    try:
        renderer.jinja.add(file, file, text)
        sql = renderer.jinja.render(file, renderer.context(scope, resolver), file=file)
    except ProjectError as err:
        log.warning("%s: singular test not run: %s", err.location or file, _reason(err))
        return []
    config = {**defaults, **{k: v for k, v in scope.captured.items() if k in _CONFIG_KEYS}}
    if _needs_rendering(config):
        try:
            config = {k: renderer.value(v, where, k) for k, v in config.items()}
        except ProjectError as err:
            log.warning("%s: singular test not run: %s", where, _reason(err))
            return []
    if _disabled(config):
        return []
    asset = next((r.asset for r in resolver.used if not r.is_cte and r.asset in known), None)
    if asset is None:
        log.warning("%s: singular test not run: it refs no model, seed or landed source to check", where)
        return []
    config.pop("where", None)  # dbt applies where to generic tests' models only
    test = _Test(sql=lambda _: sql.strip().rstrip(";").strip())
    try:
        return mapper.emit(test, asset, config, path.stem, where)
    except _Skip as skip:
        log.warning("%s: singular test not run: %s", where, skip)
        return []
