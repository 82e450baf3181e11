"""``gristmill test``: the table of tests, the rows that differ, exit codes, choosing tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import Cli

MakeProject = Callable[..., Path]

FILES = {
    "sources/crm.yml": "kind: files\npath: data/customers.csv\ntables:\n  customer: {}\n",
    "models/staging/customer.sql": "select customer_id, upper(country) as country from raw.crm__customer\n",
    "models/marts/countries.sql": (
        "select country, count(*) as customers from staging.customer group by all order by customers desc\n"
    ),
}
TESTS = """
customer_upper_cases_countries:
  model: staging.customer
  description: countries are upper case
  given:
    raw.crm__customer:
      csv: |
        customer_id,country
        1,Norway
        2,chile
  expect:
    rows:
      - {customer_id: 1, country: NORWAY}
      - {customer_id: 2, country: CHILE}

countries_count_customers:
  model: marts.countries
  given:
    staging.customer: [{country: "NO"}, {country: "NO"}, {country: CL}]
  expect: [{country: "NO", customers: 2}, {country: CL, customers: 1}]
"""


def make(make_project: MakeProject, tests: str = TESTS) -> Path:
    return make_project({**FILES, "tests/units.yml": tests})


def test_the_demo_project_ships_tests_that_pass_before_any_run(demo: Path, cli: Cli) -> None:
    code, out = cli("test", project=demo)
    assert code == 0, out
    assert "fct_invoice_line_revenue_is_price_times_quantity" in out
    assert "OK  4 passed" in out
    assert not (demo / ".gristmill").exists()


def test_passing_tests_print_a_table_and_exit_zero(make_project: MakeProject, cli: Cli) -> None:
    code, out = cli("test", project=make(make_project))
    assert code == 0, out
    assert "Unit tests" in out
    assert "customer_upper_cases_countries" in out and "countries are upper case" in out
    assert "OK  2 passed" in out


def test_a_failure_shows_where_why_and_the_rows_that_differ(make_project: MakeProject, cli: Cli) -> None:
    root = make(make_project, TESTS.replace("{country: CL, customers: 1}", "{country: CL, customers: 3}"))
    code, out = cli("test", project=root)
    assert code == 1
    assert "✗ countries_count_customers (tests/units.yml:15, marts.countries)" in out
    assert "1 row expected but not returned; 1 row returned but not expected" in out
    lines = [" ".join(line.split()) for line in out.splitlines()]
    assert "missing │ CL │ 3" in lines
    assert "unexpected │ CL │ 1" in lines
    assert "FAILED  1 passed, 1 failed" in out


def test_an_ordered_failure_shows_expected_above_returned(make_project: MakeProject, cli: Cli) -> None:
    tests = TESTS.replace(
        'expect: [{country: "NO", customers: 2}, {country: CL, customers: 1}]',
        'expect: {ordered: true, rows: [{country: CL, customers: 1}, {country: "NO", customers: 2}]}',
    )
    code, out = cli("test", "countries_count_customers", project=make(make_project, tests))
    assert code == 1
    assert "the rows match but in another order (first difference at row 1)" in out
    lines = [" ".join(line.split()) for line in out.splitlines()]
    assert lines.index("1 │ expected │ CL │ 1") + 1 == lines.index("│ returned │ NO │ 2")


def test_a_test_that_cannot_run_is_an_error_and_the_run_exits_one(
    make_project: MakeProject, cli: Cli
) -> None:
    tests = TESTS.replace(
        '[{country: "NO"}, {country: ', '[{country: "NO", x: 1}, {country: "NO", x: a}, {country: '
    )
    code, out = cli("test", project=make(make_project, tests))
    assert code == 1
    assert 'tests/units.yml:18: given staging.customer: column "x" mixes values' in out
    assert "FAILED  1 passed, 1 error" in out


def test_choose_tests_by_name_or_by_model(make_project: MakeProject, cli: Cli) -> None:
    root = make(make_project)
    code, out = cli("test", "countries_count_customers", project=root)
    assert code == 0 and "OK  1 passed" in out and "customer_upper_cases_countries" not in out
    code, out = cli("test", "-s", "staging.customer", project=root)
    assert code == 0 and "OK  1 passed" in out and "countries_count_customers" not in out
    code, out = cli("test", "-s", "staging.customer+", project=root)
    assert code == 0 and "OK  2 passed" in out
    code, out = cli("test", "countries_count_customer", project=root)
    assert code == 2
    assert 'error: no unit test named "countries_count_customer"' in out
    assert 'hint: did you mean "countries_count_customers"?' in out


def test_mistakes_in_a_test_file_exit_two_naming_file_and_line(make_project: MakeProject, cli: Cli) -> None:
    code, out = cli(
        "test", project=make(make_project, TESTS.replace("model: marts.countries", "model: marts.country"))
    )
    assert code == 2
    assert 'error: tests/units.yml:16: test "countries_count_customers": no model "marts.country"' in out
    assert 'hint: did you mean "marts.countries"?' in out
    code, out = cli(
        "test", project=make(make_project, TESTS.replace("    staging.customer: [", "    staging.customr: ["))
    )
    assert code == 2
    assert "gives no rows for staging.customer, which marts.countries reads" in out


def test_rows_the_model_does_not_read_are_a_warning(make_project: MakeProject, cli: Cli) -> None:
    tests = TESTS.replace(
        "    staging.customer: [", "    raw.crm__customer: [{a: 1}]\n    staging.customer: ["
    )
    code, out = cli("test", project=make(make_project, tests))
    assert code == 0
    assert (
        "! countries_count_customers: tests/units.yml:18: given raw.crm__customer: marts.countries does not "
        "read it; these rows are not used" in " ".join(out.split())
    )


def test_a_project_without_tests_says_how_to_add_one(make_project: MakeProject, cli: Cli) -> None:
    code, out = cli("test", project=make_project(FILES))
    assert code == 0 and "No unit tests yet: add tests/<name>.yml." in out


def test_help_describes_the_command(cli: Cli) -> None:
    code, out = cli("--help")
    assert " test " in out
    code, out = cli("test", "--help")
    assert code == 0 and "Usage: gristmill test" in out and "--select" in out
