"""An engine's error, located in the model's file: the names and fragments Spark, DuckDB and
PostgreSQL quote, found in the parsed model (messages as the engines write them)."""

from __future__ import annotations

import pytest

from gristmill.sql.locate import locate, without_rendered_position
from gristmill.sql.parse import parse_model

MODEL = (
    "-- doubled amounts\n"
    "select\n"
    "    o.order_id,\n"
    "    o.amount,\n"
    "    upper(o.name) as name,\n"
    "    amout * 2 as doubled,\n"
    "    foo_bar(o.amount) as f,\n"
    "    order_id + date '2024-01-01' as later\n"
    "from raw.orders as o\n"
)
"""The model's SQL starts at line 3 of its file (a header above it)."""


@pytest.mark.parametrize(
    ("message", "where"),
    [
        (
            "[UNRESOLVED_COLUMN.WITH_SUGGESTION] A column, variable, or function parameter with name"
            " `amout` cannot be resolved. Did you mean one of the following? [`o`.`amount`, `o`.`name`]."
            " SQLSTATE: 42703; line 1 pos 150;",
            (8, 5),
        ),
        (
            "[UNRESOLVED_ROUTINE] Cannot resolve routine `FOO_BAR` on search path [`system`.`builtin`]."
            " SQLSTATE: 42883; line 1 pos 7",
            (9, 5),
        ),
        (
            '[DATATYPE_MISMATCH.UNEXPECTED_INPUT_TYPE] Cannot resolve "date_add(CAST(2024-01-01 AS DATE),'
            ' order_id)" due to data type mismatch: The second parameter requires the ("INT") type, however'
            ' "order_id" has the type "BIGINT".',
            (10, 5),
        ),
        (
            'Binder Error: Referenced column "amout" not found in FROM clause!\nCandidate bindings: "amount"',
            (8, 5),
        ),
        ('Catalog Error: Scalar Function with name foo_bar does not exist!\nDid you mean "floor"?', (9, 5)),
        ("Binder Error: No function matches the given name and argument types '+(BIGINT, DATE)'.", (10, 5)),
        ('column "amout" does not exist', (8, 5)),
        ("function foo_bar(numeric) does not exist", (9, 5)),
        ("operator does not exist: bigint + date", (10, 5)),
    ],
    ids=[
        "spark_column",
        "spark_function",
        "spark_type",
        "duckdb_column",
        "duckdb_function",
        "duckdb_operator",
        "postgres_column",
        "postgres_function",
        "postgres_operator",
    ],
)
def test_an_engine_error_is_located_in_the_model_file(message: str, where: tuple[int, int]) -> None:
    parsed = parse_model(MODEL, file="models/marts/x.sql", first_line=3)
    assert locate(parsed, message) == where


def test_a_message_naming_nothing_in_the_model_is_not_located() -> None:
    parsed = parse_model(MODEL, file="models/marts/x.sql", first_line=3)
    assert locate(parsed, "[DIVIDE_BY_ZERO] Division by zero. SQLSTATE: 22012") is None
    assert locate(parsed, 'column "nowhere" does not exist') is None


def test_the_rendered_sql_position_is_left_out() -> None:
    spark = "[UNRESOLVED_ROUTINE] Cannot resolve routine `X`. SQLSTATE: 42883; line 1 pos 7"
    assert (
        without_rendered_position(spark, located=False) == "[UNRESOLVED_ROUTINE] Cannot resolve routine `X`."
    )
    duck = 'Catalog Error: no "x"!\n\nLINE 1: SELECT x(1) FROM t\n       ^'
    assert without_rendered_position(duck, located=True) == 'Catalog Error: no "x"!'
    assert without_rendered_position(duck, located=False) == duck
