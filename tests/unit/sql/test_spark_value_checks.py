"""The per-value checks a load makes (``sql.value_checks``: checked casts, JSON kinds, a JSON
value's text), rendered for Spark and run on a local session: the same answers as DuckDB's, for
texts that do and do not read as numbers, dates, timestamps and booleans, with blanks around them,
overflowing, or not JSON at all. Every case runs in one statement per check."""

from __future__ import annotations

import math
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING

import duckdb
import pytest
from sqlglot import exp

from gristmill.sql.render import render
from gristmill.sql.value_checks import json_text, json_type, try_cast
from tests.support.spark_compare import described, duckdb_connection
from tests.support.spark_local import local_spark

JUNK = ["", " ", "abc", "NULL"]
TEXTS = {
    "number": [
        *JUNK,
        "12",
        " 12 ",
        "+5",
        "-0",
        "1e3",
        "12.5",
        "0x1F",
        "1_000",
        "99999999999",
        "007",
        "1.005",
    ],
    "special": ["NaN", "inf", "-Infinity", "-9223372036854775809", "32768"],
    "date": [*JUNK, "2024-02-29", "2024-02-30", "2024-1-5", " 2024-01-05", "20240105", "2024-01-05T10:00:00"],
    "timestamp": [
        "2024-01-05 10:00:00",
        "2024-01-05 10:00:00.123456",
        "2024-01-05 10:00:00+02",
        "2024-01-05 25:00",
    ],
    "boolean": [*JUNK, "true", "TRUE ", "t", "yes", "on", "1", "0", "false", "n", "12"],
}
TYPES = {
    "INTEGER": ["number", "special"],
    "SMALLINT": ["number", "special"],
    "BIGINT": ["number", "special"],
    "DOUBLE": ["number", "special"],
    "DECIMAL(9,2)": ["number", "special"],
    "DATE": ["date", "timestamp"],
    "TIMESTAMP": ["date", "timestamp"],
    "BOOLEAN": ["boolean"],
}

_LOOSE_INTEGERS = {
    "12.5": (13, None),
    "1.005": (1, None),
    "1e3": (1000, None),
    "0x1F": (31, None),
    "1_000": (1000, None),
}
KNOWN = {
    "INTEGER": _LOOSE_INTEGERS,
    "SMALLINT": _LOOSE_INTEGERS,
    "BIGINT": _LOOSE_INTEGERS,
    "DOUBLE": {"1_000": (1000.0, None)},
    "DECIMAL(9,2)": {"1_000": (Decimal("1000.00"), None)},
    "BOOLEAN": {"TRUE ": (None, True)},
}
"""Texts DuckDB's TRY_CAST reads and Spark's does not (or the other way round): (DuckDB, Spark).
A load's contract is not affected — a value fits a column only when it reads back as it came,
which none of these does on either engine — but a model's ``try_cast`` gives NULL there on Spark
(docs/engines.md lists them)."""

JSONS = [
    *('{"a": 1}', "[1, 2]", '"text"', "1", "-1", "1.5", "1e3", "18446744073709551615", "true"),
    *("null", " null ", '"null"'),
    *(' {"a": [true]} ', "not json", '"quoted \\"inside\\""', "-0"),
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


def _values(texts: list[str]) -> exp.Select:
    rows = [
        exp.Tuple(expressions=[exp.Literal.number(i), exp.Literal.string(t)]) for i, t in enumerate(texts)
    ]
    values = exp.Values(
        expressions=rows, alias=exp.TableAlias(this=exp.to_identifier("v"), columns=["i", "s"])
    )
    return exp.select("*").from_(values)


def _same(a: object, b: object) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def _query(checks: list[exp.Expr], texts: list[str]) -> exp.Select:
    columns = [exp.alias_(c, f"c{n}") for n, c in enumerate(checks)]
    return exp.select("i", *columns).from_(_values(texts).subquery("v")).order_by("i")


def _both(spark, ddb, checks, texts: list[str], spark_checks=None) -> tuple[list, list]:
    """The checks' columns from DuckDB and Spark (``spark_checks``: the same checks over Spark's
    spelling of the input, where it differs)."""
    expected = described(ddb.execute(render(_query(checks, texts), "duckdb")).fetch_arrow_table())
    spark_query = _query(spark_checks or checks, texts)
    return expected, described(spark.sql(render(spark_query, "spark")).toArrow())


@pytest.mark.parametrize("to", TYPES)
def test_a_checked_cast_of_text_gives_what_duckdb_gives(spark, ddb, to: str) -> None:
    texts = [t for family in TYPES[to] for t in TEXTS[family]]
    cast = try_cast(exp.column("s"), exp.DataType.build(to))
    (kinds, expected), (got_kinds, got) = _both(spark, ddb, [cast], texts)
    assert got_kinds == kinds
    differ = {texts[e[0]]: (e[1], g[1]) for e, g in zip(expected, got, strict=True) if not _same(e[1], g[1])}
    assert differ == KNOWN.get(to, {}), f"{to}: text -> (DuckDB, Spark)"


@pytest.mark.parametrize("to", ["INTEGER", "SMALLINT", "DECIMAL(4,1)", "BOOLEAN", "VARCHAR"])
def test_a_checked_cast_of_a_number_gives_what_duckdb_gives(spark, ddb, to: str) -> None:
    numbers = ["273", "70000", "3.5", "-2.5", "0", "123.456"]
    value = exp.cast(exp.column("s"), "DOUBLE")
    (kinds, expected), (got_kinds, got) = _both(
        spark, ddb, [try_cast(value, exp.DataType.build(to))], numbers
    )
    differ = {numbers[e[0]]: (e[1], g[1]) for e, g in zip(expected, got, strict=True) if e != g}
    assert got_kinds == kinds
    assert differ == {}, f"{to}: number -> (DuckDB, Spark)"


def test_json_kinds_and_texts_are_duckdbs(spark, ddb) -> None:
    """``json_type`` names each JSON value's kind as DuckDB does, ``json_extract_string(v, '$')``
    gives a string's text without quotes; text that is not JSON has no kind (checked first on
    DuckDB, where the cast to JSON raises)."""
    valid = [j for j in JSONS if j != "not json"]
    value = exp.cast(exp.column("s"), "JSON")  # on Spark a JSON column is a STRING
    text = exp.column("s")
    checks, spark_checks = [json_type(value), json_text(value)], [json_type(text), json_text(text)]
    (_, expected), (_, got) = _both(spark, ddb, checks, valid, spark_checks)
    assert got == expected
    spark_only = render(exp.select(json_type(exp.Literal.string("not json"))), "spark")
    assert spark.sql(spark_only).collect()[0][0] is None
