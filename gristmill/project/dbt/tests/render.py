"""Rendering what a test entry holds as dbt renders it: ``ref()``/``source()`` resolved by the
project's compiler, Jinja in arguments and configs, and the project's test macros."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gristmill.errors import ProjectError
from gristmill.project.dbt.config import DbtProject, read_target
from gristmill.project.dbt.context import Scope, build_context
from gristmill.project.dbt.jinja import DbtError, Jinja, Relation
from gristmill.project.dbt.packages import load_macros

LOOKS_LIKE_CALL = re.compile(r"^\s*(env_var|ref|var|source|doc)\s*\(.+\)\s*$", re.DOTALL)

Evaluate = Callable[[str, str], Any]
"""Evaluates a Jinja expression such as ``ref('customers')`` at a location; returns a relation."""


class Resolver:
    """``ref()`` and ``source()`` as the project's compiler resolves them (through ``evaluate``),
    remembering the relations used, in order."""

    def __init__(self, evaluate: Evaluate, where: str, landed: Callable[[str, str], str | None]) -> None:
        self._evaluate = evaluate
        self._where = where
        self._landed = landed
        self.used: list[Relation] = []

    def _call(self, expression: str) -> Any:
        try:
            return self._evaluate(expression, self._where)
        except ProjectError as err:
            raise DbtError(reason(err).removeprefix(f"cannot evaluate {expression!r}: "), err.hint) from None

    def ref(self, name: str, package: str | None) -> Relation:
        found = self._call(f"ref({package!r}, {name!r})" if package else f"ref({name!r})")
        self.used.append(found)
        return found

    def source(self, source: str, table: str) -> Relation:
        missing = self._landed(source, table)
        if missing is not None:  # asking the compiler would make the project's load fail
            raise DbtError(f'source("{source}", "{table}") reads {missing}, which nothing lands')
        found = self._call(f"source({source!r}, {table!r})")
        self.used.append(found)
        return found

    def columns(self, relation: Any) -> list[str]:
        if not isinstance(relation, Relation):
            raise DbtError(f"{relation!r} is not a relation: pass ref('…') or source('…', '…')")
        created = f"api.Relation.create(schema={relation.schema!r}, identifier={relation.identifier!r})"
        return [column.name for column in self._call(f"adapter.get_columns_in_relation({created})")]

    def relation(self, schema: str, identifier: str) -> Relation | None:
        found = self._call(f"adapter.get_relation(schema={schema!r}, identifier={identifier!r})")
        return found if isinstance(found, Relation) else None


class Renderer:
    """The project's Jinja (its macros, and its ``{% test %}`` blocks as ``test_<name>`` macros) with
    the names dbt gives a test; ``ref()`` resolves as it does in models."""

    def __init__(self, project: DbtProject, resolver: Callable[[str], Resolver]) -> None:
        self.project = project
        self.resolver = resolver
        self.target = read_target(project.root, project)
        self.jinja = Jinja()
        load_macros(self.jinja, project, tests=True)
        self._shared: dict[str, Any] | None = None

    def context(self, scope: Scope, resolver: Any) -> dict[str, Any]:
        context = build_context(self.jinja, self.project, self.target, scope, resolver)
        context.setdefault("should_store_failures", lambda: False)
        return context

    def _shared_context(self) -> dict[str, Any]:
        if self._shared is None:
            self._shared = self.context(Scope("test", "", "test"), self.resolver(""))
        return self._shared

    def value(self, value: Any, where: str, key: str = "") -> Any:
        """A test argument or config as dbt renders it: ``ref('x')`` and other calls evaluated, Jinja
        in strings rendered; lists and mappings item by item."""
        if isinstance(value, list):
            return [self.value(v, where) for v in value]
        if isinstance(value, dict):
            return {k: self.value(v, where) for k, v in value.items()}
        if not isinstance(value, str) or key == "column_name":
            return value
        if LOOKS_LIKE_CALL.match(value):
            return self.jinja.evaluate(value.strip(), self._shared_context(), where=where)
        if "{{" in value or "{%" in value:
            return self.jinja.render_text(value, self._shared_context(), where=where)
        return value


def reason(err: ProjectError) -> str:
    """An error's message without the location it starts with."""
    return err.message.removeprefix(f"{err.location}: ") if err.location else err.message


def sql_files(base: Path) -> list[Path]:
    return sorted(base.rglob("*.sql")) if base.is_dir() else []


def needs_rendering(value: Any) -> bool:
    if isinstance(value, list):
        return any(needs_rendering(v) for v in value)
    if isinstance(value, dict):
        return any(needs_rendering(v) for v in value.values())
    return isinstance(value, str) and bool(LOOKS_LIKE_CALL.match(value) or "{{" in value or "{%" in value)
