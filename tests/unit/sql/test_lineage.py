"""Column lineage from one qualified tree: what each output column reads, and what changes it."""

from __future__ import annotations

import pytest

from gristmill.errors import SQLError
from gristmill.sql.lineage import ROWS, Analysis, analyse
from gristmill.sql.parse import parse_model

ORDERS = {"staging.orders": ["id", "customer_id", "amount", "status", "note"]}
MODEL = """
with paid as (
    select id, customer_id, amount * 2 as doubled, status from staging.orders where status <> 'void'
),
totals as (select customer_id, sum(doubled) as total, count(*) as n from paid group by 1)
select paid.id, paid.status, totals.total, totals.n, upper(paid.status) as shout
from paid left join totals using (customer_id)
"""


def reads(analysis: Analysis, column: str) -> set[str]:
    return {c for _, c in analysis.upstream_of(column)}


def test_each_column_reads_its_expression_and_the_columns_that_decide_its_rows() -> None:
    analysis = analyse(parse_model(MODEL, file="m.sql"), ORDERS)
    assert analysis.columns == ("id", "status", "total", "n", "shout")
    assert reads(analysis, "total") == {"amount", "customer_id", "status"}
    assert reads(analysis, "id") == {"id", "customer_id", "status"}
    assert reads(analysis, "n") == {"customer_id", "status"}
    assert "note" not in {c for t in analysis.traces.values() for _, c in t.reads}
    assert reads(analysis, ROWS) == {"customer_id", "status"}


def test_editing_one_expression_changes_only_that_columns_trace() -> None:
    before = analyse(parse_model(MODEL, file="m.sql"), ORDERS)
    after = analyse(parse_model(MODEL.replace("amount * 2", "amount * 3"), file="m.sql"), ORDERS)
    changed = {c for c in before.traces if before.traces[c].sql != after.traces[c].sql}
    assert changed == {"total"}
    filtered = analyse(parse_model(MODEL.replace("<> 'void'", "<> 'x'"), file="m.sql"), ORDERS)
    assert {c for c in before.traces if before.traces[c].sql != filtered.traces[c].sql} == {
        ROWS,
        "id",
        "status",
        "total",
        "n",
        "shout",
    }


def test_formatting_and_comments_do_not_change_traces() -> None:
    before = analyse(parse_model(MODEL, file="m.sql"), ORDERS)
    noisy = "-- a comment\n" + MODEL.replace("select", "SELECT\n   ").replace(" as ", "  AS  ")
    after = analyse(parse_model(noisy, file="m.sql"), ORDERS)
    assert {c: t.sql for c, t in before.traces.items()} == {c: t.sql for c, t in after.traces.items()}


def test_a_values_list_is_in_the_traces_of_what_reads_it() -> None:
    # A lookup written out in the model: editing one of its values rebuilds the model.
    model = (
        "select s.id, t.label from staging.orders s"
        " join (values ('paid', 'Paid')) as t(code, label) on s.status = t.code"
    )
    before = analyse(parse_model(model, file="m.sql"), ORDERS)
    after = analyse(parse_model(model.replace("'Paid'", "'Settled'"), file="m.sql"), ORDERS)
    assert before.traces["label"].sql != after.traces["label"].sql
    assert before.traces[ROWS].sql != after.traces[ROWS].sql  # the join's rows read the list too
    assert reads(after, "label") == {"status"}


def test_distinct_rows_depend_on_every_column() -> None:
    analysis = analyse(parse_model("select distinct status, note from staging.orders", file="m.sql"), ORDERS)
    assert reads(analysis, ROWS) == {"status", "note"}


def test_set_operations_trace_every_branch() -> None:
    sql = "select id, amount as x from staging.orders union all select id, customer_id from staging.orders"
    analysis = analyse(parse_model(sql, file="m.sql"), ORDERS)
    assert reads(analysis, "x") == {"amount", "customer_id"}


def test_an_unknown_column_names_file_line_and_column() -> None:
    with pytest.raises(SQLError) as caught:
        analyse(parse_model("select id,\n  amount_x from staging.orders", file="m.sql"), ORDERS)
    assert caught.value.location == "m.sql:2:3"
    assert "amount" in str(caught.value.hint)


def test_analysis_round_trips_through_json() -> None:
    analysis = analyse(parse_model(MODEL, file="m.sql"), ORDERS)
    assert Analysis.from_json(analysis.to_json()) == analysis


def test_a_star_over_an_unknown_table_has_no_traces() -> None:
    analysis = analyse(parse_model("select * from staging.orders", file="m.sql"), {"staging.orders": []})
    assert not analysis.exact


def test_rows_of_a_top_n_depend_on_the_ordering_column() -> None:
    sql = "select id, amount as a from staging.orders order by a desc limit 3"
    analysis = analyse(parse_model(sql, file="m.sql"), ORDERS)
    assert reads(analysis, ROWS) == {"amount"}
    assert reads(analysis, "id") == {"id", "amount"}


def test_subqueries_and_correlated_references_are_followed() -> None:
    sql = (
        "select o.id,\n"
        "  (select max(p.amount) from staging.orders p where p.customer_id = o.customer_id) as top\n"
        "from staging.orders o where o.status in (select status from staging.orders where note = 'x')"
    )
    analysis = analyse(parse_model(sql, file="m.sql"), ORDERS)
    assert reads(analysis, "top") >= {"amount", "customer_id", "status", "note"}
    assert reads(analysis, ROWS) == {"status", "note"}


def test_group_by_all_groups_by_every_plain_column() -> None:
    sql = "select status, upper(note) as n, sum(amount) as total from staging.orders group by all"
    analysis = analyse(parse_model(sql, file="m.sql"), ORDERS)
    assert reads(analysis, ROWS) >= {"status", "note"}
    assert reads(analysis, "total") == {"status", "note", "amount"}
