"""dbt's cross-database macros (``dbt.dateadd``… and bare ``dateadd``) as dbt-duckdb writes them,
built as sqlglot ASTs; and the helpers that turn macro arguments (SQL text, relations) into ASTs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import reduce
from typing import Any

import sqlglot
from sqlglot import exp

from gristmill.project.dbt.jinja import DbtError, Relation
from gristmill.project.dialect import PROJECT_DIALECT

DIALECT = PROJECT_DIALECT
TYPES = {
    "string": "TEXT",
    "text": "TEXT",
    "timestamp": "timestamp",
    "float": "float",
    "integer": "integer",
    "int": "integer",
    "bigint": "bigint",
    "boolean": "boolean",
    "numeric": "numeric(28,6)",
}


def func(name: str, *args: exp.Expr) -> exp.Expr:
    """A function call read as DuckDB reads it (argument order differs between dialects)."""
    return exp.func(name, *args, dialect=DIALECT)


def to_sql(node: exp.Expr) -> str:
    return node.sql(dialect=DIALECT)


def parse(value: Any, what: str) -> exp.Expr:
    """A macro argument (SQL text, a relation or a number) as an expression."""
    if isinstance(value, exp.Expr):
        return value
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    if isinstance(value, Relation):
        value = value.render()
    try:
        parsed = sqlglot.parse_one(str(value), read=DIALECT)
    except sqlglot.errors.SqlglotError:
        raise DbtError(f"{what}: {str(value)!r} is not a SQL expression") from None
    return parsed


def parse_query(value: Any, what: str) -> exp.Query:
    parsed = parse(value, what)
    if not isinstance(parsed, exp.Query):
        raise DbtError(f"{what}: expected a query, got {str(value)!r}")
    return parsed


def from_table(relation: Any, what: str) -> exp.Expr:
    """A relation (or a CTE's name) to select from."""
    if isinstance(relation, Relation) and relation.is_cte:
        return parse_query(relation.inline() if relation.inline else "", what).subquery()
    text = relation.render() if isinstance(relation, Relation) else str(relation)
    try:
        return exp.to_table(text, dialect=DIALECT)
    except sqlglot.errors.SqlglotError:
        raise DbtError(f"{what}: {text!r} is not a table name") from None


def as_list(values: Any) -> list[Any]:
    return [values] if isinstance(values, str | Relation) else list(values or [])


def quoted(name: str) -> exp.Identifier:
    return exp.to_identifier(str(name), quoted=True)


def interval_of(unit: str) -> exp.Interval:
    return exp.Interval(this=exp.Literal.string("1"), unit=exp.var(unit))


class _TimeMacros:
    """dbt's date and time macros, and the series built from them."""

    def current_timestamp(self) -> str:
        return to_sql(func("now"))

    current_timestamp_backcompat = current_timestamp
    current_timestamp_in_utc_backcompat = current_timestamp

    def dateadd(self, datepart: str, interval: Any, from_date_or_timestamp: Any) -> str:
        unit = str(datepart).strip("'\"").lower()
        times: exp.Expr = exp.cast(parse(interval, "dateadd"), "bigint")
        if unit in ("quarter", "week"):
            times = exp.Mul(
                this=exp.paren(times), expression=exp.Literal.number(3 if unit == "quarter" else 7)
            )
            unit = "month" if unit == "quarter" else "day"
        shifted = exp.Add(
            this=parse(from_date_or_timestamp, "dateadd"),
            expression=exp.Mul(this=times, expression=interval_of(unit)),
        )
        return to_sql(exp.paren(shifted))

    def datediff(self, first_date: Any, second_date: Any, datepart: str) -> str:
        unit = str(datepart).strip("'\"").lower()
        first = exp.cast(exp.paren(parse(first_date, "datediff")), "timestamp")
        second = exp.cast(exp.paren(parse(second_date, "datediff")), "timestamp")
        if unit != "week":
            return to_sql(exp.paren(func("date_diff", exp.Literal.string(unit), first, second)))
        days = exp.IntDiv(
            this=func("date_diff", exp.Literal.string("day"), first, second),
            expression=exp.Literal.number(7),
        )
        before = exp.LTE(this=first.copy(), expression=second.copy())
        dow = lambda e: func("date_part", exp.Literal.string("dow"), e.copy())  # noqa: E731
        correction = (
            exp.case()
            .when(
                exp.LTE(this=dow(first), expression=dow(second)),
                exp.case().when(before, exp.Literal.number(0)).else_(exp.Literal.number(-1)),
            )
            .else_(exp.case().when(before.copy(), exp.Literal.number(1)).else_(exp.Literal.number(0)))
        )
        return to_sql(exp.paren(exp.Add(this=days, expression=correction)))

    def date_trunc(self, datepart: str, date: Any) -> str:
        return to_sql(func("date_trunc", exp.Literal.string(str(datepart)), parse(date, "date_trunc")))

    def last_day(self, date: Any, datepart: str) -> str:
        start_of_next = self.dateadd(
            "month" if datepart == "quarter" else datepart,
            3 if datepart == "quarter" else 1,
            self.date_trunc(datepart, date),
        )
        return to_sql(exp.cast(parse(self.dateadd("day", -1, start_of_next), "last_day"), "date"))

    def date(self, year: Any, month: Any, day: Any) -> str:
        return to_sql(func("make_date", *(parse(v, "date") for v in (year, month, day))))

    def generate_series(self, upper_bound: Any) -> str:
        numbers = func("generate_series", exp.Literal.number(1), parse(upper_bound, "generate_series"))
        return to_sql(
            exp.select(exp.alias_(exp.column("generate_series"), "generated_number")).from_(numbers)
        )

    def _numbers(self, count: exp.Expr) -> exp.Query:
        """1..count as ``generated_number``; a scalar series, so ``count`` may be any expression."""
        series = func("generate_series", exp.Literal.number(1), exp.cast(count, "bigint"))
        return exp.select(exp.alias_(func("unnest", series), "generated_number"))

    def date_spine(self, datepart: str, start_date: Any, end_date: Any) -> str:
        """Every ``datepart`` from ``start_date`` up to, not including, ``end_date`` (the interval
        count dbt queries for while compiling is computed in the query instead)."""
        column = f"date_{datepart}"
        count = parse(self.datediff(start_date, end_date, datepart), "date_spine")
        step = "row_number() over (order by generated_number) - 1"
        periods = exp.select(
            exp.alias_(parse(self.dateadd(datepart, step, start_date), "date_spine"), column)
        )
        filtered = (
            exp.select("*")
            .from_("all_periods")
            .where(exp.LTE(this=exp.column(column), expression=parse(end_date, "date_spine")))
        )
        query = (
            exp.select("*")
            .from_("filtered")
            .with_("rawdata", as_=self._numbers(count))
            .with_("all_periods", as_=periods.from_("rawdata"))
            .with_("filtered", as_=filtered)
        )
        return to_sql(query)


class _TypeMacros:
    """dbt's type macros: the type names DuckDB gives dbt's portable ones."""

    def translate_type(self, name: str) -> str:
        return TYPES.get(str(name).lower(), str(name))

    def type_string(self) -> str:
        return TYPES["string"]

    def type_timestamp(self) -> str:
        return TYPES["timestamp"]

    def type_float(self) -> str:
        return TYPES["float"]

    def type_numeric(self) -> str:
        return TYPES["numeric"]

    def type_bigint(self) -> str:
        return TYPES["bigint"]

    def type_int(self) -> str:
        return TYPES["integer"]

    def type_boolean(self) -> str:
        return TYPES["boolean"]


class _ValueMacros(_TypeMacros):
    """dbt's macros over strings, arrays and values."""

    def hash(self, field: Any) -> str:
        return to_sql(func("md5", exp.cast(parse(field, "hash"), self.type_string())))

    def concat(self, fields: Sequence[Any]) -> str:
        parts = [parse(f, "concat") for f in as_list(fields)]
        return to_sql(reduce(lambda left, right: exp.DPipe(this=left, expression=right, safe=True), parts))

    def cast(self, field: Any, type: str) -> str:
        return to_sql(exp.cast(parse(field, "cast"), str(type), dialect=DIALECT))

    def safe_cast(self, field: Any, type: str) -> str:
        return self.cast(field, type)

    def cast_bool_to_text(self, field: Any) -> str:
        return self.cast(field, self.type_string())

    def any_value(self, expression: Any) -> str:
        return to_sql(func("arbitrary", parse(expression, "any_value")))

    def bool_or(self, expression: Any) -> str:
        return to_sql(func("bool_or", parse(expression, "bool_or")))

    def listagg(
        self,
        measure: Any,
        delimiter_text: str = "','",
        order_by_clause: str | None = None,
        limit_num: Any = None,
    ) -> str:
        ordered = f"{measure} {order_by_clause}" if order_by_clause else str(measure)
        if limit_num:
            aggregated = f"list_aggr((array_agg({ordered}))[1:{limit_num}], 'string_agg', {delimiter_text})"
        else:
            aggregated = f"string_agg({measure}, {delimiter_text} {order_by_clause or ''})"
        return to_sql(parse(aggregated, "listagg"))

    def split_part(self, string_text: Any, delimiter_text: Any, part_number: Any) -> str:
        # Read as DuckDB writes it, so that sqlglot keeps the 1-based index as it is.
        split = func("string_split", parse(string_text, "split_part"), parse(delimiter_text, "split_part"))
        return to_sql(parse(f"{to_sql(split)}[{to_sql(parse(part_number, 'split_part'))}]", "split_part"))

    def position(self, substring_text: Any, string_text: Any) -> str:
        return to_sql(
            exp.StrPosition(this=parse(string_text, "position"), substr=parse(substring_text, "position"))
        )

    def replace(self, field: Any, old_chars: Any, new_chars: Any) -> str:
        return to_sql(func("replace", *(parse(v, "replace") for v in (field, old_chars, new_chars))))

    def right(self, string_text: Any, length_expression: Any) -> str:
        return to_sql(func("right", parse(string_text, "right"), parse(length_expression, "right")))

    def length(self, expression: Any) -> str:
        return to_sql(func("length", parse(expression, "length")))

    def escape_single_quotes(self, expression: Any) -> str:
        return str(expression).replace("'", "''")

    def string_literal(self, value: Any) -> str:
        return to_sql(exp.Literal.string(str(value)))

    def array_construct(self, inputs: Sequence[Any] = (), data_type: str = "integer") -> str:
        if not inputs:
            return to_sql(exp.cast(exp.Array(expressions=[]), f"{data_type}[]", dialect=DIALECT))
        return to_sql(exp.Array(expressions=[parse(v, "array_construct") for v in inputs]))

    def array_append(self, array: Any, new_element: Any) -> str:
        return to_sql(func("list_append", parse(array, "array_append"), parse(new_element, "array_append")))

    def array_concat(self, array_1: Any, array_2: Any) -> str:
        return to_sql(func("list_concat", parse(array_1, "array_concat"), parse(array_2, "array_concat")))

    def intersect(self) -> str:
        return "intersect"

    def except_(self) -> str:
        return "except"

    def equals(self, expr1: Any, expr2: Any) -> str:
        left, right = parse(expr1, "equals"), parse(expr2, "equals")
        return to_sql(exp.paren(exp.EQ(this=left, expression=right)))


class CrossDb(_TimeMacros, _ValueMacros):
    """dbt's cross-database macros (``dbt.dateadd``… and bare ``dateadd``), as dbt-duckdb writes them."""

    def functions(self) -> dict[str, Callable[..., Any]]:
        names = [
            "current_timestamp",
            "current_timestamp_backcompat",
            "current_timestamp_in_utc_backcompat",
            "dateadd",
            "datediff",
            "date_trunc",
            "last_day",
            "date",
            "type_string",
            "type_timestamp",
            "type_float",
            "type_numeric",
            "type_bigint",
            "type_int",
            "type_boolean",
            "hash",
            "concat",
            "cast",
            "safe_cast",
            "cast_bool_to_text",
            "any_value",
            "bool_or",
            "listagg",
            "split_part",
            "position",
            "replace",
            "right",
            "length",
            "escape_single_quotes",
            "string_literal",
            "array_construct",
            "array_append",
            "array_concat",
            "intersect",
            "equals",
            "generate_series",
            "date_spine",
        ]
        found = {name: getattr(self, name) for name in names}
        found["except"] = self.except_
        return found
