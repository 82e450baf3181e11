"""Test entries as dbt reads them from a property file: names, arguments, configs in any of
dbt's spellings, and the name dbt gives a generic test."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from gristmill.project.dbt.tests.query import Skip

TEST_KEYS = ("data_tests", "tests")
CONFIG_KEYS = {
    "severity",
    "where",
    "limit",
    "enabled",
    "tags",
    "meta",
    "error_if",
    "warn_if",
    "fail_calc",
    "store_failures",
    "store_failures_as",
    "alias",
    "schema",
    "database",
    "description",
}
"""The keys of a test entry that configure it (the rest are its arguments)."""


def test_items(data: dict[str, Any]) -> list[tuple[Any, int]]:
    """An entry's tests (under ``data_tests:`` or ``tests:``), each with its line."""
    items: list[tuple[Any, int]] = []
    for key in TEST_KEYS:
        found = data.get(key)
        if isinstance(found, list):
            lines = getattr(found, "item_lines", [getattr(data, "key_lines", {}).get(key, 1)] * len(found))
            items.extend(zip(found, lines, strict=True))
    return items


@dataclass
class TestEntry:
    """One test entry as dbt reads it."""

    name: str
    args: dict[str, Any]
    config: dict[str, Any]
    given_name: str | None = None


def parse_item(item: Any) -> TestEntry:
    """The test name, arguments, config and given name of one entry, in any of dbt's spellings."""
    if isinstance(item, str):
        return TestEntry(item, {}, {})
    if not isinstance(item, dict):
        raise Skip(f"cannot read the test entry {item!r}")
    if "test_name" in item:
        name, args = str(item["test_name"]), {k: v for k, v in item.items() if k != "test_name"}
    elif len(item) == 1:
        [(name, args)] = item.items()
        args = dict(args or {})
    else:
        raise Skip(f"cannot read the test entry {dict(item)!r}")
    given = args.pop("name", None)
    args = {**args, **(args.pop("arguments", None) or {})}
    config = dict(args.pop("config", None) or {})
    config.update({k: args.pop(k) for k in list(args) if k in CONFIG_KEYS})
    return TestEntry(str(name), args, config, str(given) if given else None)


def dbt_test_name(test: str, target: str, args: dict[str, Any], *, source: bool) -> str:
    """The name dbt gives a generic test (``not_null_orders_id``, ``accepted_values_orders_status__a__b``)."""
    namespace, _, short = test.rpartition(".")
    name = ("source_" if source else "") + short
    if namespace:
        name = f"{namespace}_{name}"
    flat: list[str] = []
    for key in sorted(args):
        value = args[key]
        parts = (
            list(value.values()) if isinstance(value, dict) else value if isinstance(value, list) else [value]
        )
        flat.extend(str(part) for part in parts)
    return f"{name}_{target}_" + "__".join(re.sub(r"[^0-9a-zA-Z_]+", "_", part) for part in flat)


def normal(condition: Any) -> str:
    return re.sub(r"\s+", "", str(condition)).lower()


def severity(config: dict[str, Any]) -> str:
    return "warn" if str(config.get("severity", "error")).strip().lower() == "warn" else "error"


def disabled(config: dict[str, Any]) -> bool:
    return str(config.get("enabled", True)).strip().lower() == "false"
