"""The SQL a dbt test becomes, per generic test kind, against golden files for every dialect.

Each query is the one stored in a check (its failing rows, or dbt's own rows where a config counts
them); ``this`` stands for the tested asset, as in every query check."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlglot
from sqlglot import exp

from gristmill.project.dbt.tests import dbt_utils, generic
from gristmill.project.dbt.tests.emit import emit
from gristmill.project.dbt.tests.query import TestQuery
from gristmill.project.dialect import PROJECT_DIALECT
from tests.golden import assert_golden

WHERE = "status = 'paid'"

CASES: dict[str, Callable[[], exp.Expr]] = {
    "not_null": lambda: generic.not_null_test("customer_id").failing_rows(None),
    "not_null_where": lambda: generic.not_null_test("customer_id").failing_rows(WHERE),
    "unique": lambda: generic.unique_test(("id",)).failing_rows(None),
    "unique_dbt_rows": lambda: generic.unique_test(("id",)).dbt_rows(WHERE),
    "unique_combination_of_columns": lambda: generic.unique_test(("id", "day")).failing_rows(None),
    "unique_combination_of_columns_dbt_rows": lambda: generic.unique_test(("id", "day")).dbt_rows(None),
    "accepted_values": lambda: generic.accepted_values_test("status", ["paid", "open"], True).failing_rows(
        None
    ),
    "accepted_values_dbt_rows": lambda: generic.accepted_values_test("status", ["paid"], True).dbt_rows(None),
    "accepted_values_unquoted": lambda: generic.accepted_values_test("tier", [1, 2], False).failing_rows(
        None
    ),
    "relationships": lambda: generic.relationships_test("customer_id", "main.customers", "id").failing_rows(
        None
    ),
    "unique_constraint": lambda: generic.composite_unique_constraint(("id", "day")).failing_rows(None),
    "accepted_range": lambda: dbt_utils.accepted_range(
        "amount", {"min_value": 0, "max_value": 100}
    ).failing_rows(None),
    "accepted_range_exclusive": lambda: dbt_utils.accepted_range(
        "amount", {"min_value": 0, "inclusive": False}
    ).failing_rows(WHERE),
    "not_null_proportion": lambda: dbt_utils.not_null_proportion(
        "amount", {"at_least": 0.95, "group_by_columns": ["status"]}
    ).failing_rows(None),
    "at_least_one": lambda: dbt_utils.at_least_one("amount", {}).failing_rows(None),
    "at_least_one_grouped": lambda: dbt_utils.at_least_one(
        "amount", {"group_by_columns": ["status"]}
    ).failing_rows(None),
    "not_constant": lambda: dbt_utils.not_constant("amount", {}).failing_rows(None),
    "not_empty_string": lambda: dbt_utils.not_empty_string("status", {}).failing_rows(None),
    "not_empty_string_untrimmed": lambda: dbt_utils.not_empty_string(
        "status", {"trim_whitespace": False}
    ).failing_rows(None),
    "expression_is_true": lambda: dbt_utils.expression_is_true(
        None, {"expression": "amount >= 0"}
    ).failing_rows(None),
    "expression_is_true_column": lambda: dbt_utils.expression_is_true(
        "amount", {"expression": ">= 0"}
    ).failing_rows(None),
    "not_accepted_values": lambda: dbt_utils.not_accepted_values("status", {"values": ["void"]}).failing_rows(
        None
    ),
    "recency": lambda: dbt_utils.recency(
        {"datepart": "day", "field": "updated_at", "interval": 3}
    ).failing_rows(None),
    "recency_date": lambda: dbt_utils.recency(
        {"datepart": "day", "field": "updated_at", "interval": 1, "ignore_time_component": True}
    ).failing_rows(None),
    "equal_rowcount": lambda: dbt_utils.compare_counts(
        "main.raw_orders", {}, fewer=False, expand=True
    ).failing_rows(None),
    "equal_rowcount_grouped": lambda: dbt_utils.compare_counts(
        "main.raw_orders", {"group_by_columns": ["status"]}, fewer=False, expand=False
    ).failing_rows(None),
    "fewer_rows_than": lambda: dbt_utils.compare_counts(
        "main.raw_orders", {}, fewer=True, expand=True
    ).failing_rows(None),
    "cardinality_equality": lambda: dbt_utils.cardinality_equality(
        "customer_id", "main.customers", "id"
    ).failing_rows(None),
    "sequential_values": lambda: dbt_utils.sequential_values("id", {"interval": 1}).failing_rows(None),
    "sequential_values_dates": lambda: dbt_utils.sequential_values(
        "day", {"datepart": "day", "group_by_columns": ["status"]}
    ).failing_rows(None),
    "relationships_where": lambda: dbt_utils.relationships_where(
        "customer_id", "main.customers", "id", {"from_condition": "amount > 0"}
    ).failing_rows(None),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_generic_test_sql(name: str) -> None:
    assert_golden(f"dbt_tests/{name}", CASES[name]())


def test_a_counted_test_returns_dbt_rows_only_when_its_condition_holds() -> None:
    """error_if / warn_if / fail_calc / limit: dbt's rows, counted, against dbt's conditions."""
    config = {"error_if": ">10", "warn_if": ">2", "limit": 50, "fail_calc": "count(*)"}
    error, warn = emit(generic.not_null_test("amount"), "main.orders", config, "amount_filled", "x.yml:1")
    assert (error.severity, warn.severity) == ("error", "warn")
    assert_golden("dbt_tests/counted_error", sqlglot.parse_one(error.params["sql"], read=PROJECT_DIALECT))
    assert_golden("dbt_tests/counted_warn", sqlglot.parse_one(warn.params["sql"], read=PROJECT_DIALECT))


def test_a_row_test_with_where_is_one_expression_check() -> None:
    [check] = emit(
        TestQuery(row=exp.column("amount").is_(exp.null())), "main.orders", {"where": WHERE}, "n", "x"
    )
    assert check.kind == "expression"
    assert check.params["sql"] == "NOT (status = 'paid') IS TRUE OR NOT (amount IS NULL) IS TRUE"
