"""dbt tests as Gristmill checks, with dbt's meaning.

Generic tests under ``tests:`` / ``data_tests:`` (on a column, or on a model with ``column_name``)
become a built-in check where one means exactly the same (unique, not_null, accepted_values,
relationships, dbt_utils.unique_combination_of_columns, dbt_utils.accepted_range with numeric
bounds, dbt_utils.not_null_proportion with ``at_least: 1``); a test of single rows becomes an
``expression`` check (expression_is_true, not_empty_string, not_accepted_values…), which shares
the table's one scan; anything else becomes a ``query`` check running the SELECT of failing rows
dbt runs (recency, equal_rowcount, cardinality_equality, sequential_values…). docs/dbt.md has the
table.

Configs keep their meaning: ``where`` restricts the rows tested (dbt's ``get_where_subquery``);
``severity`` picks error or warn; with ``error_if``/``warn_if``/``fail_calc`` the test becomes a
query check returning dbt's rows only when dbt's condition on them holds (an error check and a
warn check when dbt warns below its error threshold), ``limit`` capping the rows counted;
``enabled: false`` drops the test; ``store_failures`` is ignored (Gristmill keeps samples).

Custom generic tests (``{% test name(model, column_name) %}`` blocks in the macro or test
folders, or ``test_<name>`` macros) are rendered with the project's macros as dbt renders them,
into a query check. Singular tests (``tests/**/*.sql``) are rendered the same way and checked on
the first asset they ref. A check that reads an asset built from its own runs when the last
asset it reads is built, as dbt runs such a test after every node it reads. A model whose
contract is enforced gets a ``schema`` check (its columns and their ``data_type``, exactly) and a
check per constraint (on tables only, as dbt applies them).

Whatever cannot be mapped is not run, and a warning names its file and line and the reason.
"""

from gristmill.project.dbt.tests.collect import dbt_checks

__all__ = ["dbt_checks"]
