"""dbt_utils' generic tests that judge single rows or return dbt_utils' own failing rows, built as
the queries dbt_utils writes (their columns, CTE names and counts), so a check fails when dbt does."""

from __future__ import annotations

import re
from typing import Any

from sqlglot import exp

from gristmill.project.dbt.crossdb import CrossDb
from gristmill.project.dbt.jinja import DbtError
from gristmill.project.dbt.tests.generic import bare, not_null_test
from gristmill.project.dbt.tests.query import (
    Skip,
    TestQuery,
    columns,
    count_star,
    is_null,
    literal,
    not_null,
    select_from,
    table,
    tested,
    user_sql,
    with_ctes,
)
from gristmill.project.dialect import PROJECT_DIALECT

_CROSS_DB = CrossDb()
_ONE, _ZERO = exp.Literal.number(1), exp.Literal.number(0)


def _grouped(query: exp.Select, groups: list[exp.Expr]) -> exp.Select:
    return query.group_by(*(g.copy() for g in groups)) if groups else query


def _groups(args: dict[str, Any], leave_out: str | None = None) -> list[exp.Expr]:
    """dbt_utils' ``group_by_columns``."""
    return columns(c for c in (args.get("group_by_columns") or []) if c != leave_out)


def _value(value: Any) -> exp.Expr:
    """A bound or step as the test's YAML gives it, written into the SQL as it is."""
    return literal(value, quote=False)


def accepted_range(column: str, args: dict[str, Any]) -> TestQuery:
    low, high = args.get("min_value"), args.get("max_value")
    inclusive = args.get("inclusive", True) is not False
    value = user_sql(column)
    parts: list[exp.Expr] = [exp.EQ(this=_ONE.copy(), expression=exp.Literal.number(2))]
    if low is not None:
        above = exp.GTE if inclusive else exp.GT
        parts.append(exp.not_(above(this=value.copy(), expression=_value(low))))
    if high is not None:
        below = exp.LTE if inclusive else exp.LT
        parts.append(exp.not_(below(this=value.copy(), expression=_value(high))))
    row = exp.or_(*parts)
    numbers = [v for v in (low, high) if v is not None]
    name = bare(column)
    if name and numbers and all(isinstance(v, int | float) and not isinstance(v, bool) for v in numbers):
        params: dict[str, Any] = {k: v for k, v in (("min", low), ("max", high)) if v is not None}
        if not inclusive:
            params["exclusive"] = True
        return TestQuery(builtins=(("range", (name,), params),), row=row)
    return TestQuery(row=row)


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def not_null_proportion(column: str, args: dict[str, Any]) -> TestQuery:
    at_least = args.get("at_least", args.get("arg"))
    at_most = args.get("at_most", args.get("arg", 1))
    if at_least is None:
        raise Skip("dbt_utils.not_null_proportion needs at_least")
    groups = _groups(args)
    name = bare(column)
    if name and _number(at_least) >= 1 and _number(at_most) >= 1 and not groups:
        return not_null_test(name)  # a proportion of 1 is no NULL at all
    value = user_sql(column)

    def sql(where: str | None) -> exp.Query:
        filled = exp.Sum(this=exp.case().when(is_null(value), _ZERO.copy()).else_(_ONE.copy()))
        share = exp.Div(this=filled, expression=exp.cast(count_star(), _CROSS_DB.type_numeric()))
        validation = select_from(tested(where), *groups, exp.alias_(share, "not_null_proportion"))
        proportion = exp.column("not_null_proportion")
        outside = exp.or_(
            exp.LT(this=proportion.copy(), expression=_value(at_least)),
            exp.GT(this=proportion.copy(), expression=_value(at_most)),
        )
        errors = select_from("validation", *(g.copy() for g in groups), proportion).where(outside)
        return with_ctes(
            [("validation", _grouped(validation, groups)), ("validation_errors", errors)],
            select_from("validation_errors"),
        )

    return TestQuery(sql=sql)


def at_least_one(column: str, args: dict[str, Any]) -> TestQuery:
    groups = _groups(args, leave_out=column)
    value = user_sql(column)

    def sql(where: str | None) -> exp.Query:
        pruned = select_from(tested(where), *groups, value.copy()).where(not_null(value)).limit(1)
        counted = exp.Count(this=value.copy())
        filler = select_from(
            pruned.subquery("pruned_rows"), *(g.copy() for g in groups), exp.alias_(counted, "filler_column")
        )
        filler = _grouped(filler, groups)
        filler = filler.having(exp.EQ(this=counted.copy(), expression=_ZERO.copy()))
        return select_from(filler.subquery("validation_errors"))

    return TestQuery(sql=sql)


