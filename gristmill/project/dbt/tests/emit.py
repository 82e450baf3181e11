"""One test as the checks that mean what dbt does with it under its configs.

dbt fails a test (severity error) when ``fail_calc`` over its failing rows meets ``error_if``,
else warns when it meets ``warn_if``; with severity warn only ``warn_if`` counts. A test that
counts its rows and fails on any becomes a built-in check, an ``expression`` check (sharing the
table's scan) or a ``query`` check of its failing rows; otherwise a query check returns dbt's
rows only when dbt's condition on them holds."""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from gristmill.project.checks import parse_condition, parse_failing_rows_query
from gristmill.project.dbt.tests.entries import normal, severity
from gristmill.project.dbt.tests.query import (
    Skip,
    TestQuery,
    is_not_true,
    select_from,
    text,
    user_sql,
    with_ctes,
)
from gristmill.project.specs import CheckSpec


def emit(test: TestQuery, asset: str, config: dict[str, Any], name: str, where: str) -> list[CheckSpec]:
    """The checks that mean what dbt does with ``test`` under ``config``."""
    restrict = str(config["where"]) if config.get("where") not in (None, "") else None
    fail_calc = str(config.get("fail_calc") or "count(*)")
    counted = normal(fail_calc) == "count(*)"
    error_if = str(config.get("error_if") or "!= 0")
    warn_if = str(config.get("warn_if") or "!= 0")

    def any_failure(condition: str) -> bool:
        return normal(condition) in ("!=0", "<>0") or (counted and normal(condition) == ">0")

    level = severity(config)
    wanted: list[tuple[str, str, str | None]] = (
        [("warn", warn_if, None)] if level == "warn" else [("error", error_if, None)]
    )
    if level == "error" and not any_failure(error_if):
        wanted.append(("warn", warn_if, error_if))
    if len(wanted) == 1 and counted and any_failure(wanted[0][1]):
        return plain(test, asset, restrict, name, level, where)
    failing = test.dbt_rows(restrict)
    if config.get("limit") is not None:
        if not str(config["limit"]).strip().isdigit():
            raise Skip(f"limit must be a whole number, not {config['limit']!r}")
        failing = select_from(failing.subquery("dbt_limited")).limit(int(config["limit"]))
    measured = exp.select(user_sql(fail_calc)).from_("dbt_test").subquery()
    checks = []
    for check_level, condition, unless in wanted:
        holds = _compared(measured, condition)
        if unless is not None:
            otherwise = exp.func("coalesce", _compared(measured, unless), exp.false())
            holds = exp.and_(exp.not_(otherwise), holds)
        sql = with_ctes([("dbt_test", failing)], select_from("dbt_test").where(holds))
        label = name if unless is None else f"{name} (warn_if {warn_if})"
        checks.append(query_check(asset, sql, label, check_level, where))
    return checks


def _compared(measured: exp.Expr, condition: str) -> exp.Expr:
    """``measured`` against dbt's ``error_if``/``warn_if`` condition (``>10``, ``!= 0``)."""
    placeholder = "dbt_measured"
    tree = user_sql(" ".join((placeholder, condition)))  # the user's condition, completed to parse

    def put(node: exp.Expr) -> exp.Expr:
        return measured.copy() if isinstance(node, exp.Column) and node.name == placeholder else node

    return tree.transform(put)


def plain(
    test: TestQuery, asset: str, restrict: str | None, name: str, level: str, where: str
) -> list[CheckSpec]:
    """The test as it is: built-in checks, a row expression, or its failing-rows query."""
    if restrict is None and test.builtins:
        return [
            CheckSpec(kind, asset, columns, params, level, where)  # type: ignore[arg-type]
            for kind, columns, params in test.builtins
        ]
    if test.row is not None:
        condition = is_not_true(test.row)
        if restrict is not None:
            condition = exp.or_(is_not_true(user_sql(restrict)), condition)
        found = expression_check(asset, condition, name, level, where)
        if found is not None:
            return [found]
    if test.written is not None:
        return [query_check(asset, test.written, name, level, where)]
    return [query_check(asset, test.failing_rows(restrict), name, level, where)]


def expression_check(asset: str, sql: exp.Expr | str, name: str, level: str, where: str) -> CheckSpec | None:
    """An ``expression`` check (fused into the table's scan), or None when ``sql`` is no row condition."""
    written = sql if isinstance(sql, str) else text(sql)
    try:
        condition = parse_condition(written)
    except ValueError:
        return None
    columns = tuple(dict.fromkeys(c.name for c in condition.find_all(exp.Column) if not c.table))
    params = {"sql": written, "name": name}
    return CheckSpec("expression", asset, columns, params, level, where)  # type: ignore[arg-type]


def query_check(asset: str, sql: exp.Query | str, name: str, level: str, where: str) -> CheckSpec:
    """A ``query`` check; ``sql`` as text is the user's own SQL, kept as written."""
    written = sql if isinstance(sql, str) else text(sql)
    try:
        parse_failing_rows_query(written)
    except ValueError as err:
        raise Skip(f"{name}: its SQL cannot be read: {err}") from None
    return CheckSpec("query", asset, (), {"sql": written, "name": name}, level, where)  # type: ignore[arg-type]
