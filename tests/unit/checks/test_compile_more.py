"""range, regex, format, row_count, freshness, expression, aggregate and duplicates: exact counts
against planted violations, NULL handling, severities, declaration errors, and one scan per table."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlglot import exp

from gristmill.checks import compile_checks
from gristmill.errors import ConfigError, CycleError
from gristmill.project.checks import parse_check_items
from gristmill.workspace import Workspace

ORDERS = """id,code,email,amount,status,ip,phone,ref,day
1,ABC,a@x.io,10,paid,10.0.0.1,+4915112345678,0b7e9a4c-3f1d-4e8a-9c2b-5d6f7a8b9c0d,2024-01-31
2,AB1,bad-email,-5,refund,300.1.1.1,0151 1234,not-a-uuid,2024-13-01
3,XYZ,,2000,paid,,+1,,2024-02-29
4,,c@y.org,,open,192.168.0.1,,,
5,abc,d@z.com,1000,paid,1.2.3.4,+442071234567,0B7E9A4C-3F1D-4E8A-9C2B-5D6F7A8B9C0D,24-01-01
6,QQQ,e@@x.com,0,paid,8.8.8.8,+33 1 23,0b7e9a4c3f1d4e8a9c2b5d6f7a8b9c0d,2024-06-15
"""
# amount: 10, -5, 2000, NULL, 1000, 0 -> sum 3005, mean 601, min -5, max 2000
SOURCE = "kind: files\ntables:\n  orders: {path: data/orders.csv}\n"


def run_checks(make_project: Callable[..., Path], checks: str, data: str = ORDERS) -> dict[str, int]:
    root = make_project(
        {
            "sources/src.yml": SOURCE,
            "data/orders.csv": data,
            "checks/orders.yml": "raw.src__orders:\n" + checks,
        }
    )
    run = Workspace(root).run()
    return {c.check.name: c.failures for s in run.steps for c in s.checks}


def declaration_error(make_project: Callable[..., Path], checks: str) -> ConfigError:
    root = make_project(
        {
            "sources/src.yml": SOURCE,
            "data/orders.csv": ORDERS,
            "checks/orders.yml": "raw.src__orders:\n" + checks,
        }
    )
    with pytest.raises(ConfigError) as caught:
        Workspace(root).plan()
    return caught.value


def test_range_counts_rows_out_of_bounds_and_ignores_nulls(make_project: Callable[..., Path]) -> None:
    found = run_checks(
        make_project,
        "  - range: {column: amount, min: 0, max: 1000, severity: warn}\n"
        "  - between: {column: amount, min: 0, max: 1000, exclusive: true, severity: warn}\n"
        "  - range: {column: amount, min: 0, severity: warn}\n"
        "  - range: {column: amount, max: 10, exclusive: true, severity: warn}\n"
        "  - range: {column: amount, min: -5, max: 2000}\n",
    )
    assert found["range(amount 0..1000)"] == 2  # -5 and 2000; the NULL amount is not a failure
    assert found["range(amount 0..1000 exclusive)"] == 4  # also 0 and 1000
    assert found["range(amount >= 0)"] == 1
    assert found["range(amount < 10)"] == 3  # 10, 2000, 1000
    assert found["range(amount -5..2000)"] == 0


def test_range_of_dates(make_project: Callable[..., Path]) -> None:
    data = "id,day\n1,2024-01-01\n2,2025-06-01\n3,\n"
    found = run_checks(
        make_project, "  - range: {column: day, min: 2024-06-01, max: '2025-12-31'}\n", data=data
    )
    assert found["range(day 2024-06-01..2025-12-31)"] == 1


def test_regex_and_formats(make_project: Callable[..., Path]) -> None:
    found = run_checks(
        make_project,
        "  - regex: {column: code, pattern: '^[A-Z]{3}$', severity: warn}\n"
        "  - regex: {column: id, pattern: '[0-9]'}\n"
        "  - format: {columns: [email], as: email, severity: warn}\n"
        "  - format: {column: ip, as: ipv4, severity: warn}\n"
        "  - format: {column: phone, as: phone, severity: warn}\n"
        "  - format: {column: ref, as: uuid, severity: warn}\n"
        "  - format: {column: day, as: iso_date, severity: warn}\n",
        data=ORDERS,
    )
    assert found["regex(code '^[A-Z]{3}$')"] == 2  # AB1, abc; the empty code is NULL, not a failure
    assert found["regex(id '[0-9]')"] == 0  # an integer column is matched as text
    assert found["format(email as email)"] == 2  # bad-email, e@@x.com
    assert found["format(ip as ipv4)"] == 1  # 300.1.1.1
    assert found["format(phone as phone)"] == 3  # "0151 1234", "+1", "+33 1 23"
    assert found["format(ref as uuid)"] == 2  # not-a-uuid, the one without dashes
    assert found["format(day as iso_date)"] == 2  # month 13, two-digit year


def test_format_url(make_project: Callable[..., Path]) -> None:
    data = "id,site\n1,https://example.com/a?b=1\n2,http://localhost:8080\n3,example.com\n4,ftp://x.org\n5,\n"
    found = run_checks(make_project, "  - format: {column: site, as: url, severity: warn}\n", data=data)
    assert found["format(site as url)"] == 2


def test_row_count_fails_once_when_out_of_bounds(make_project: Callable[..., Path]) -> None:
    found = run_checks(
        make_project,
        "  - row_count: {min: 1, max: 6}\n"
        "  - row_count: {min: 10, severity: warn}\n"
        "  - row_count: {max: 6, exclusive: true, severity: warn}\n",
    )
    assert found == {"row_count(1..6)": 0, "row_count(>= 10)": 1, "row_count(< 6)": 1}


def test_freshness(make_project: Callable[..., Path]) -> None:
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    data = f"id,updated_at,old_at,day\n1,{now.isoformat(' ')},2020-01-01 00:00:00,2020-01-01\n2,,,\n"
    found = run_checks(
        make_project,
        "  - freshness: {column: updated_at, max_age: 2d}\n"
        "  - freshness: {column: old_at, max_age: 30m, severity: warn}\n"
        "  - freshness: {column: day, max_age: 1d, severity: warn}\n",
        data=data,
    )
    assert found["freshness(updated_at within 2d)"] == 0
    assert found["freshness(old_at within 30m)"] == 1
    assert found["freshness(day within 1d)"] == 1  # a DATE column works too


def test_expression_counts_rows_where_it_is_not_true(make_project: Callable[..., Path]) -> None:
    found = run_checks(
        make_project,
        "  - expression: {sql: \"amount >= 0 or status = 'refund'\", name: non_negative, severity: warn}\n"
        "  - expression: {sql: 'amount < 1500', severity: warn}\n"
        "  - expression: {sql: 'coalesce(amount, 0) < 5000'}\n",
    )
    assert found["expression(non_negative)"] == 1  # only the NULL amount: NULL is not true
    assert found["expression(amount < 1500)"] == 2  # 2000 and the NULL amount
    assert found["expression(coalesce(amount, 0) < 5000)"] == 0


def test_aggregate_bounds(make_project: Callable[..., Path]) -> None:
    found = run_checks(
        make_project,
        "  - aggregate: {column: amount, function: mean, min: 10, max: 20, severity: warn}\n"
        "  - aggregate: {column: amount, function: avg, min: 600, max: 602}\n"
        "  - aggregate: {column: amount, function: sum, min: 3000, max: 3005}\n"
        "  - aggregate: {column: amount, function: min, min: 0, severity: warn}\n"
        "  - aggregate: {column: amount, function: max, max: 2000}\n"
        "  - aggregate: {column: amount, function: stddev, max: 1, severity: warn}\n",
    )
    assert found == {
        "aggregate(mean(amount) 10..20)": 1,
        "aggregate(avg(amount) 600..602)": 0,
        "aggregate(sum(amount) 3000..3005)": 0,
        "aggregate(min(amount) >= 0)": 1,
        "aggregate(max(amount) <= 2000)": 0,
        "aggregate(stddev(amount) <= 1)": 1,
    }


def test_no_values_fail_aggregate_and_freshness_checks(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "sources/src.yml": SOURCE,
            "data/orders.csv": ORDERS,
            "models/marts/none.sql": "-- checks:\n"
            "--   - aggregate: {column: amount, function: sum, min: 0, severity: warn}\n"
            "--   - freshness: {column: seen_at, max_age: 1d, severity: warn}\n"
            "--   - row_count: {max: 0}\n"
            "select amount, cast(null as timestamp) as seen_at from raw.src__orders where amount > 5000\n",
        }
    )
    run = Workspace(root).run()
    assert run.ok
    [step] = [s for s in run.steps if s.asset == "marts.none"]
    assert [(c.check.name, c.failures) for c in step.checks] == [
        ("aggregate(sum(amount) >= 0)", 1),  # the sum of no values is NULL: nothing to vouch for
        ("freshness(seen_at within 1d)", 1),
        ("row_count(<= 0)", 0),
    ]


def test_duplicates_is_unique_over_columns(make_project: Callable[..., Path]) -> None:
    found = run_checks(
        make_project,
        "  - duplicates: {columns: [status], severity: warn}\n  - duplicates: [status, code]\n",
    )
    assert found == {"unique(status)": 3, "unique(status, code)": 0}  # paid x4; every pair differs


def test_a_warning_publishes_and_an_error_blocks(make_project: Callable[..., Path], cli: object) -> None:
    root = make_project(
        {
            "sources/src.yml": SOURCE,
            "data/orders.csv": ORDERS,
            "checks/orders.yml": "raw.src__orders:\n  - range: {column: amount, min: 0, severity: warn}\n",
        }
    )
    code, out = cli("run", project=root)  # type: ignore[operator]
    assert code == 0
    assert "! raw.src__orders: range(amount >= 0) warns on 1 row (checks/orders.yml:2)" in out
    assert Workspace(root).query("select count(*) as n from raw.src__orders").column("n")[0].as_py() == 6

    (root / "checks" / "orders.yml").write_text(
        "raw.src__orders:\n  - range: {column: amount, min: 0, max: 1000}\n  - row_count: {min: 10}\n"
    )
    (root / "data" / "orders.csv").write_text(ORDERS + "7,ABC,a@x.io,5,paid,1.1.1.1,,,\n")
    code, out = cli("run", project=root)  # type: ignore[operator]
    assert code == 1
    assert "range(amount 0..1000) failed for 2 rows" in out
    assert "row_count(>= 10) failed for 1 row" in out
    assert Workspace(root).query("select count(*) as n from raw.src__orders").column("n")[0].as_py() == 6


@pytest.mark.parametrize(
    ("checks", "location", "message"),
    [
        (
            "  - range: {column: amount, min: 0}\n  - range:\n      column: amount\n      maxx: 3\n",
            5,
            'did you mean "max"',
        ),
        ("  - range: {column: amount}\n", 2, 'range needs "min", "max" or both'),
        ("  - range: {column: amount, min: 5, max: 1}\n", 2, 'is above "max"'),
        ("  - between: {column: amount, min: [1]}\n", 2, 'between "min" must be'),
        ("  - regex: {column: code, pattern: '[A-Z'}\n", 2, "is not valid"),
        ("  - regex: {column: code}\n", 2, 'regex needs "pattern"'),
        ("  - format: {column: email, as: emial}\n", 2, 'did you mean "email"'),
        ("  - row_count: {column: id, min: 1}\n", 2, 'unknown option "column" for row_count'),
        ("  - row_count: {min: 1.5}\n", 2, "whole number"),
        ("  - row_count\n", 2, "needs options"),
        ("  - freshness: {column: day, max_age: soon}\n", 2, "is not a duration"),
        ("  - expression: {sql: 'amount >= '}\n", 2, "is not valid SQL"),
        ("  - expression: {sql: 'sum(amount) > 0'}\n", 2, "aggregate check"),
        ("  - expression: {sql: 'amount > (select 1)'}\n", 2, "not a query"),
        ("  - aggregate: {column: amount, function: median, max: 1}\n", 2, "unknown aggregate function"),
        ("  - aggregat: {column: amount}\n", 2, 'did you mean "aggregate"'),
        ("  - query: {sql: 'amount > 0'}\n", 2, "must be a query"),
        ("  - query: {sql: 'select * from raw.src__order'}\n", 2, 'did you mean "raw.src__orders"'),
        ("  - range: {column: amont, min: 0}\n", 2, 'column "amont" does not exist'),
        ("  - expression: {sql: 'amont > 0'}\n", 2, 'column "amont" does not exist'),
    ],
)
def test_declaration_errors_name_the_line(
    make_project: Callable[..., Path], checks: str, location: int, message: str
) -> None:
    error = declaration_error(make_project, checks)
    assert error.location == f"checks/orders.yml:{location}"
    assert message in str(error)


ALL_KINDS = [
    {"not_null": "email"},
    {"accepted_values": {"column": "status", "values": ["paid"]}},
    {"range": {"column": "amount", "min": 0}},
    {"between": {"column": "amount", "min": 0, "max": 9}},
    {"regex": {"column": "code", "pattern": "^[A-Z]+$"}},
    {"format": {"column": "email", "as": "email"}},
    {"row_count": {"min": 1}},
    {"freshness": {"column": "day", "max_age": "1d"}},
    {"expression": {"sql": "amount > 0"}},
    {"aggregate": {"column": "amount", "function": "stddev", "max": 3}},
]


def test_one_scan_per_table() -> None:
    checks = parse_check_items(ALL_KINDS, "raw.orders", "checks/orders.yml", 1)
    queries = compile_checks(checks, exp.to_table)
    assert len(queries) == 1
    assert len(queries[0].checks) == len(checks) == 10
    # One group-by per key, one anti-join per reference, one count per custom query.
    joined = parse_check_items(
        [
            *ALL_KINDS,
            {"unique": "id"},
            {"duplicates": ["id", "code"]},
            {"relationships": {"column": "id", "to": "raw.x.id"}},
            {"query": {"sql": "select * from this where amount > 5"}},
        ],
        "raw.orders",
        "checks/orders.yml",
        1,
    )
    assert len(compile_checks(joined, exp.to_table)) == 5


def test_query_counts_the_rows_it_returns_and_shows_them(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "sources/src.yml": SOURCE,
            "data/orders.csv": ORDERS,
            "data/refunds.csv": "order_id,amount\n2,5\n3,10\n4,10\n9,1\n",
            "sources/more.yml": "kind: files\ntables:\n  refunds: {path: data/refunds.csv}\n",
            "checks/orders.yml": "raw.src__orders:\n"
            "  - query:\n"
            "      name: refund_above_amount\n"
            "      sql: |\n"
            "        with r as (select order_id, amount from raw.more__refunds)\n"
            "        select o.id, o.amount, r.amount as refunded\n"
            "        from this o join r on r.order_id = o.id\n"
            "        where r.amount > coalesce(o.amount, 0)\n"
            "      severity: warn\n"
            "  - query: {sql: 'select * from this where id > 100'}\n",
        }
    )
    run = Workspace(root).run()
    found = {c.check.name: c for s in run.steps for c in s.checks}
    refund = found["query(refund_above_amount)"]
    assert refund.failures == 2  # order 2 (amount -5) and order 4 (no amount); 3 and 9 are fine
    assert sorted(r["id"] for r in refund.samples) == [2, 4]
    assert found["query(select * from this where id > 100)"].failures == 0


def test_values_are_literals_not_sql() -> None:
    checks = parse_check_items(
        [{"regex": {"column": "code", "pattern": "x'; drop table t; --"}}], "raw.orders", "f.yml", 1
    )
    [query] = compile_checks(checks, exp.to_table)
    sql = query.query.sql("duckdb")
    assert "'x''; drop table t; --'" in sql
    assert [type(e) for e in query.query.find_all(exp.Drop)] == []


def test_table_checks_read_no_columns_and_column_checks_do() -> None:
    checks = parse_check_items(ALL_KINDS, "raw.orders", "f.yml", 1)
    columns = {c.name: c.columns for c in checks}
    assert columns["row_count(>= 1)"] == ()
    assert columns["expression(amount > 0)"] == ("amount",)
    assert columns["freshness(day within 1d)"] == ("day",)
    assert columns["aggregate(stddev(amount) <= 3)"] == ("amount",)


def test_a_query_that_cannot_run_names_its_check(make_project: Callable[..., Path], cli: object) -> None:
    root = make_project(
        {
            "sources/src.yml": SOURCE,
            "data/orders.csv": ORDERS,
            "checks/orders.yml": "raw.src__orders:\n  - not_null: {column: id}\n",
        }
    )
    assert cli("run", project=root)[0] == 0  # type: ignore[operator]
    (root / "checks" / "orders.yml").write_text(
        "raw.src__orders:\n  - not_null: {column: id}\n"
        "  - query: {sql: 'select * from this where amout > 5', name: big}\n"
        "  - not_null: {column: emial, severity: warn}\n"
    )
    # Alone, the check fails by itself and the others still report.
    code, out = cli("check", project=root)  # type: ignore[operator]
    assert code == 1
    assert "query(big)" in out and "could not run" in out and "amout" in out
    assert 'column "emial" does not exist (checks/orders.yml:4); did you mean "email"?' in " ".join(
        line.strip(" │") for line in out.splitlines()
    )
    assert "1/3 checks passed" in out
    # In a build the new version is not published, and the error names the check.
    (root / "data" / "orders.csv").write_text(ORDERS + "7,ABC,a@x.io,5,paid,1.1.1.1,,,\n")
    (root / "checks" / "orders.yml").write_text(
        "raw.src__orders:\n  - not_null: {column: id}\n"
        "  - query: {sql: 'select * from this where amout > 5', name: big}\n"
    )
    code, out = cli("run", project=root)  # type: ignore[operator]
    assert code == 1
    assert "query(big) could not run" in out


def test_a_check_reading_what_is_built_from_its_asset_says_where_it_belongs(
    make_project: Callable[..., Path],
) -> None:
    root = make_project(
        {
            "sources/src.yml": SOURCE,
            "data/orders.csv": ORDERS,
            "models/marts/paid.sql": "select id, amount from raw.src__orders where status = 'paid'",
            "checks/orders.yml": "raw.src__orders:\n"
            "  - query:\n"
            "      name: paid_published\n"
            "      sql: select * from this o anti join marts.paid p using (id) where o.status = 'paid'\n",
        }
    )
    with pytest.raises(CycleError) as caught:
        Workspace(root).plan()
    assert (
        "query(paid_published) on raw.src__orders reads marts.paid, which is built from raw.src__orders"
        in str(caught.value)
    )
    assert caught.value.hint == "declare the check on marts.paid: it runs once both are built"
