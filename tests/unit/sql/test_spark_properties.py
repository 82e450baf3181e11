"""Random small expressions in the project's SQL (DuckDB's) -- arithmetic, comparisons, CASE,
COALESCE, string functions, date parts -- over a few typed columns with NULLs: DuckDB and Spark
(through the lowering, as the spark engine renders a model) give the same values.

Bounded: a batch of expressions per example, one statement per engine per example, few examples.
Values stay small (no overflow); left out, as docs/engines.md says they differ: division (``x / 0``)
and a cast of a fractional column to an integer (DuckDB rounds, Spark truncates)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings

from tests.support.spark_compare import duckdb_connection, on_duckdb, on_spark
from tests.support.spark_local import local_spark

ROWS = """(values
    (1, 3, 2, 1.5, 'Ab c', 'x', date '2024-02-29', timestamp '2024-02-29 23:59:58', true),
    (2, -4, 7, -2.25, ' hi ', 'ab', date '2023-12-31', timestamp '2023-12-31 00:00:01', false),
    (3, null, 0, 0.0, '', null, date '2021-01-03', timestamp '2021-01-03 12:30:00', null),
    (4, 5, null, null, null, 'Ab c', null, null, true),
    (5, 0, -1, 10.125, 'zz', '', date '2020-06-15', timestamp '2020-06-15 06:07:08', false)
) as t(id, i, j, x, s, u, d, ts, b)"""

Strategy = st.SearchStrategy[str]


def _op(template: str, *parts: Strategy) -> Strategy:
    return st.tuples(*parts).map(lambda args: template.format(*args))


def _grammar() -> dict[str, Callable[[int], Strategy]]:
    def integer(depth: int) -> Strategy:
        leaves = st.sampled_from(["i", "j", "id"]) | st.integers(-5, 5).map(str)
        if depth == 0:
            return leaves
        inner, text, boolean, date = integer(depth - 1), string(depth - 1), boolean_(depth - 1), st.just("d")
        return st.one_of(
            leaves,
            _op("({} + {})", inner, inner),
            _op("({} - {})", inner, inner),
            _op("({} * {})", inner, inner),
            _op("abs({})", inner),
            _op("coalesce({}, {})", inner, inner),
            _op("(case when {} then {} else {} end)", boolean, inner, inner),
            _op("(case when {} then {} end)", boolean, inner),
            _op("length({})", text),
            _op(
                "{}({})", st.sampled_from(["year", "month", "day", "quarter", "dayofweek", "dayofyear"]), date
            ),
            _op("{}(ts)", st.sampled_from(["hour", "minute", "second", "isodow"])),
            _op("extract({} from ts)", st.sampled_from(["year", "month", "day", "hour"])),
            _op("least({}, {})", inner, inner),
            _op("greatest({}, {})", inner, inner),
            _op("nullif({}, {})", inner, inner),
            _op("({} % {})", inner, inner),
            _op("({} // {})", inner, inner),
            _op("strpos({}, 'b')", text),
            _op("date_diff('{}', date '2024-01-01', {})", st.sampled_from(["day", "month", "year"]), date),
            _op("sign({})", inner),
        )

    def floating(depth: int) -> Strategy:
        leaves = st.sampled_from(["x", "1.5", "-0.25"])
        if depth == 0:
            return leaves
        inner, whole = floating(depth - 1), integer(depth - 1)
        return st.one_of(
            leaves,
            _op("({} + {})", inner, whole),
            _op("({} * {})", inner, inner),
            _op("round({}, 1)", inner),
            _op("floor({})", inner),
            _op("abs({})", inner),
            _op("sqrt(abs({}))", inner),
            _op("ceil({})", inner),
            _op("coalesce({}, {})", inner, inner),
            _op("cast({} as double)", whole),
        )

    def string(depth: int) -> Strategy:
        leaves = st.sampled_from(["s", "u", "'ab'", "''"])
        if depth == 0:
            return leaves
        inner, whole = string(depth - 1), integer(depth - 1)
        return st.one_of(
            leaves,
            _op("upper({})", inner),
            _op("lower({})", inner),
            _op("trim({})", inner),
            _op("({} || {})", inner, inner),
            _op("concat({}, {})", inner, inner),
            _op("substr({}, 2, 2)", inner),
            _op("replace({}, 'b', 'Q')", inner),
            _op("left({}, 2)", inner),
            _op("right({}, 2)", inner),
            _op("lpad({}, 4, '*')", inner),
            _op("reverse({})", inner),
            _op("ltrim({})", inner),
            _op("repeat({}, 2)", inner),
            _op("coalesce({}, {})", inner, inner),
            _op("cast({} as varchar)", whole),
            _op("(case when {} then {} else {} end)", boolean_(depth - 1), inner, inner),
            _op("strftime(d, '%Y/%m/%d')", st.just("")),
        )

    def boolean_(depth: int) -> Strategy:
        leaves = st.sampled_from(["b", "true", "(i is null)"])
        if depth == 0:
            return leaves
        whole, text, inner = integer(depth - 1), string(depth - 1), boolean_(depth - 1)
        compare = st.sampled_from(["=", "<>", "<", "<=", ">", ">="])
        return st.one_of(
            leaves,
            _op("({} {} {})", whole, compare, whole),
            _op("({} {} {})", text, compare, text),
            _op("({} and {})", inner, inner),
            _op("({} or {})", inner, inner),
            _op("(not {})", inner),
            _op("({} like 'a%')", text),
            _op("({} is distinct from {})", whole, whole),
            _op("({} between 0 and 3)", whole),
            _op("({} in (1, 2, {}))", whole, whole),
            _op("starts_with({}, 'a')", text),
            _op("contains({}, 'b')", text),
            _op("ends_with({}, 'c')", text),
            _op("({} ilike '%B%')", text),
        )

    return {"integer": integer, "floating": floating, "text": string, "boolean": boolean_}


GRAMMAR = _grammar()
EXPRESSIONS = st.lists(
    st.sampled_from(sorted(GRAMMAR)).flatmap(lambda kind: GRAMMAR[kind](2)), min_size=6, max_size=6
)


def same(left: Any, right: Any) -> bool:
    if isinstance(left, float | int) and isinstance(right, float | int) and not isinstance(left, bool):
        return math.isclose(float(left), float(right), rel_tol=1e-9, abs_tol=1e-12)
    if hasattr(left, "is_finite"):  # Decimal
        return same(float(left), right)
    if hasattr(right, "is_finite"):
        return same(left, float(right))
    return bool(left == right)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EXPRESSIONS)
def test_random_expressions_give_the_same_values_on_duckdb_and_spark(expressions: list[str]) -> None:
    listed = ", ".join(f"{e} as c{n}" for n, e in enumerate(expressions))
    query = f"select id, {listed} from {ROWS} order by id"
    _, duck = on_duckdb(duckdb_connection(), query)
    _, spark = on_spark(local_spark(), query)
    assert len(duck) == len(spark)
    for duck_row, spark_row in zip(duck, spark, strict=True):
        for n, (left, right) in enumerate(zip(duck_row, spark_row, strict=True)):
            label = expressions[n - 1] if n else "id"
            assert same(left, right), (label, duck_row[0], left, right)
