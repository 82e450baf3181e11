"""The filter grammar builds sqlglot conditions with typed literals, or names the bad parameter."""

from __future__ import annotations

import pytest

from gristmill.server.reading import ServedColumn, ServedRelation
from gristmill.server.tables.grammar import BadParameter, ordering, selection, where

ITEMS = ServedRelation(
    "marts",
    "items",
    "table",
    (
        ServedColumn("id", "BIGINT"),
        ServedColumn("amount", "DECIMAL(18,2)"),
        ServedColumn("country", "VARCHAR"),
        ServedColumn("day", "DATE"),
        ServedColumn("tags", "VARCHAR[]"),
    ),
)


def sql(params: list[tuple[str, str]]) -> str:
    built = where(ITEMS, params)
    assert built is not None
    return built.sql(dialect="duckdb")


def test_operators_build_typed_literals() -> None:
    assert sql([("amount", "gt.10.5")]) == '"amount" > 10.5'
    assert sql([("country", 'in.(DE,"F,R")')]) == "\"country\" IN ('DE', 'F,R')"
    assert sql([("country", "ilike.*rock*")]) == "\"country\" ILIKE '%rock%'"
    assert sql([("day", "gte.2026-01-01")]) == "\"day\" >= CAST('2026-01-01' AS DATE)"
    assert sql([("tags", "not.is.null")]) == 'NOT ("tags" IS NULL)'
    assert sql([("or", "(id.eq.1,and(id.gt.5,country.eq.DE))")]) == (
        '("id" = 1 OR ("id" > 5 AND "country" = \'DE\'))'
    )


def test_text_stays_a_string_literal() -> None:
    assert sql([("country", "eq.'; DROP TABLE x; --")]) == "\"country\" = '''; DROP TABLE x; --'"


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ([("nope", "eq.1")], "nope"),
        ([("id", "eq.1 OR 1=1")], "id"),
        ([("amount", "eq.NaN")], "amount"),
        ([("day", "eq.yesterday")], "day"),
        ([("tags", "eq.x")], "tags"),
        ([("id", "like.1*")], "id"),
        ([("id", "in.1,2")], "id"),
        ([("or", "(id.eq.1")], "or"),
        ([("country", "eq.a\x00b")], "country"),
    ],
)
def test_bad_filters_name_their_parameter(params: list[tuple[str, str]], named: str) -> None:
    with pytest.raises(BadParameter) as caught:
        where(ITEMS, params)
    assert caught.value.parameter == named


def test_select_and_order_check_columns() -> None:
    assert [c.name for c in selection(ITEMS, "country,id")] == ["country", "id"]
    assert [(c.name, desc) for c, desc in ordering(ITEMS, "amount.desc,id")] == [
        ("amount", True),
        ("id", False),
    ]
    for bad in ("nope", "id.up", "tags"):
        with pytest.raises(BadParameter):
            ordering(ITEMS, bad)
