"""DuckDB functions and constructs a model commonly uses, rendered for Spark and run on a local
Spark 4 session: each gives the values DuckDB gives, in a column of the same kind (integer,
floating, decimal of the same scale, text, date, naive or zoned timestamp, list of …). What Spark
has no form for is named, not sent to it. The scalar calls run as one statement (one column each):
Spark's statements cost tens of milliseconds, its planner a few seconds per hundred queries."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import duckdb
import pytest
import sqlglot

from gristmill.sql.render import unspellable
from tests.support.spark_compare import duckdb_connection, on_duckdb, on_spark, spark_sql
from tests.support.spark_local import local_spark
from tests.unit.sql.test_model_functions import QUERIES as POSTGRES_QUERIES
from tests.unit.sql.test_model_functions import ROW
from tests.unit.sql.test_model_functions import SCALARS as POSTGRES_SCALARS

SCALARS = [
    *POSTGRES_SCALARS,
    *("date_diff('week', d, DATE '2024-03-31')", "date_diff('hour', ts, TIMESTAMP '2024-03-15 15:00:00')"),
    *("date_diff('year', d, DATE '2025-01-01')", "date_diff('quarter', d, DATE '2024-04-01')"),
    *(
        "date_diff('minute', ts, TIMESTAMP '2024-03-15 13:46:00')",
        "date_diff('day', ts, TIMESTAMP '2024-03-16 01:00:00')",
    ),
    *("date_trunc('week', d)", "date_trunc('day', ts)", "date_trunc('hour', ts::timestamptz)"),
    *("d - INTERVAL 1 MONTH", "ts + INTERVAL 90 MINUTE", "d + 1", "make_timestamp(2024, 1, 2, 3, 4, 5.5)"),
    *("strptime('2024-01-02 03:04:05', '%Y-%m-%d %H:%M:%S')", "strftime(ts, '%d/%m/%Y %H:%M')", "epoch(ts)"),
    *("n // 0", "n % 0", "m // 2", "m % 5", "1.5 / 2", "CAST(10 AS DECIMAL(10,2)) / 3", "n * 2.5"),
    *("round(2.567, 2)", "abs(m)", "power(2, 10)", "sqrt(16)", "ceil(2.1)", "floor(-2.1)"),
    *("CAST(2.5 AS INTEGER)", "CAST(-2.5 AS INTEGER)", "CAST(n / 4 AS INTEGER)"),
    *("l[5]", "l[-1]", "l[2]", "list_sum([1, 2, NULL])", "list_sum(CAST([] AS INTEGER[]))"),
    *("list_sort([2, NULL, 1])", "list_sort([2, NULL, 1], 'DESC')", "list_min(l)", "list_reverse(l)"),
    *("list_value(1, 2)", "flatten([[1], [2, 3]])", "list_concat(l, [9])", "array_position(l, 2)"),
    *(
        "regexp_replace(s, 'o', '0')",
        "regexp_replace(s, '(l+)', '<\\1>')",
        "regexp_replace(s, '(l+)', '<\\1>', 'g')",
    ),
    *(
        "regexp_replace(s, 'o', '$')",
        "regexp_matches(s, '(?i)^hello')",
        "regexp_extract(s, '([a-z]+) ([A-Z])', 2)",
    ),
    *(
        """json_extract('{"a": "x", "b": {"c": [1, 2]}}', '$.a')""",
        """json_extract('{"a": {"c": [1, 2]}}', '$.a')""",
    ),
    *(
        """'{"a": {"b": 1}}'->>'$.a.b'""",
        """json_extract_string('{"a": "x"}', '$.a')""",
        """'{"a": [1, 2]}'->'$.a[1]'""",
    ),
    *(
        "CAST('t' AS BOOLEAN)",
        "CAST(1 AS BOOLEAN)",
        "CAST(true AS INTEGER)",
        "CAST(ts AS VARCHAR)",
        "CAST(d AS VARCHAR)",
    ),
    *("CAST('2024-01-02 03:04:05' AS TIMESTAMP)", "CAST(1.5 AS VARCHAR)", "CAST(true AS VARCHAR)"),
    *(
        "'B' < 'a'",
        "'é' > 'z'",
        "s LIKE 'H%'",
        "s NOT ILIKE '%WORLD'",
        "concat_ws('-', 'a', NULL, 'b')",
        "s || n",
    ),
    *(
        "left(s, -2)",
        "right(s, -3)",
        "substring(s, -5, 3)",
        "position('o' IN s)",
        "instr(s, 'W')",
        "reverse(s)",
    ),
    *(
        "greatest(d, DATE '2025-01-01')",
        "least(1, 2.5)",
        "{'a': 1, 'b': 'x'}",
        "{'a': 1}.a",
        "format('{}-{}', 1, 2)",
    ),
]
"""The PostgreSQL test's calls, and what differs on Spark besides: date arithmetic and its types,
division and casts to integers, list subscripts, ``regexp_replace``'s first match, JSON values."""

