"""The checks of a dbt project: every property file's tests, model contracts and singular tests."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gristmill.errors import ProjectError
from gristmill.project.dbt.config import DbtProject, folder_config, merge_config
from gristmill.project.dbt.context import Scope
from gristmill.project.dbt.properties import Properties, SourceTable
from gristmill.project.dbt.tests.contracts import ContractChecks
from gristmill.project.dbt.tests.emit import emit
from gristmill.project.dbt.tests.entries import CONFIG_KEYS, disabled, test_items
from gristmill.project.dbt.tests.mapper import TestMapper
from gristmill.project.dbt.tests.placement import placed
from gristmill.project.dbt.tests.query import Skip, TestQuery
from gristmill.project.dbt.tests.render import Evaluate, needs_rendering, reason, sql_files
from gristmill.project.specs import CheckSpec

log = logging.getLogger("gristmill.dbt")


def dbt_checks(
    project: DbtProject,
    properties: Properties,
    assets: dict[tuple[str, str], str],
    landed: set[str],
    evaluate: Evaluate,
) -> list[CheckSpec]:
    """Checks from every property file, model contract and singular test. ``assets`` maps
    (models|seeds|snapshots, name) to the asset a node builds; ``landed`` holds the assets sources
    land (source tests need one)."""
    known = {*assets.values(), *landed}
    mapper = TestMapper(project, evaluate, known, properties.sources)
    contracts = ContractChecks(mapper)
    checks: list[CheckSpec] = []
    for (kind, name), entry in properties.entries.items():
        asset = assets.get((kind, name))
        if asset is None:
            if test_items(entry.data) or any(test_items(c) for c in entry.columns):
                log.warning("%s:%s: tests of %s not run: no such %s", entry.file, entry.line, name, kind[:-1])
            continue
        checks.extend(mapper.for_entry(entry.data, asset, entry.file, name))
        if kind == "models":
            checks.extend(contracts.checks(entry, asset))
    for table in properties.sources.values():
        checks.extend(_source_checks(mapper, table, landed))
    checks.extend(_singular_checks(mapper, known))
    return placed(checks, mapper, known)


def _source_checks(mapper: TestMapper, table: SourceTable, landed: set[str]) -> list[CheckSpec]:
    if not (test_items(table.data) or any(test_items(c) for c in _columns(table.data))):
        return []
    if table.asset not in landed:
        log.warning("%s: tests of source %s not run: nothing lands %s", table.where, table.name, table.asset)
        return []
    return mapper.for_entry(table.data, table.asset, table.file, f"{table.source}_{table.name}", source=True)


def _columns(data: dict[str, Any]) -> Iterable[dict[str, Any]]:
    columns = data.get("columns")
    return [c for c in columns if isinstance(c, dict)] if isinstance(columns, list) else []


def _singular_checks(mapper: TestMapper, known: set[str]) -> list[CheckSpec]:
    """Each ``tests/**/*.sql`` that is not a ``{% test %}`` definition (nor a unit-test fixture),
    rendered like a model, as a query check on the first asset it refs."""
    project = mapper.project
    checks: list[CheckSpec] = []
    for folder in project.test_paths:
        base = project.root / folder
        for path in sql_files(base):
            relative = path.relative_to(base)
            if relative.parts[0] == "fixtures":
                continue
            text = path.read_text(encoding="utf-8")
            if re.search(r"{%-?\s*test\s", text):
                continue  # a generic test's definition; its uses are checked where they are
            fqn = (project.name, *relative.parts[:-1], path.stem)
            defaults = merge_config(
                folder_config(project.configs.get("tests"), fqn),
                folder_config(project.configs.get("data_tests"), fqn),
            )
            checks.extend(
                _singular(mapper, path, text, {k: v for k, v in defaults.items() if k in CONFIG_KEYS}, known)
            )
    return checks


def _singular(
    mapper: TestMapper, path: Path, text: str, defaults: dict[str, Any], known: set[str]
) -> list[CheckSpec]:
    project = mapper.project
    file = path.relative_to(project.root).as_posix()
    where = f"{file}:1"
    renderer = mapper.renderer
    scope = Scope(path.stem, file, "test", config=dict(defaults))
    resolver = mapper.resolver(file)
    try:
        renderer.jinja.add(file, file, text)
        sql = renderer.jinja.render(file, renderer.context(scope, resolver), file=file)
    except ProjectError as err:
        log.warning("%s: singular test not run: %s", err.location or file, reason(err))
        return []
    config = {**defaults, **{k: v for k, v in scope.captured.items() if k in CONFIG_KEYS}}
    if needs_rendering(config):
        try:
            config = {k: renderer.value(v, where, k) for k, v in config.items()}
        except ProjectError as err:
            log.warning("%s: singular test not run: %s", where, reason(err))
            return []
    if disabled(config):
        return []
    asset = next((r.asset for r in resolver.used if not r.is_cte and r.asset in known), None)
    if asset is None:
        log.warning("%s: singular test not run: it refs no model, seed or landed source to check", where)
        return []
    config.pop("where", None)  # dbt applies where to generic tests' models only
    test = TestQuery(written=sql.strip().rstrip(";").strip())
    try:
        return emit(test, asset, config, path.stem, where)
    except Skip as skip:
        log.warning("%s: singular test not run: %s", where, skip)
        return []
