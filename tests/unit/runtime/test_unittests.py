"""Unit tests of models (tests/*.yml): a model's SQL on fixture rows in memory, compared with the
expected rows — what passes, what fails and how, types, order, and mistakes in the test files."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from gristmill.errors import ConfigError, SelectionError
from gristmill.project import load_project
from gristmill.runtime.unittests import UnitTestResult, run_unit_tests
from gristmill.workspace import Workspace

SOURCE = """
kind: files
path: data/*.csv
tables:
  invoice: {}
  customer: {}
"""
REVENUE = """
-- description: Revenue per customer; refunds are negative invoices.
select c.customer_id, c.country, sum(i.total) as revenue, count(*) as invoices
from staging.invoice i
join staging.customer c on c.customer_id = i.customer_id
group by all
"""
INVOICE = "select invoice_id, customer_id, total, invoiced_on from raw.shop__invoice\n"
CUSTOMER = "select customer_id, country from raw.shop__customer\n"

MakeProject = Callable[..., Path]


def project(make_project: MakeProject, tests: str, **more: str) -> Path:
    return make_project(
        {
            "sources/shop.yml": SOURCE,
            "models/staging/invoice.sql": INVOICE,
            "models/staging/customer.sql": CUSTOMER,
            "models/marts/fct_revenue.sql": REVENUE,
            "tests/revenue.yml": tests,
            **more,
        }
    )


def run(root: Path, *names: str, selection: tuple[str, ...] = ()) -> dict[str, UnitTestResult]:
    return {r.name: r for r in Workspace(root).test(names, selection).results}


def only(root: Path) -> UnitTestResult:
    [result] = run(root).values()
    return result


def error_of(root: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        Workspace(root).test()
    return caught.value


PASSING = """
revenue_sums_invoices:
  model: marts.fct_revenue
  description: two invoices and a refund
  given:
    staging.invoice:
      rows:
        - {invoice_id: 1, customer_id: 7, total: 10.5}
        - {invoice_id: 2, customer_id: 7, total: 4.5}
        - {invoice_id: 3, customer_id: 7, total: -5}
        - {invoice_id: 4, customer_id: 8, total: 3}
    staging.customer:
      rows:
        - {customer_id: 7, country: Norway}
        - {customer_id: 8, country: Chile}
  expect:
    rows:
      - {customer_id: 8, revenue: 3}
      - {customer_id: 7, revenue: 10}
"""


# --- passing and failing --------------------------------------------------------------------------


def test_a_passing_test_compares_only_the_expected_columns_in_any_order(make_project: MakeProject) -> None:
    root = project(make_project, PASSING)
    result = only(root)
    assert result.status == "passed", result.message
    assert (result.model, result.description) == ("marts.fct_revenue", "two invoices and a refund")
    assert result.columns == ("customer_id", "revenue")
    assert (result.expected_rows, result.returned_rows) == (2, 2)
    assert result.location == "tests/revenue.yml:1"


def test_tests_run_in_memory_before_any_run_and_leave_no_trace(make_project: MakeProject) -> None:
    root = project(make_project, PASSING)  # no data/*.csv at all: sources are never read
    assert only(root).passed
    assert not (root / ".gristmill").exists()


def test_a_failing_test_lists_exactly_the_missing_and_unexpected_rows(make_project: MakeProject) -> None:
    tests = PASSING.replace("{customer_id: 7, revenue: 10}", "{customer_id: 7, revenue: 15}").replace(
        "      - {customer_id: 8, revenue: 3}\n",
        "      - {customer_id: 8, revenue: 3}\n      - {customer_id: 9, revenue: 1}\n",
    )
    result = only(project(make_project, tests))
    assert result.status == "failed"
    assert result.missing == ((9, 1), (7, 15))  # in the order the test lists them
    assert result.unexpected == ((7, Decimal("10.0")),)
    assert result.message == (
        "2 rows expected but not returned; 1 row returned but not expected "
        "(expected 3 rows, the model returned 2)"
    )


def test_rows_are_a_multiset_each_copy_counts(make_project: MakeProject) -> None:
    tests = """
    copies:
      model: staging.customer
      given:
        raw.shop__customer: [{customer_id: 7, country: Norway}, {customer_id: 7, country: Norway}]
      expect: [{customer_id: 7, country: Norway}]
    """
    result = only(project(make_project, tests))
    assert result.status == "failed"
    assert (result.missing, result.unexpected) == ((), ((7, "Norway"),))


def test_expecting_no_rows_shows_every_returned_row_whole(make_project: MakeProject) -> None:
    tests = """
    nothing:
      model: staging.customer
      given:
        raw.shop__customer: [{customer_id: 7, country: Norway}]
      expect: {rows: []}
    """
    result = only(project(make_project, tests))
    assert result.status == "failed"
    assert result.columns == ("customer_id", "country")
    assert result.unexpected == ((7, "Norway"),)


def test_an_expected_column_the_model_does_not_return_is_named(make_project: MakeProject) -> None:
    result = only(project(make_project, PASSING.replace("revenue: 3}", "revenu: 3}")))
    assert result.status == "failed"
    assert result.message.startswith("the model returns no column 'revenu' (it returns customer_id, country,")
    assert 'did you mean "revenue"?' in result.message


def test_column_names_match_case_insensitively_like_duckdb(make_project: MakeProject) -> None:
    result = only(
        project(
            make_project,
            PASSING.replace("revenue: 3}", "REVENUE: 3}").replace(
                "{customer_id: 7, revenue: 10}", "{customer_id: 7, REVENUE: 10}"
            ),
        )
    )
    assert result.passed, result.message


# --- order ----------------------------------------------------------------------------------------

ORDERED = """
by_revenue:
  model: marts.top
  given:
    staging.customer:
      rows: [{customer_id: 1, country: A}, {customer_id: 2, country: B}, {customer_id: 3, country: C}]
  expect:
    ordered: true
    rows: [{customer_id: 3}, {customer_id: 2}, {customer_id: 1}]
"""


def test_ordered_passes_in_order_and_fails_with_the_positions_that_differ(make_project: MakeProject) -> None:
    root = project(
        make_project,
        ORDERED,
        **{"models/marts/top.sql": "select customer_id from staging.customer order by customer_id desc\n"},
    )
    assert only(root).passed
    (root / "models/marts/top.sql").write_text(
        "select customer_id from staging.customer order by customer_id\n"
    )
    result = only(root)
    assert result.status == "failed"
    assert result.message == "the rows match but in another order (first difference at row 1)"
    assert result.misordered == ((0, (3,), (1,)), (2, (1,), (3,)))
    unordered = only(project(make_project, ORDERED.replace("ordered: true", "ordered: false")))
    assert unordered.passed


# --- types ----------------------------------------------------------------------------------------


def test_dates_from_yaml_csv_and_text_compare_with_date_columns(make_project: MakeProject) -> None:
    tests = """
    dates:
      model: staging.invoice
      given:
        raw.shop__invoice:
          csv: |
            invoice_id,customer_id,total,invoiced_on
            1,7,10.50,2024-01-31
            2,7,3.00,2024-02-29
      expect:
        rows:
          - {invoice_id: 1, invoiced_on: 2024-01-31}
          - {invoice_id: 2, invoiced_on: "2024-02-29"}
    """
    result = only(project(make_project, tests))
    assert result.passed, result.message


def test_declared_decimals_are_exact_and_undeclared_floats_get_a_tolerance(make_project: MakeProject) -> None:
    model = {
        "models/marts/total.sql": "select sum(total) as total, typeof(sum(total)) as type\n"
        "from staging.invoice\n"
    }
    tests = """
    sums:
      model: marts.total
      given:
        staging.invoice:
          rows: [{total: 0.1}, {total: 0.2}]
          types: {total: DECIMAL(10,2)}
      expect: [{total: 0.3, type: "DECIMAL(38,2)"}]
    floats:
      model: marts.total
      given:
        staging.invoice: [{total: 0.1}, {total: 0.2}]
      expect: [{total: 0.3, type: DOUBLE}]
    """
    results = run(project(make_project, tests, **model))
    assert results["sums"].passed, results["sums"].message
    assert results["floats"].passed, results["floats"].message  # 0.30000000000000004


def test_a_decimal_is_compared_exactly_unless_a_tolerance_is_given(make_project: MakeProject) -> None:
    model = {"models/marts/total.sql": "select sum(total) as total from staging.invoice\n"}
    tests = """
    exact:
      model: marts.total
      given:
        staging.invoice: {rows: [{total: "10.01"}], types: {total: DECIMAL(10,2)}}
      expect: [{total: "10.00"}]
    near:
      model: marts.total
      given:
        staging.invoice: {rows: [{total: "10.01"}], types: {total: DECIMAL(10,2)}}
      expect: {rows: [{total: 10}], tolerance: 0.01}
    """
    results = run(project(make_project, tests, **model))
    assert results["exact"].status == "failed"
    assert results["exact"].unexpected == ((Decimal("10.01"),),)
    assert results["near"].passed


def test_csv_types_are_read_from_the_text_so_leading_zeros_and_decimals_survive(
    make_project: MakeProject,
) -> None:
    model = {"models/marts/zips.sql": "select zip, amount, typeof(amount) as type from staging.customer\n"}
    tests = """
    zips:
      model: marts.zips
      given:
        staging.customer:
          csv: |
            zip,amount
            01234,19.99
          types: {zip: VARCHAR, amount: DECIMAL(12,2)}
      expect: [{zip: "01234", amount: 19.99, type: "DECIMAL(12,2)"}]
    """
    assert only(project(make_project, tests, **model)).passed


def test_rows_may_omit_columns_and_types_may_declare_columns_no_row_has(make_project: MakeProject) -> None:
    model = {
        "models/marts/shape.sql": "select id, note, typeof(note) as type, discount from staging.customer\n"
    }
    tests = """
    shape:
      model: marts.shape
      given:
        staging.customer:
          rows: [{id: 1, note: hello}, {id: 2}]
          types: {discount: DECIMAL(5,2)}
      expect:
        - {id: 1, note: hello, type: VARCHAR, discount: null}
        - {id: 2, note: null, type: VARCHAR, discount: null}
    """
    assert only(project(make_project, tests, **model)).passed


def test_an_empty_table_is_rows_none_with_types(make_project: MakeProject) -> None:
    tests = """
    empty:
      model: staging.customer
      given:
        raw.shop__customer: {rows: [], types: {customer_id: INTEGER, country: VARCHAR}}
      expect: []
    """
    result = only(project(make_project, tests))
    assert result.passed and result.returned_rows == 0


def test_timestamps_and_a_pinned_clock(make_project: MakeProject) -> None:
    model = {
        "models/marts/age.sql": "select invoice_id, invoiced_at,\n"
        "date_diff('day', invoiced_at, now()) as age_days, current_date as today\n"
        "from staging.invoice\n"
    }
    tests = """
    age:
      model: marts.age
      now: 2024-03-01 12:00:00
      given:
        staging.invoice:
          rows: [{invoice_id: 1, invoiced_at: 2024-02-20 08:30:00}]
      expect: [{invoice_id: 1, invoiced_at: "2024-02-20T08:30:00", age_days: 10, today: 2024-03-01}]
    """
    assert only(project(make_project, tests, **model)).passed


def test_sql_and_file_fixtures(make_project: MakeProject) -> None:
    tests = """
    from_sql_and_file:
      model: marts.fct_revenue
      given:
        staging.invoice:
          sql: select 1 as invoice_id, 7 as customer_id, 2.5::decimal(10,2) as total
        staging.customer:
          file: tests/customers.csv
      expect: [{customer_id: 7, country: Norway, revenue: 2.5, invoices: 1}]
    """
    root = project(make_project, tests, **{"tests/customers.csv": "customer_id,country\n7,Norway\n"})
    assert only(root).passed


def test_a_model_in_another_dialect_runs_transpiled(make_project: MakeProject) -> None:
    model = {
        "models/marts/flag.sql": "-- dialect: snowflake\n"
        "select customer_id, iff(customer_id > 7, 'big', 'small') as size from staging.customer\n"
    }
    tests = """
    flag:
      model: marts.flag
      given:
        staging.customer: [{customer_id: 7}, {customer_id: 8}]
      expect: [{customer_id: 7, size: small}, {customer_id: 8, size: big}]
    """
    assert only(project(make_project, tests, **model)).passed


# --- errors while running: that test errors, the others run ---------------------------------------


def test_a_column_the_model_reads_but_the_rows_lack_names_the_table_to_add_it_to(
    make_project: MakeProject,
) -> None:
    tests = PASSING.replace("{customer_id: 8, country: Chile}", "{customer_id: 8}").replace(
        "{customer_id: 7, country: Norway}", "{customer_id: 7}"
    )
    tests += PASSING.replace("revenue_sums_invoices:", "second:")
    results = run(project(make_project, tests))
    first = results["revenue_sums_invoices"]
    assert first.status == "error"
    assert first.message.startswith("models/marts/fct_revenue.sql: the model failed on the test's rows:")
    assert 'hint: add "country" to the rows given for staging.customer' in first.message
    assert results["second"].passed


def test_a_column_mixing_kinds_of_values_is_an_error_at_its_rows(make_project: MakeProject) -> None:
    tests = """
    mixed:
      model: staging.customer
      given:
        raw.shop__customer:
          rows: [{customer_id: 1, country: NO}, {customer_id: 2, country: Chile}]
      expect: []
    """
    result = only(project(make_project, tests))
    assert result.status == "error"
    assert result.message == (
        'tests/revenue.yml:5: given raw.shop__customer: column "country" mixes values of different kinds '
        "(bool, str); quote them all, or give the column a type under types: "
        "(YAML reads an unquoted yes, no, on, off as true/false)"
    )


def test_a_bad_type_or_value_names_the_types_line(make_project: MakeProject) -> None:
    tests = """
    bad_type:
      model: staging.customer
      given:
        raw.shop__customer:
          rows: [{customer_id: 1, country: A}]
          types: {customer_id: INTEGR}
      expect: []
    bad_value:
      model: staging.customer
      given:
        raw.shop__customer:
          rows: [{customer_id: one, country: A}]
          types: {customer_id: INTEGER}
      expect: []
    """
    results = run(project(make_project, tests))
    assert results["bad_type"].status == "error"
    assert results["bad_type"].message.startswith('tests/revenue.yml:6: given raw.shop__customer: "INTEGR"')
    assert results["bad_value"].status == "error"
    assert results["bad_value"].message.startswith(
        "tests/revenue.yml:13: given raw.shop__customer: Conversion"
    )


# --- incremental and Python models ----------------------------------------------------------------


def _with_model(root: Path, asset: str, **changes: object):  # type: ignore[no-untyped-def]
    loaded = load_project(root)
    models = dict(loaded.models)
    models[asset] = replace(models[asset], **changes)  # type: ignore[arg-type]
    return replace(loaded, models=models)


INCREMENTAL_SQL = (
    "select i.* from staging.invoice i "
    "where i.invoice_id > (select coalesce(max(invoice_id), 0) from marts.new_invoices)"
)


def test_giving_the_models_own_rows_tests_its_incremental_rendering(make_project: MakeProject) -> None:
    tests = """
    only_new:
      model: marts.new_invoices
      given:
        staging.invoice: [{invoice_id: 1}, {invoice_id: 2}, {invoice_id: 3}]
        marts.new_invoices: [{invoice_id: 1}]
      expect: [{invoice_id: 2}, {invoice_id: 3}]
    full:
      model: marts.new_invoices
      given:
        staging.invoice: [{invoice_id: 1}, {invoice_id: 2}]
      expect: [{invoice_id: 1}, {invoice_id: 2}]
    """
    root = project(
        make_project, tests, **{"models/marts/new_invoices.sql": "select * from staging.invoice\n"}
    )
    loaded = _with_model(root, "marts.new_invoices", kind="incremental", incremental_sql=INCREMENTAL_SQL)
    results = {r.name: r for r in run_unit_tests(loaded, loaded.unit_tests).results}
    assert results["only_new"].passed and results["only_new"].rendering == "incremental"
    assert results["full"].passed and results["full"].rendering == "full"

    forced = [replace(loaded.unit_tests[1], incremental=True)]
    with pytest.raises(ConfigError) as caught:
        run_unit_tests(loaded, forced)
    assert str(caught.value).startswith(
        'tests/revenue.yml:7: test "full" gives no rows for marts.new_invoices, '
        "which marts.new_invoices reads (marts.new_invoices is the model itself"
    )

    unused = run_unit_tests(loaded, [replace(loaded.unit_tests[0], incremental=False)]).results[0]
    assert unused.warnings == (
        "tests/revenue.yml:5: given marts.new_invoices: the full rendering does not read it "
        "(incremental: true tests the incremental one)",
    )


def test_a_native_model_reading_this_is_tested_in_both_renderings(make_project: MakeProject) -> None:
    tests = """
    only_new:
      model: marts.new_invoices
      given:
        staging.invoice: [{invoice_id: 1}, {invoice_id: 2}, {invoice_id: 3}]
        marts.new_invoices: [{invoice_id: 1}]
      expect: [{invoice_id: 2}, {invoice_id: 3}]
    full:
      model: marts.new_invoices
      given:
        staging.invoice: [{invoice_id: 1}, {invoice_id: 2}]
      expect: [{invoice_id: 1}, {invoice_id: 2}]
    """
    model = (
        "-- kind: incremental\n-- key: invoice_id\n"
        "select i.invoice_id from staging.invoice i\n"
        "where not is_incremental() or i.invoice_id > (select max(invoice_id) from this)\n"
    )
    root = project(make_project, tests, **{"models/marts/new_invoices.sql": model})
    loaded = load_project(root)
    results = {r.name: r for r in run_unit_tests(loaded, loaded.unit_tests).results}
    assert results["only_new"].passed and results["only_new"].rendering == "incremental"
    assert results["full"].passed and results["full"].rendering == "full"


def test_python_models_are_skipped_with_a_reason(make_project: MakeProject) -> None:
    root = project(make_project, PASSING)
    loaded = _with_model(root, "marts.fct_revenue", language="python")
    [result] = run_unit_tests(loaded, loaded.unit_tests).results
    assert result.status == "skipped"
    assert result.message.startswith("Python models cannot be unit tested yet")


# --- mistakes in the test files: ConfigError with file:line before anything runs -----------------


def test_a_read_asset_without_rows_is_named_with_a_suggestion(make_project: MakeProject) -> None:
    err = error_of(project(make_project, PASSING.replace("staging.customer:", "staging.customers:")))
    assert str(err) == (
        'tests/revenue.yml:1: test "revenue_sums_invoices" gives no rows for staging.customer, '
        'which marts.fct_revenue reads\n  hint: did you mean "staging.customers"?'
    )


def test_rows_for_an_asset_the_model_does_not_read_are_a_warning(make_project: MakeProject) -> None:
    tests = PASSING.replace("  expect:", "    marts.other: [{x: 1}]\n  expect:")
    result = only(project(make_project, tests))
    assert result.passed
    assert result.warnings == (
        "tests/revenue.yml:15: given marts.other: marts.fct_revenue does not read it; "
        "these rows are not used",
    )


def test_an_unknown_model_suggests_the_closest(make_project: MakeProject) -> None:
    err = error_of(
        project(make_project, PASSING.replace("model: marts.fct_revenue", "model: marts.fct_revenu"))
    )
    assert str(err).startswith(
        'tests/revenue.yml:2: test "revenue_sums_invoices": no model "marts.fct_revenu"'
    )
    assert err.hint == 'did you mean "marts.fct_revenue"?'


def test_a_short_model_name_is_enough_when_unique(make_project: MakeProject) -> None:
    assert only(
        project(make_project, PASSING.replace("model: marts.fct_revenue", "model: fct_revenue"))
    ).passed


def test_a_source_table_is_not_a_model(make_project: MakeProject) -> None:
    err = error_of(
        project(make_project, PASSING.replace("model: marts.fct_revenue", "model: raw.shop__invoice"))
    )
    assert "raw.shop__invoice is a source table, not a model" in str(err)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("t:\n  model: marts.fct_revenue\n  given: {a.b: [1, 2}\n", "tests/revenue.yml:3:"),
        ("t:\n  model: marts.fct_revenue\n  expct: []\n", 'tests/revenue.yml:3: unknown key "t.expct"'),
        ("t:\n  model: marts.fct_revenue\n", 'tests/revenue.yml:1: test "t" has no expect'),
        (
            "t:\n  model: marts.fct_revenue\n  given:\n    staging.invoice:\n      rows: []\n  expect: []\n",
            "tests/revenue.yml:5: t.given.staging.invoice: an empty table needs its columns",
        ),
        (
            "t:\n  model: marts.fct_revenue\n  given:\n    staging.invoice:\n      rows: [{a: 1}]\n"
            "      csv: a\n  expect: []\n",
            "tests/revenue.yml:4: t.given.staging.invoice: give the rows one way: rows, csv, sql or file "
            "(found rows, csv)",
        ),
        (
            "t:\n  model: marts.fct_revenue\n  given:\n    invoice: [{a: 1}]\n  expect: []\n",
            'tests/revenue.yml:4: given: "invoice" is not an asset name',
        ),
        (
            "t:\n  model: marts.fct_revenue\n  given:\n    staging.invoice:\n      - {a: 1}\n      - 7\n"
            "  expect: []\n",
            "tests/revenue.yml:6: t.given.staging.invoice.rows: each row is a mapping",
        ),
        (
            "t:\n  model: marts.fct_revenue\n  given:\n    staging.invoice: {file: nowhere.csv}\n"
            "  expect: []\n",
            'tests/revenue.yml:4: t.given.staging.invoice.file: no file "nowhere.csv"',
        ),
        ("t:\n  model: marts.fct_revenue\n  now: soon\n  expect: []\n", 'tests/revenue.yml:3: now: "soon"'),
        (
            "t:\n  model: marts.fct_revenue\n  expect: {rows: [], ordred: true}\n",
            'tests/revenue.yml:3: unknown key "t.expect.ordred"',
        ),
    ],
)
def test_malformed_test_files_name_the_line(make_project: MakeProject, text: str, expected: str) -> None:
    root = project(make_project, text)
    with pytest.raises(ConfigError) as caught:
        load_project(root)
    assert str(caught.value).startswith(expected), str(caught.value)


def test_a_test_name_is_used_once_per_project(make_project: MakeProject) -> None:
    root = project(make_project, PASSING, **{"tests/more/again.yml": PASSING})
    with pytest.raises(ConfigError) as caught:
        load_project(root)
    assert str(caught.value).startswith(
        'tests/revenue.yml:1: two unit tests are both named "revenue_sums_invoices" '
        "(the other is at tests/more/again.yml:1)"
    )


# --- choosing tests -------------------------------------------------------------------------------


def test_tests_are_chosen_by_name_or_by_the_models_they_test(make_project: MakeProject) -> None:
    tests = (
        PASSING
        + """
customers_pass_through:
  model: staging.customer
  given:
    raw.shop__customer: [{customer_id: 1, country: A}]
  expect: [{customer_id: 1, country: A}]
"""
    )
    root = project(make_project, tests)
    assert set(run(root)) == {"revenue_sums_invoices", "customers_pass_through"}
    assert set(run(root, "customers_pass_through")) == {"customers_pass_through"}
    assert set(run(root, selection=("marts.fct_revenue",))) == {"revenue_sums_invoices"}
    assert set(run(root, selection=("staging.*",))) == {"customers_pass_through"}
    with pytest.raises(SelectionError) as caught:
        run(root, "customer_pass_through")
    assert caught.value.hint == 'did you mean "customers_pass_through"?'


def test_the_yaml_comma_inside_a_type_needs_no_quotes(make_project: MakeProject) -> None:
    model = {"models/marts/t.sql": "select typeof(a) as ta, typeof(b) as tb from staging.customer\n"}
    tests = """
    types:
      model: marts.t
      given:
        staging.customer: {rows: [{a: 1, b: 2}], types: {a: DECIMAL(10, 2), b: DECIMAL(4,1)}}
      expect: [{ta: "DECIMAL(10,2)", tb: "DECIMAL(4,1)"}]
    """
    assert only(project(make_project, tests, **model)).passed


def test_values_compare_as_a_reader_means_them() -> None:
    from gristmill.runtime.unittests.compare import _same

    assert _same(10.5, Decimal("10.50"), None)
    assert _same("10.50", Decimal("10.5"), None)
    assert not _same(10.51, Decimal("10.5"), None)
    assert _same(date(2024, 1, 31), date(2024, 1, 31), None)
    assert _same("2024-01-31", date(2024, 1, 31), None)
    assert _same(datetime(2024, 1, 31, 8), datetime.fromisoformat("2024-01-31T08:00:00+00:00"), None)
    assert not _same(7, "007", None)
    assert _same(45000, datetime(2024, 1, 1, 12, 30).time(), None)  # YAML reads 12:30:00 as seconds
    assert _same(True, True, None) and not _same(True, None, None) and _same(None, None, None)
    assert _same([1, {"a": 2.0}], [1, {"a": 2}], None)