TABLE = (
    "(SELECT * FROM (VALUES (1, 'a', 10, 1.5), (2, 'a', 30, NULL), (3, 'b', 20, 2.25), (4, 'b', NULL, 0.5), "
    "(5, NULL, 5, 1.0)) AS v(id, g, amt, x))"
)
QUERIES = [
    *POSTGRES_QUERIES,
    "SELECT g, list(amt ORDER BY amt) AS l FROM T GROUP BY g ORDER BY g",
    "SELECT g, list(amt ORDER BY amt DESC NULLS FIRST, id) AS l FROM T GROUP BY g ORDER BY g",
    "SELECT g, array_agg(id ORDER BY amt DESC) AS l FROM T GROUP BY g ORDER BY g",
    "SELECT g, first(amt ORDER BY amt) AS f, first(id ORDER BY amt DESC) AS h FROM T GROUP BY g ORDER BY g",
    "SELECT id, row_number() OVER (ORDER BY amt) AS r, rank() OVER (PARTITION BY g ORDER BY amt DESC) AS k "
    "FROM T ORDER BY id",
    "SELECT id, lag(amt) OVER (ORDER BY g, id) AS p, sum(amt) OVER (PARTITION BY g) AS s FROM T ORDER BY id",
    "SELECT id, amt FROM T ORDER BY amt",
    "SELECT id, amt FROM T ORDER BY amt DESC",
    "SELECT g, string_agg(CAST(amt AS VARCHAR), '|' ORDER BY amt DESC) AS s FROM T GROUP BY g ORDER BY g",
    "SELECT id, g FROM T QUALIFY row_number() OVER (PARTITION BY g ORDER BY id DESC) = 1 ORDER BY t.id",
    "SELECT * FROM T QUALIFY rank() OVER (ORDER BY amt) <= 2 ORDER BY id LIMIT 5",
    "SELECT * EXCLUDE (x, g) FROM T ORDER BY id",
    "SELECT g, count(*) AS c, sum(x) AS sx, avg(x) AS ax, min(x) AS mn FROM T GROUP BY ALL ORDER BY ALL",
    "SELECT g, median(amt) AS m, quantile_cont(amt, 0.25) AS q, mode(g) AS md FROM T GROUP BY g ORDER BY g",
    "SELECT count(DISTINCT g) AS d, bool_and(amt > 1) AS b, bool_or(amt > 25) AS o, "
    "sum(amt) FILTER (WHERE g = 'a') AS f FROM T",
    "SELECT id FROM T WHERE g ILIKE 'A' ORDER BY id",
    "SELECT g, max(amt) - min(amt) AS spread FROM T WHERE g IS NOT NULL GROUP BY g HAVING count(*) > 1 "
    "ORDER BY 1",
    "SELECT id FROM T WHERE id IN (SELECT id FROM T WHERE amt > 15) ORDER BY id",
    "SELECT id FROM T EXCEPT SELECT id FROM T WHERE g = 'a' ORDER BY id",
    "WITH c AS (SELECT g, sum(amt) AS s FROM T GROUP BY g) SELECT * FROM c ORDER BY s",
    "SELECT id, amt / 7 AS r, amt // 7 AS q, amt % 7 AS m, x * 2 AS dbl, CAST(x * 3 AS INTEGER) AS x3 "
    "FROM T ORDER BY id",
    "SELECT id, coalesce(g, 'none') AS g2, nullif(amt, 10) AS n FROM T ORDER BY id",
]

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@pytest.fixture(scope="module")
def spark() -> SparkSession:
    return local_spark()