def not_constant(column: str, args: dict[str, Any]) -> TestQuery:
    groups = _groups(args)
    distinct = exp.Count(this=exp.Distinct(expressions=[user_sql(column)]))

    def sql(where: str | None) -> exp.Query:
        found = select_from(tested(where), *groups, exp.alias_(distinct.copy(), "filler_column"))
        return _grouped(found, groups).having(exp.EQ(this=distinct.copy(), expression=_ONE.copy()))

    return TestQuery(sql=sql)


def not_empty_string(column: str, args: dict[str, Any]) -> TestQuery:
    value = user_sql(column)
    empty = exp.Literal.string("")
    if str(args.get("trim_whitespace", True)).lower() in ("false", "0"):
        return TestQuery(row=exp.EQ(this=value, expression=empty))
    chr_ = [exp.func("chr", exp.Literal.number(n), dialect=PROJECT_DIALECT) for n in (9, 10, 13)]
    whitespace = exp.DPipe(this=exp.DPipe(this=chr_[0], expression=chr_[1]), expression=chr_[2])
    spaces = exp.Literal.string("   ")
    translated = exp.func("translate", value, whitespace, spaces, dialect=PROJECT_DIALECT)
    return TestQuery(row=exp.EQ(this=exp.Trim(this=translated), expression=empty))


def expression_is_true(column: str | None, args: dict[str, Any]) -> TestQuery:
    expression = args.get("expression")
    if not isinstance(expression, str) or not expression.strip():
        raise Skip("dbt_utils.expression_is_true needs an expression")
    written = " ".join((column, expression)) if column else expression  # dbt joins them as text
    return TestQuery(row=exp.not_(exp.paren(user_sql(written))))


def not_accepted_values(column: str, args: dict[str, Any]) -> TestQuery:
    values = list(args.get("values") or [])
    quote = args.get("quote", True) is not False
    if not values:
        return TestQuery(row=exp.false())
    return TestQuery(row=exp.In(this=user_sql(column), expressions=[literal(v, quote) for v in values]))


def recency(args: dict[str, Any]) -> TestQuery:
    datepart, field_name, interval = args.get("datepart"), args.get("field"), args.get("interval")
    if not datepart or not field_name or interval is None:
        raise Skip("dbt_utils.recency needs datepart, field and interval")
    ignore_time = args.get("ignore_time_component", False) is True
    try:
        shifted = _CROSS_DB.dateadd(str(datepart), -int(interval), _CROSS_DB.current_timestamp())
    except (TypeError, ValueError, DbtError):
        raise Skip(f"dbt_utils.recency: interval {interval!r} is not a whole number") from None
    threshold = exp.cast(user_sql(shifted), "date" if ignore_time else _CROSS_DB.type_timestamp())
    latest: exp.Expr = exp.Max(this=user_sql(str(field_name)))
    if ignore_time:
        latest = exp.cast(latest, "date")
    groups = _groups(args)

    def sql(where: str | None) -> exp.Query:
        found = _grouped(
            select_from(tested(where), *groups, exp.alias_(latest.copy(), "most_recent")), groups
        )
        most_recent = exp.column("most_recent")
        final = select_from(
            "recency", *(g.copy() for g in groups), most_recent, exp.alias_(threshold.copy(), "threshold")
        ).where(exp.LT(this=most_recent.copy(), expression=threshold.copy()))
        return with_ctes([("recency", found)], final)

    return TestQuery(sql=sql)


def compare_counts(compare: str, args: dict[str, Any], *, fewer: bool, expand: bool) -> TestQuery:
    """equal_rowcount and fewer_rows_than, as dbt_utils writes them. dbt counts their failures as
    ``sum(diff_count)`` / ``sum(row_count_delta)``: each result row is repeated that many times, so
    the failing rows count the same."""
    extra = [str(c) for c in (args.get("group_by_columns") or [])]
    keys = ["id_dbtutils_test_equal_rowcount", *extra]
    first, second = ("count_our_model", "count_comparison_model") if fewer else ("count_a", "count_b")
    measure = "row_count_delta" if fewer else "diff_count"
    joined = exp.and_(
        *(exp.EQ(this=exp.column(k, table="a"), expression=exp.column(k, table="b")) for k in keys)
    )
    pairs = [exp.alias_(exp.column(k, table=side), f"{k}_{side}") for k in keys for side in ("a", "b")]

    def counted(relation: exp.Expr, name: str) -> exp.Select:
        found = select_from(
            relation,
            *(exp.column(c) for c in extra),
            exp.alias_(_ONE.copy(), keys[0]),
            exp.alias_(count_star(), name),
        )
        return found.group_by(*(exp.column(k) for k in keys))

    def final_query() -> exp.Select:
        a, b = exp.column(first), exp.column(second)
        if fewer:
            delta = (
                exp.case()
                .when(exp.GT(this=a.copy(), expression=b.copy()), exp.paren(exp.Sub(this=a, expression=b)))
                .when(exp.EQ(this=a.copy(), expression=b.copy()), _ONE.copy())
                .else_(_ZERO.copy())
            )
            return select_from("counts", "*", exp.alias_(delta, measure))
        filled = [exp.func("coalesce", exp.column(n), _ZERO.copy()) for n in (first, second)]
        diff = exp.Abs(this=exp.Sub(this=filled[0].copy(), expression=filled[1].copy()))
        both = [exp.alias_(filled[0], first), exp.alias_(filled[1], second), exp.alias_(diff, measure)]
        return select_from("a", *pairs, *both).join("b", on=joined, join_type="full")

    def sql(where: str | None) -> exp.Query:
        ctes = [("a", counted(tested(where), first)), ("b", counted(table(compare), second))]
        if fewer:
            counts = select_from("a", *pairs, exp.column(first), exp.column(second)).join(
                "b", on=joined, join_type="full"
            )
            ctes.append(("counts", counts))
        ctes.append(("final", final_query()))
        if not expand:
            return with_ctes(ctes, select_from("final"))
        times = exp.func("coalesce", exp.column(measure, table="final"), _ZERO.copy())
        series = exp.GenerateSeries(start=_ZERO.copy(), end=times, is_end_exclusive=True)
        repeated = exp.select(exp.Column(this=exp.Star(), table=exp.to_identifier("final"))).from_("final")
        return with_ctes(ctes, repeated.join(exp.Table(this=series)))

    return TestQuery(sql=sql)


