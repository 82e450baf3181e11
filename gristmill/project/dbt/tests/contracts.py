"""A model's enforced contract as checks: its columns and their types, and one check per
constraint (dbt applies constraints to tables, not views)."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from sqlglot import exp

from gristmill.errors import ProjectError
from gristmill.project.dbt.compile import Collecting
from gristmill.project.dbt.config import folder_config, merge_config
from gristmill.project.dbt.context import Scope, build_context
from gristmill.project.dbt.jinja import Relation
from gristmill.project.dbt.properties import Entry
from gristmill.project.dbt.tests.emit import expression_check, query_check
from gristmill.project.dbt.tests.generic import composite_unique_constraint
from gristmill.project.dbt.tests.mapper import TestMapper
from gristmill.project.dbt.tests.query import COLUMN, Skip, select_from, user_sql
from gristmill.project.dbt.tests.render import sql_files
from gristmill.project.specs import CheckSpec

log = logging.getLogger("gristmill.dbt")
_FK_EXPRESSION = re.compile(r'^\s*(?P<table>[\w."]+)\s*\(\s*(?P<column>[\w"]+)\s*\)\s*$')


class ContractChecks:
    """The checks of models' contracts, reading each model's configs as dbt merges them."""

    def __init__(self, mapper: TestMapper) -> None:
        self.mapper = mapper
        self.project = mapper.project
        self._model_files: dict[str, tuple[Path, tuple[str, ...]]] | None = None

    def checks(self, entry: Entry, asset: str) -> list[CheckSpec]:
        """An enforced contract: a ``schema`` check of the columns and their ``data_type``, exactly,
        and a check per constraint (dbt applies constraints to tables, not views)."""
        config = self._model_config(entry)
        contract = config.get("contract")
        if not (isinstance(contract, dict) and str(contract.get("enforced")).lower() == "true"):
            return []
        where = f"{entry.file}:{entry.line}"
        expect = {
            str(c["name"]): (str(c["data_type"]) if c.get("data_type") else None) for c in entry.columns
        }
        if not expect:
            log.warning("%s: contract of %s not checked: it lists no columns", where, entry.name)
            return []
        checks = [CheckSpec("schema", asset, (), {"expect": expect, "exact": True}, "error", where)]
        constraints: list[tuple[dict[str, Any], tuple[str, ...], str]] = []
        for column in entry.columns:
            constraints.extend(
                (c, (str(column["name"]),), f"{entry.file}:{line}")
                for c, line in _listed(column, "constraints", getattr(column, "line", entry.line))
            )
        for constraint, number in _listed(entry.data, "constraints", entry.line):
            listed = constraint.get("columns")
            names = tuple(str(c) for c in ([listed] if isinstance(listed, str) else listed or []))
            constraints.append((constraint, names, f"{entry.file}:{number}"))
        if not constraints:
            return checks
        relation = self.mapper.evaluate(f"ref({entry.name!r})", where)
        if isinstance(relation, Relation) and relation.is_view:
            log.warning(
                "%s: constraints of %s not checked: dbt does not apply constraints to a view",
                where,
                entry.name,
            )
            return checks
        for constraint, columns, located in constraints:
            try:
                checks.extend(self._constraint(constraint, columns, asset, located))
            except Skip as skip:
                log.warning("%s: constraint not checked: %s", located, skip)
        return checks

    def _constraint(
        self, constraint: dict[str, Any], columns: tuple[str, ...], asset: str, where: str
    ) -> list[CheckSpec]:
        kind = str(constraint.get("type", "")).lower()
        if kind in ("not_null", "unique", "primary_key", "foreign_key") and not columns:
            raise Skip(f"a {kind} constraint needs columns")
        if kind in ("not_null", "unique", "primary_key", "foreign_key") and not all(
            COLUMN.match(c) for c in columns
        ):
            raise Skip(f"{kind} needs plain column names, not {list(columns)}")
        if kind == "not_null":
            return [CheckSpec("not_null", asset, (c,), {}, "error", where) for c in columns]
        if kind == "unique":
            if len(columns) == 1:
                return [CheckSpec("unique", asset, columns, {}, "error", where)]
            name = f"unique({', '.join(columns)})"
            return [
                query_check(
                    asset, composite_unique_constraint(columns).failing_rows(None), name, "error", where
                )
            ]
        if kind == "primary_key":
            return [
                *(CheckSpec("not_null", asset, (c,), {}, "error", where) for c in columns),
                CheckSpec("unique", asset, columns, {}, "error", where),
            ]
        if kind == "check":
            expression = constraint.get("expression")
            if not isinstance(expression, str) or not expression.strip():
                raise Skip("a check constraint needs an expression")
            name = str(constraint.get("name") or f"check({expression})")
            condition = user_sql(expression)
            holds = exp.not_(exp.Is(this=exp.paren(condition), expression=exp.false()))
            found = expression_check(asset, holds, name, "error", where)
            if found is None:
                failing = select_from("this").where(exp.not_(exp.paren(condition.copy())))
                found = query_check(asset, failing, name, "error", where)
            return [found]
        if kind == "foreign_key":
            if len(columns) != 1:
                raise Skip("a foreign key over several columns has no equivalent check")
            parent = self._foreign_parent(constraint, where)
            return [CheckSpec("relationships", asset, columns, {"to": parent}, "error", where)]
        raise Skip(f'a "{kind or "custom"}" constraint has no equivalent check')

    def _foreign_parent(self, constraint: dict[str, Any], where: str) -> str:
        """``<schema>.<asset>.<column>`` a foreign key points at: ``to: ref('x')`` with one of
        ``to_columns``, or ``expression: schema.table (column)``."""
        if constraint.get("to"):
            relation = self.mapper.renderer.value(str(constraint["to"]), where)
            to_columns = constraint.get("to_columns") or []
            if not isinstance(relation, Relation) or relation.is_cte or len(to_columns) != 1:
                raise Skip("a foreign key needs to: ref('…') and one of to_columns")
            return f"{relation.asset}.{to_columns[0]}"
        match = _FK_EXPRESSION.match(str(constraint.get("expression") or ""))
        if match is None or match.group("table").replace('"', "").count(".") != 1:
            raise Skip(
                "a foreign key needs to: ref('…') and to_columns, or expression: schema.table (column)"
            )
        return f"{match.group('table').replace(chr(34), '')}.{match.group('column').replace(chr(34), '')}"

    def _model_config(self, entry: Entry) -> dict[str, Any]:
        """A model's configs: dbt_project.yml by folder, the property file, then its ``config()``."""
        if self._model_files is None:
            self._model_files = {}
            for folder in self.project.model_paths:
                base = self.project.root / folder
                for path in sql_files(base):
                    fqn = (self.project.name, *path.relative_to(base).parts[:-1], path.stem)
                    self._model_files.setdefault(path.stem, (path, fqn))
        if entry.name not in self._model_files:
            return entry.config
        path, fqn = self._model_files[entry.name]
        config = merge_config(folder_config(self.project.configs.get("models"), fqn), entry.config)
        if "contract" in path.read_text(encoding="utf-8"):
            config = merge_config(config, self._called_config(path, config))
        return config

    def _called_config(self, path: Path, config: dict[str, Any]) -> dict[str, Any]:
        file = path.relative_to(self.project.root).as_posix()
        jinja = self.mapper.renderer.jinja
        jinja.add(f"{file}#config", file, path.read_text(encoding="utf-8"))
        scope = Scope(path.stem, file, "model", config=dict(config), executing=False)
        context = build_context(
            jinja, self.project, self.mapper.renderer.target, scope, Collecting(self.mapper.renderer.target)
        )
        try:
            jinja.render(f"{file}#config", context, file=file)
        except ProjectError:
            return {}  # the model's own rendering reports it
        return scope.captured


def _listed(data: Any, key: str, line: int) -> list[tuple[dict[str, Any], int]]:
    items = data.get(key) if isinstance(data, dict) else None
    if not isinstance(items, list):
        return []
    lines = getattr(items, "item_lines", [line] * len(items))
    return [(item, n) for item, n in zip(items, lines, strict=True) if isinstance(item, dict)]