@pytest.fixture(scope="module")
def ddb() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb_connection()
    yield connection
    connection.close()


def _scalar(call: str) -> str:
    return f"SELECT {call} AS v FROM ({ROW}) AS t"


@pytest.fixture(scope="module")
def scalars_on_spark(spark, ddb) -> dict[str, Any]:
    """Every scalar call's column from one Spark statement (None when that statement fails: each
    test then runs its own, to name its error)."""
    columns = ", ".join(f"{call} AS c{i}" for i, call in enumerate(SCALARS))
    try:
        kinds, rows = on_spark(spark, f"SELECT {columns} FROM ({ROW}) AS t")
    except Exception:  # one call failing: the tests below say which
        return {}
    return {call: ([kinds[i]], [(rows[0][i],)]) for i, call in enumerate(SCALARS)}


@pytest.mark.parametrize("call", SCALARS)
def test_a_function_computes_on_spark_what_it_computes_on_duckdb(
    spark, ddb, scalars_on_spark, call: str
) -> None:
    expected = on_duckdb(ddb, _scalar(call))
    got = scalars_on_spark.get(call) or on_spark(spark, _scalar(call))
    assert got == expected, spark_sql(_scalar(call))


@pytest.mark.parametrize("query", QUERIES)
def test_a_query_gives_on_spark_the_rows_it_gives_on_duckdb(spark, ddb, query: str) -> None:
    query = re.sub(r"\bT\b", f"{TABLE} AS t", query)
    assert on_spark(spark, query) == on_duckdb(ddb, query), spark_sql(query)


def test_dividing_by_zero_gives_null_not_an_error(spark) -> None:
    """DuckDB gives ±Infinity for ``x / 0`` (NULL for ``//`` and ``%``); Spark's ANSI mode raises:
    the lowering gives NULL, a value the user sees rather than a failed run."""
    kinds, rows = on_spark(spark, "SELECT 7 / 0 AS a, 7 // 0 AS b, 7 % 0 AS c, 0 / 0 AS d")
    assert kinds == ["floating", "integer", "integer", "floating"]
    assert rows == [(None, None, None, None)]


@pytest.mark.parametrize("query", ["SELECT CAST(2147483647 AS INTEGER) + 1", "SELECT CAST('abc' AS INTEGER)"])
def test_what_fails_on_duckdb_fails_on_spark(spark, ddb, query: str) -> None:
    """Overflow and a bad cast are errors on both engines (Spark's ANSI mode, its default), not a
    NULL or a wrapped-around number."""
    with pytest.raises(duckdb.Error):
        ddb.execute(query).fetchall()
    with pytest.raises(Exception, match=r"ARITHMETIC_OVERFLOW|CAST_INVALID_INPUT|INVALID|CANNOT"):
        spark.sql(spark_sql(query)).collect()


@pytest.mark.parametrize(
    ("query", "construct"),
    [
        ("SELECT * REPLACE (a + 1 AS a) FROM t", "SELECT * REPLACE (…) has no Spark form"),
        ("SELECT a FROM t UNION BY NAME SELECT a FROM u", "UNION BY NAME has no Spark SQL form"),
        ("SELECT list_aggregate(l, 'sum') FROM t", "list_aggregate has no Spark form"),
        ("SELECT format('{:>5}', a) FROM t", "format() with fmt options"),
    ],
)
def test_what_spark_cannot_spell_is_named_with_its_place(query: str, construct: str) -> None:
    found = unspellable(sqlglot.parse_one(f"\n{query}", read="duckdb"), "spark")
    assert found is not None
    message, node = found
    assert construct in message
    assert node is not None and node.meta.get("line", 2) == 2


def test_what_spark_can_spell_passes() -> None:
    query = (
        "SELECT * EXCLUDE (b), year(d), list_transform(l, x -> x + 1), count_if(a > 1), "
        "try_cast(s AS INTEGER) FROM t GROUP BY ALL QUALIFY row_number() OVER (ORDER BY a) = 1"
    )
    assert unspellable(sqlglot.parse_one(query, read="duckdb"), "spark") is None
