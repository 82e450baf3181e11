"""Golden SQL of the lake's own bookkeeping tables built in ``state/lake``: every statement kind the
platform runs on ``_gristmill.table_versions``, ``_gristmill.environments`` (and the views an
environment switch creates) and ``_gristmill.cursors``, rendered for each dialect. The statements
of ``_gristmill.intervals`` and ``_gristmill.partitions`` are built in ``sql/`` with the model
kinds that write them, and have their golden files there."""

from __future__ import annotations

from sqlglot import exp

from gristmill.state.lake import cursors, environments, versions
from tests.golden import assert_golden


def table(name: str) -> exp.Table:
    """A bookkeeping table as an engine names it: catalog, schema ``_gristmill``, quoted."""
    return exp.table_(name, db="_gristmill", catalog="lake", quoted=True)


def test_versions() -> None:
    target = table("table_versions")
    assert_golden("bookkeeping/versions_select", versions.select_versions(target))
    assert_golden("bookkeeping/version_delete", versions.delete_version(target, "models.orders__v1a2b"))
    insert = versions.insert_version(
        target,
        "models.orders__v1a2b",
        "marts.orders",
        "f00d",
        {"kind": "table", "inputs": ["raw.o"]},
        7,
        None,
        "2024-01-01T00:00:00+00:00",
    )
    assert_golden("bookkeeping/version_insert", insert)
    forget = versions.forget_versions_statement(target, ["models.a__v1", "models.b__v2"])
    assert_golden("bookkeeping/versions_forget", forget)


def test_environments() -> None:
    target = table("environments")
    assert_golden("bookkeeping/pointers_select", environments.select_pointers(target, "dev"))
    assert_golden("bookkeeping/pointers_select_all", environments.select_all_pointers(target))
    delete = environments.delete_pointers(target, "dev", ["marts.orders", "marts.customers"])
    assert_golden("bookkeeping/pointers_delete", delete)
    pointers = {"marts.orders": "models.orders__v1a2b", "marts.customers": "models.customers__v3c4d"}
    insert = environments.insert_pointers(target, "dev", pointers, 7, "2024-01-01T00:00:00+00:00")
    assert_golden("bookkeeping/pointers_insert", insert)
    assert_golden(
        "bookkeeping/environment_view",
        environments.view_query(exp.table_("orders__v1a2b", db="models", catalog="lake", quoted=True)),
    )


def test_cursors() -> None:
    target = table("cursors")
    cursor = cursors.Cursor("2024-01-01 00:00:00+00", "TIMESTAMP WITH TIME ZONE", "duckdb")
    assert_golden("bookkeeping/cursor_select", cursors.select_cursor(target, "raw.orders"))
    assert_golden("bookkeeping/cursor_delete", cursors.delete_cursor(target, "raw.orders"))
    assert_golden("bookkeeping/cursor_insert", cursors.insert_cursor(target, "raw.orders", cursor, 7))
    # what a load compares its cursor with: the stored value, cast back to its stored type
    assert_golden("bookkeeping/cursor_literal", exp.select(cursor.literal().as_("value")))
