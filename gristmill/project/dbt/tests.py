"""dbt tests as Gristmill checks.

Generic tests under ``tests:`` / ``data_tests:`` (on a column, or on a model with ``column_name``)
map to checks when a built-in check means the same: unique, not_null, accepted_values,
relationships, dbt_utils.unique_combination_of_columns, and dbt_utils.not_null_proportion with
``at_least: 1``. Anything else — other generic tests, ``where``/``error_if``/``warn_if`` configs,
singular tests in tests/*.sql — is not run, and a warning names it with its file and line.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from gristmill.project.dbt.config import DbtProject, folder_config, merge_config
from gristmill.project.dbt.properties import Properties, SourceTable
from gristmill.project.specs import CheckSpec

log = logging.getLogger("gristmill.dbt")
_TEST_KEYS = ("data_tests", "tests")
_CONFIG_KEYS = {
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
_DEFAULTS = {"error_if": "!= 0", "warn_if": "!= 0", "fail_calc": "count(*)"}
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")

Evaluate = Callable[[str, str], Any]
"""Evaluates a Jinja expression such as ``ref('customers')`` at a location; returns a relation."""


class _Skip(Exception):
    """A reason not to run one test."""


def _test_items(data: dict[str, Any]) -> list[tuple[Any, int]]:
    items: list[tuple[Any, int]] = []
    for key in _TEST_KEYS:
        found = data.get(key)
        if isinstance(found, list):
            lines = getattr(found, "item_lines", [getattr(data, "key_lines", {}).get(key, 1)] * len(found))
            items.extend(zip(found, lines, strict=True))
    return items


def _parse_item(item: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(test name, arguments, config) of one test entry, in any of dbt's spellings."""
    if isinstance(item, str):
        return item, {}, {}
    if not isinstance(item, dict):
        raise _Skip(f"cannot read the test entry {item!r}")
    if "test_name" in item:
        name, args = str(item["test_name"]), {k: v for k, v in item.items() if k not in ("test_name", "name")}
    elif len(item) == 1:
        [(name, args)] = item.items()
        args = dict(args or {})
    else:
        raise _Skip(f"cannot read the test entry {dict(item)!r}")
    args = {**args, **(args.pop("arguments", None) or {})}
    config = dict(args.pop("config", None) or {})
    config.update({k: args.pop(k) for k in list(args) if k in _CONFIG_KEYS})
    return str(name), args, config


