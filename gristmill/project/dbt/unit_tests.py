"""dbt unit tests (``unit_tests:`` in property files, dbt 1.8+) as Gristmill unit tests, run by
``gristmill test``: the model's SQL over the given rows on a private scratch engine of the
project's kind (``runtime/unittests/engine.py``), compared with the expected rows on the columns
``expect`` names, as dbt compares them.

``given`` inputs are ``ref(…)``, ``source(…)`` or ``this``; rows come as ``dict`` (the default),
``csv`` or ``sql``, inline or from a ``fixture`` file in a ``fixtures`` folder of the test paths.
``overrides`` of ``macros`` (``is_incremental`` picks the rendering), ``vars`` and ``env_vars``
render the model anew for that test."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from gristmill._util.suggest import did_you_mean
from gristmill.errors import ConfigError, ProjectError
from gristmill.project.dbt.compile import Compiler
from gristmill.project.dbt.context import Scope, build_context
from gristmill.project.dbt.jinja import Relation
from gristmill.project.dbt.nodes import Node
from gristmill.project.dbt.properties import Entry
from gristmill.project.unittests import Expectation, Fixture, TableData, UnitTestSpec, table_data

log = logging.getLogger("gristmill.dbt")
_FORMATS = {"dict": "rows", "csv": "csv", "sql": "sql"}
_SUFFIX = {"csv": ".csv", "sql": ".sql"}


def dbt_unit_tests(compiler: Compiler, entries: list[Entry]) -> tuple[UnitTestSpec, ...]:
    tests: list[UnitTestSpec] = []
    for entry in entries:
        config = entry.data.get("config")
        if isinstance(config, dict) and str(config.get("enabled", True)).strip().lower() == "false":
            log.info("%s:%s: unit test %s is disabled", entry.file, entry.line, entry.name)
            continue
        tests.append(_UnitTest(compiler, entry).spec())
    names = [t.name for t in tests]
    clashing = {n for n in names if names.count(n) > 1}  # dbt's names are unique per model only
    return tuple(
        _renamed(t, f"{t.model.split('.', 1)[1]}__{t.name}") if t.name in clashing else t for t in tests
    )


def _renamed(test: UnitTestSpec, name: str) -> UnitTestSpec:
    return replace(test, name=name)


class _UnitTest:
    def __init__(self, compiler: Compiler, entry: Entry) -> None:
        self.compiler = compiler
        self.entry = entry
        self.data = entry.data
        self.where = f"{entry.file}:{entry.line}"
        self.root = compiler.project.root

    def _line(self, container: Any, key: str) -> int:
        return int(getattr(container, "key_lines", {}).get(key, self.entry.line))

    def spec(self) -> UnitTestSpec:
        name = self.entry.name
        model_name = str(self.data.get("model") or "")
        node = self.compiler.by_name.get(model_name)
        model_where = f"{self.entry.file}:{self._line(self.data, 'model')}"
        if node is None or node.kind != "model":
            models = [n.name for n in self.compiler.nodes if n.kind == "model"]
            raise ConfigError(
                f'unit test "{name}": no model "{model_name}"',
                location=model_where,
                hint=did_you_mean(model_name, models) or "model: names the model under test, by name",
            )
        overrides = self.data.get("overrides")
        overrides = overrides if isinstance(overrides, dict) else {}
        macros = dict(overrides.get("macros") or {})
        variables = dict(overrides.get("vars") or {})
        env_vars = {str(k): str(v) for k, v in (overrides.get("env_vars") or {}).items()}
        incremental = bool(macros.pop("is_incremental", False))
        sql = None
        if macros or variables or env_vars:
            try:
                sql = self.compiler.render_overridden(
                    node, incremental=incremental, macros=macros, variables=variables, env_vars=env_vars
                )
            except ProjectError:
                if not self._broken(node):
                    raise  # the overrides break it: the test is declared wrongly
                # the model itself does not compile: its tests report that when they run
        given = self.data.get("given") or []
        if not isinstance(given, list):
            raise ConfigError(
                f'unit test "{name}": given is a list of inputs, each with input: ref(…) and rows',
                location=f"{self.entry.file}:{self._line(self.data, 'given')}",
            )
        lines = getattr(given, "item_lines", [self._line(self.data, "given")] * len(given))
        fixtures = [
            self._fixture(item, f"{self.entry.file}:{line}", node.asset)
            for item, line in zip(given, lines, strict=False)
        ]
        if "expect" not in self.data or not isinstance(self.data["expect"], dict):
            raise ConfigError(
                f'unit test "{name}" has no expect: the rows the model should return',
                location=self.where,
                hint="write expect: {rows: [...]}; rows: [] expects no rows",
            )
        expect_where = f"{self.entry.file}:{self._line(self.data, 'expect')}"
        expected = self._rows(self.data["expect"], expect_where, f"{name}.expect", given=False)
        return UnitTestSpec(
            name=name,
            model=node.asset,
            given=tuple(fixtures),
            expect=Expectation(expected),
            description=str(self.data["description"]) if self.data.get("description") else None,
            incremental=incremental,
            file=self.entry.file,
            line=self.entry.line,
            model_line=self._line(self.data, "model"),
            sql=sql,
        )

    def _broken(self, node: Node) -> bool:
        try:
            self.compiler.render(node)
        except ProjectError:
            return True
        return False

    def _fixture(self, item: Any, where: str, own: str) -> Fixture:
        if not isinstance(item, dict) or not item.get("input"):
            raise ConfigError(
                f'unit test "{self.entry.name}": each given entry needs input: ref(…), source(…) or this',
                location=where,
            )
        text = str(item["input"]).strip()
        if text == "this":
            asset = own
        else:
            scope = Scope(self.entry.name, self.entry.file, "unit_test")
            context = build_context(
                self.compiler.jinja, self.compiler.project, self.compiler.target, scope, self.compiler
            )
            relation = self.compiler.jinja.evaluate(text, context, where=where)
            if not isinstance(relation, Relation):
                raise ConfigError(
                    f"input: {text} is not a ref(…) or source(…)",
                    location=where,
                    hint="e.g. input: ref('stg_orders')",
                )
            if relation.is_cte:
                raise ConfigError(
                    f"input: {text} is an ephemeral model: give the rows of the models it reads instead",
                    location=where,
                )
            asset = relation.asset
        return Fixture(asset, self._rows(item, where, f"{self.entry.name}.given.{text}", given=True))

    def _rows(self, item: dict[str, Any], where: str, context: str, *, given: bool) -> TableData:
        """dbt's ``format`` / ``rows`` / ``fixture`` as a Gristmill block of rows."""
        how = str(item.get("format") or "dict").lower()
        if how not in _FORMATS:
            raise ConfigError(
                f'{context}: format "{how}" is not one of dict, csv, sql',
                location=where,
            )
        rows = item.get("rows")
        if item.get("fixture"):
            if how == "dict":
                raise ConfigError(f"{context}: a fixture file needs format: csv or sql", location=where)
            path = self._fixture_file(str(item["fixture"]), _SUFFIX[how], where)
            if how == "csv":
                block: dict[str, Any] = {"file": path}
            else:
                block = {"sql": (self.root / path).read_text(encoding="utf-8")}
        elif how == "dict":
            block = {"rows": list(rows or [])}
        else:
            if not isinstance(rows, str):
                raise ConfigError(f"{context}: format {how} takes rows as text (rows: |)", location=where)
            block = {_FORMATS[how]: rows}
        return table_data(block, self.root, self.entry.file, where, context, given=given)

    def _fixture_file(self, name: str, suffix: str, where: str) -> str:
        """``fixture: x`` is ``x.csv`` (or ``.sql``) under a ``fixtures`` folder of the test paths."""
        found = []
        for folder in self.compiler.project.test_paths:
            base = self.root / folder / "fixtures"
            if base.is_dir():
                found.extend(sorted(base.rglob(f"{name}{suffix}")))
        if not found:
            raise ConfigError(
                f'fixture "{name}": no {name}{suffix} in a fixtures folder',
                location=where,
                hint=f"put it at tests/fixtures/{name}{suffix}",
            )
        return found[0].relative_to(self.root).as_posix()
