"""dbt's own generic tests (unique, not_null, accepted_values, relationships) and the composite
UNIQUE constraint, as the checks and queries that mean what they mean in dbt."""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from gristmill.project.dbt.tests.query import (
    COLUMN,
    Builtin,
    Skip,
    TestQuery,
    columns,
    count_star,
    is_null,
    literal,
    not_null,
    numbered,
    select_from,
    table,
    tested,
    user_sql,
    with_ctes,
)


def bare(column: str | None) -> str | None:
    """The column a built-in check can name (one with ``quote: true`` comes double-quoted), if any."""
    name = column[1:-1] if column and len(column) > 2 and column[0] == column[-1] == '"' else column
    return name if name and COLUMN.match(name) else None


def plain_column(column: str | None, test: str) -> str:
    name = bare(column)
    if name is None:
        raise Skip(f"{test} needs a plain column name, not {column!r}")
    return name


def needs_column(column: str | None, test: str) -> str:
    if not column:
        raise Skip(f"{test} needs a column (put it under a column, or give column_name)")
    return column


def not_null_test(column: str) -> TestQuery:
    return TestQuery(builtins=(("not_null", (column,), {}),), row=is_null(user_sql(column)))


def unique_test(names: tuple[str, ...]) -> TestQuery:
    """Rows sharing a key with an earlier row, as the ``unique`` check counts them (a one-column key
    skips NULLs; a composite one compares them as values). dbt returns one row per repeated key:
    ``unique``'s query, or dbt_utils.unique_combination_of_columns' for several columns."""
    keys = columns(names)

    def rows(where: str | None) -> exp.Select:
        found = select_from(tested(where))
        return found.where(not_null(keys[0])) if len(keys) == 1 else found

    def sql(where: str | None) -> exp.Query:
        return numbered(keys, rows(where))

    def dbt_sql(where: str | None) -> exp.Query:
        repeated = exp.GT(this=count_star(), expression=exp.Literal.number(1))
        if len(keys) == 1:
            counted = [exp.alias_(keys[0].copy(), "unique_field"), exp.alias_(count_star(), "n_records")]
            return rows(where).select(*counted, append=False).group_by(keys[0].copy()).having(repeated)
        errors = select_from(tested(where), *(k.copy() for k in keys)).group_by(*(k.copy() for k in keys))
        return with_ctes([("validation_errors", errors.having(repeated))], select_from("validation_errors"))

    return TestQuery(builtins=(("unique", names, {}),), sql=sql, dbt_sql=dbt_sql)


def relationships_test(column: str, parent: str, field_name: str) -> TestQuery:
    def sql(where: str | None) -> exp.Query:
        child_column = exp.column(column, table="child")
        matches = (
            exp.select(exp.Literal.number(1))
            .from_(exp.alias_(table(parent), "parent", table=True))
            .where(exp.EQ(this=exp.column(field_name, table="parent"), expression=child_column.copy()))
        )
        failing = select_from("child").where(
            exp.and_(not_null(child_column), exp.not_(exp.Exists(this=matches)))
        )
        return with_ctes([("child", select_from(tested(where)))], failing)

    builtin: Builtin = ("relationships", (column,), {"to": f"{parent}.{field_name}"})
    return TestQuery(builtins=(builtin,), sql=sql)


def accepted_values_test(column: str, values: list[Any], quote: bool) -> TestQuery:
    """Rows whose value is not listed (NULL passes). dbt returns one row per value that is not."""
    if not values:
        raise Skip("accepted_values needs values")
    value = user_sql(column)

    def listed(of: exp.Expr) -> exp.Expr:
        return exp.not_(exp.In(this=of, expressions=[literal(v, quote) for v in values]))

    def dbt_sql(where: str | None) -> exp.Query:
        counted = [exp.alias_(value.copy(), "value_field"), exp.alias_(count_star(), "n_records")]
        all_values = select_from(tested(where), *counted).group_by(value.copy())
        return with_ctes(
            [("all_values", all_values)], select_from("all_values").where(listed(exp.column("value_field")))
        )

    row = listed(value.copy())
    if not quote and any(isinstance(v, str) for v in values):
        return TestQuery(row=row, dbt_sql=dbt_sql)  # values are SQL as written: no built-in means the same
    builtin: Builtin = ("accepted_values", (column,), {"values": list(values)})
    return TestQuery(builtins=(builtin,), row=row, dbt_sql=dbt_sql)


def composite_unique_constraint(names: tuple[str, ...]) -> TestQuery:
    """A UNIQUE constraint on several columns: rows with a NULL in the key never clash."""
    keys = columns(names)
    filled = exp.and_(*(not_null(k) for k in keys))
    return TestQuery(sql=lambda where: numbered(keys, select_from(tested(where)).where(filled)))