class TestMapper:
    def __init__(self, project: DbtProject, evaluate: Evaluate) -> None:
        self.project = project
        self.evaluate = evaluate

    def for_entry(self, data: dict[str, Any], asset: str, file: str) -> list[CheckSpec]:
        """Checks from an entry's own tests and its columns' tests."""
        folder = Path(file).parent.parts
        defaults = merge_config(
            folder_config(self.project.configs.get("tests"), (self.project.name, *folder[1:])),
            folder_config(self.project.configs.get("data_tests"), (self.project.name, *folder[1:])),
        )
        checks: list[CheckSpec] = []
        for item, line in _test_items(data):
            checks.extend(self._checks(item, asset, None, f"{file}:{line}", defaults))
        columns = data.get("columns")
        for column in columns if isinstance(columns, list) else []:
            if isinstance(column, dict) and column.get("name"):
                for item, line in _test_items(column):
                    checks.extend(self._checks(item, asset, str(column["name"]), f"{file}:{line}", defaults))
        return checks

    def _checks(
        self, item: Any, asset: str, column: str | None, where: str, defaults: dict[str, Any]
    ) -> list[CheckSpec]:
        try:
            name, args, config = _parse_item(item)
            config = {**{k: v for k, v in defaults.items() if k in _CONFIG_KEYS}, **config}
            if config.get("enabled", True) is False:
                return []
            for key in ("where", "error_if", "warn_if", "fail_calc"):
                if config.get(key) not in (None, _DEFAULTS.get(key)):
                    raise _Skip(f"{name}: the {key} config has no equivalent check option")
            severity = "warn" if str(config.get("severity", "error")).lower() == "warn" else "error"
            column = str(args.pop("column_name", None) or column or "") or None
            return [
                CheckSpec(kind, asset, columns, params, severity, where)  # type: ignore[arg-type]
                for kind, columns, params in self._mapped(name, args, column, where)
            ]
        except _Skip as skip:
            log.warning("%s: test not run: %s", where, skip)
            return []

    def _mapped(
        self, name: str, args: dict[str, Any], column: str | None, where: str
    ) -> list[tuple[str, tuple[str, ...], dict[str, Any]]]:
        test = name.removeprefix("dbt.")
        if test in ("unique", "not_null", "accepted_values", "relationships"):
            if column is None or not _COLUMN.match(column):
                raise _Skip(f"{name} needs a plain column name, not {column!r}")
            if test == "accepted_values":
                return [("accepted_values", (column,), {"values": list(args.get("values") or [])})]
            if test == "relationships":
                parent = self.evaluate(str(args.get("to", "")), where)
                field = str(args.get("field", ""))
                if not hasattr(parent, "asset") or not _COLUMN.match(field):
                    raise _Skip(f"relationships needs to: ref('…') and a field, got {args!r}")
                return [("relationships", (column,), {"to": f"{parent.asset}.{field}"})]
            return [(test, (column,), {})]
        if test == "dbt_utils.unique_combination_of_columns":
            columns = tuple(str(c) for c in args.get("combination_of_columns") or [])
            if not columns or not all(_COLUMN.match(c) for c in columns):
                raise _Skip(f"{name} needs plain column names in combination_of_columns")
            return [("unique", columns, {})]
        if test == "dbt_utils.not_null_proportion" and float(args.get("at_least", 0)) >= 1 and column:
            return [("not_null", (column,), {})]
        raise _Skip(f'"{name}" has no equivalent Gristmill check')


def dbt_checks(
    project: DbtProject,
    properties: Properties,
    assets: dict[tuple[str, str], str],
    landed: set[str],
    evaluate: Evaluate,
) -> list[CheckSpec]:
    """Checks from every property file. ``assets`` maps (models|seeds|snapshots, name) to the
    asset a node builds; ``landed`` holds the assets sources land (source tests need one)."""
    mapper = TestMapper(project, evaluate)
    checks: list[CheckSpec] = []
    for (kind, name), entry in properties.entries.items():
        asset = assets.get((kind, name))
        if asset is None:
            if _test_items(entry.data) or any(_test_items(c) for c in entry.columns):
                log.warning("%s:%s: tests of %s not run: no such %s", entry.file, entry.line, name, kind[:-1])
            continue
        checks.extend(mapper.for_entry(entry.data, asset, entry.file))
    for table in properties.sources.values():
        checks.extend(_source_checks(mapper, table, landed))
    _warn_singular_tests(project)
    return checks


def _source_checks(mapper: TestMapper, table: SourceTable, landed: set[str]) -> list[CheckSpec]:
    if not (_test_items(table.data) or any(_test_items(c) for c in _columns(table.data))):
        return []
    if table.asset not in landed:
        log.warning("%s: tests of source %s not run: nothing lands %s", table.where, table.name, table.asset)
        return []
    return mapper.for_entry(table.data, table.asset, table.file)


def _columns(data: dict[str, Any]) -> Iterable[dict[str, Any]]:
    columns = data.get("columns")
    return [c for c in columns if isinstance(c, dict)] if isinstance(columns, list) else []


def _warn_singular_tests(project: DbtProject) -> None:
    for folder in project.test_paths:
        base = project.root / folder
        for path in sorted(base.rglob("*.sql")) if base.is_dir() else ():
            text = path.read_text(encoding="utf-8")
            if re.search(r"{%-?\s*test\s", text):
                continue  # a generic test's definition; its uses are reported where they are
            log.warning(
                "%s: singular test not run: Gristmill has no check that runs a query of failing rows",
                path.relative_to(project.root).as_posix(),
            )