def cardinality_equality(column: str, parent: str, field_name: str) -> TestQuery:
    def sql(where: str | None) -> exp.Query:
        value, field = user_sql(column), user_sql(field_name)
        rows = exp.alias_(count_star(), "num_rows")
        ctes: list[tuple[str, exp.Query]] = [
            ("table_a", select_from(tested(where), value, rows).group_by(value.copy())),
            ("table_b", select_from(table(parent), field, rows.copy()).group_by(field.copy())),
            ("except_a", exp.except_(select_from("table_a"), select_from("table_b"))),
            ("except_b", exp.except_(select_from("table_b"), select_from("table_a"))),
            ("unioned", exp.union(select_from("except_a"), select_from("except_b"), distinct=False)),
        ]
        return with_ctes(ctes, select_from("unioned"))

    return TestQuery(sql=sql)


def sequential_values(column: str, args: dict[str, Any]) -> TestQuery:
    interval, datepart = args.get("interval", 1), args.get("datepart")
    previous_name = "previous_" + re.sub(r"[^a-z0-9_]+", "_", re.sub(r"[ -]+", "_", column.lower()))
    value, previous = user_sql(column), exp.column(previous_name)
    groups = _groups(args)
    if datepart:
        stamp = _CROSS_DB.type_timestamp()
        shifted = user_sql(_CROSS_DB.dateadd(str(datepart), interval, previous_name))
        same: exp.Expr = exp.EQ(this=exp.cast(value.copy(), stamp), expression=exp.cast(shifted, stamp))
    else:
        same = exp.EQ(this=value.copy(), expression=exp.Add(this=previous, expression=_value(interval)))
    failing = exp.not_(exp.paren(same))

    def sql(where: str | None) -> exp.Query:
        lagged = exp.Window(
            this=exp.Lag(this=value.copy()),
            partition_by=[g.copy() for g in groups] or None,
            order=exp.Order(expressions=[exp.Ordered(this=value.copy(), nulls_first=False)]),
        )
        windowed = select_from(tested(where), *groups, value.copy(), exp.alias_(lagged, previous_name))
        errors = select_from("windowed").where(failing.copy())
        return with_ctes(
            [("windowed", windowed), ("validation_errors", errors)], select_from("validation_errors")
        )

    return TestQuery(sql=sql)


def relationships_where(column: str, parent: str, field_name: str, args: dict[str, Any]) -> TestQuery:
    from_condition = user_sql(str(args.get("from_condition", "1=1")))
    to_condition = user_sql(str(args.get("to_condition", "1=1")))

    def sql(where: str | None) -> exp.Query:
        value, field = user_sql(column), user_sql(field_name)
        left = select_from(tested(where), exp.alias_(value, "id")).where(
            exp.and_(not_null(value), from_condition.copy())
        )
        right = select_from(table(parent), exp.alias_(field, "id")).where(
            exp.and_(not_null(field), to_condition.copy())
        )
        left_id, right_id = exp.column("id", table="left_table"), exp.column("id", table="right_table")
        exceptions = (
            select_from("left_table", left_id, exp.alias_(right_id.copy(), "right_id"))
            .join("right_table", on=exp.EQ(this=left_id.copy(), expression=right_id.copy()), join_type="left")
            .where(is_null(right_id))
        )
        ctes = [("left_table", left), ("right_table", right), ("exceptions", exceptions)]
        return with_ctes(ctes, select_from("exceptions"))

    return TestQuery(sql=sql)
