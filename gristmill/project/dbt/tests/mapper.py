"""Maps each test entry of a property file to the checks that mean what dbt does with it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlglot import exp

from gristmill.errors import ProjectError
from gristmill.project.dbt.config import DbtProject, folder_config, merge_config
from gristmill.project.dbt.context import Scope
from gristmill.project.dbt.jinja import MacroDef, Relation
from gristmill.project.dbt.properties import SourceTable
from gristmill.project.dbt.tests import dbt_utils, generic
from gristmill.project.dbt.tests.emit import emit
from gristmill.project.dbt.tests.entries import (
    CONFIG_KEYS,
    dbt_test_name,
    disabled,
    parse_item,
    test_items,
)
from gristmill.project.dbt.tests.query import COLUMN, Skip, TestQuery, select_from, table, text, user_sql
from gristmill.project.dbt.tests.render import Evaluate, Renderer, Resolver, needs_rendering, reason
from gristmill.project.specs import CheckSpec

log = logging.getLogger("gristmill.dbt")

_DBT_UTILS_TESTS = {
    "unique_combination_of_columns",
    "expression_is_true",
    "unique_where",
    "not_null_where",
    "equal_rowcount",
    "fewer_rows_than",
    "recency",
    "accepted_range",
    "not_null_proportion",
    "at_least_one",
    "not_constant",
    "not_empty_string",
    "not_accepted_values",
    "sequential_values",
    "cardinality_equality",
    "relationships_where",
}


def _has_builtin(namespace: str, test: str) -> bool:
    """Whether a test of dbt (``unique``…) or dbt_utils maps to a check that means the same."""
    if namespace == "dbt":
        return test in ("unique", "not_null", "accepted_values", "relationships")
    return test in _DBT_UTILS_TESTS


@dataclass
class TestedNode:
    """What a test entry tests: the asset, and dbt's name for the node (for test names)."""

    asset: str
    name: str
    source: bool = False
    relation: Relation = field(init=False)

    def __post_init__(self) -> None:
        schema, identifier = self.asset.split(".", 1)
        self.relation = Relation(schema, identifier)


class TestMapper:
    """The checks of test entries: dbt's tests and dbt_utils' by their meaning, the project's own
    test macros rendered; the Jinja renderer is built on first need (most projects test plainly)."""

    def __init__(
        self,
        project: DbtProject,
        evaluate: Evaluate,
        known: set[str] | None = None,
        sources: dict[tuple[str, str], SourceTable] | None = None,
    ) -> None:
        """``known`` holds the assets a check may read (built or landed; None: any), ``sources``
        the declared source tables, so that a test reading one nothing lands is not run."""
        self.project = project
        self.evaluate = evaluate
        self.known = known
        self.sources = sources or {}
        self._renderer: Renderer | None = None

    @property
    def renderer(self) -> Renderer:
        if self._renderer is None:
            self._renderer = Renderer(self.project, self.resolver)
        return self._renderer

    def resolver(self, where: str) -> Resolver:
        return Resolver(self.evaluate, where, self._unlanded)

    def _unlanded(self, source: str, table: str) -> str | None:
        found = self.sources.get((source, table))
        if found is None or self.known is None or found.asset in self.known:
            return None
        return found.asset

    def for_entry(
        self, data: dict[str, Any], asset: str, file: str, name: str = "", *, source: bool = False
    ) -> list[CheckSpec]:
        """Checks from an entry's own tests and its columns' tests. ``name`` is dbt's name for the
        node (``orders``; ``<source>_<table>`` for a source table), as test names carry it."""
        folder = Path(file).parent.parts
        defaults = merge_config(
            folder_config(self.project.configs.get("tests"), (self.project.name, *folder[1:])),
            folder_config(self.project.configs.get("data_tests"), (self.project.name, *folder[1:])),
        )
        defaults = {k: v for k, v in defaults.items() if k in CONFIG_KEYS}
        target = TestedNode(asset, name or asset.split(".", 1)[1], source)
        checks: list[CheckSpec] = []
        for item, line in test_items(data):
            checks.extend(self._checks(item, target, None, f"{file}:{line}", defaults))
        columns = data.get("columns")
        for column in columns if isinstance(columns, list) else []:
            if isinstance(column, dict) and column.get("name"):
                name_in_sql = str(column["name"])
                if column.get("quote") is True:
                    name_in_sql = '"' + name_in_sql.replace('"', '""') + '"'
                for item, line in test_items(column):
                    checks.extend(self._checks(item, target, name_in_sql, f"{file}:{line}", defaults))
        return checks

    def _checks(
        self, item: Any, target: TestedNode, column: str | None, where: str, defaults: dict[str, Any]
    ) -> list[CheckSpec]:
        name = str(item) if isinstance(item, str) else "test"
        try:
            entry = parse_item(item)
            name = entry.name
            own = entry.config
            if needs_rendering(own):
                own = self._rendered(own, where)
            if needs_rendering(defaults):
                defaults = self._rendered(defaults, where)
            config = {**defaults, **own}
            if disabled(config):
                return []
            args = dict(entry.args)
            column = str(args.pop("column_name", None) or column or "") or None
            named = {**args, **({"column_name": column} if column else {})}
            check_name = entry.given_name or dbt_test_name(name, target.name, named, source=target.source)
            if needs_rendering(args):
                args = self._rendered(args, where)
            custom = self._custom(name, args, column, target, {**defaults, **own}, where)
            if custom is None:
                test = self._mapped(name, args, column, config)
            else:
                test, captured = custom
                config = {**defaults, **captured, **own}
                config.pop("where", None)  # the rendered test already reads only those rows
            return emit(test, target.asset, config, check_name, where)
        except Skip as skip:
            log.warning("%s: test not run: %s", where, skip)
            return []

    def _rendered(self, values: dict[str, Any], where: str) -> dict[str, Any]:
        try:
            return {k: self.renderer.value(v, where, k) for k, v in values.items()}
        except ProjectError as err:
            raise Skip(reason(err)) from None

    # --- generic tests ---------------------------------------------------------------------------------

    def _mapped(
        self, name: str, args: dict[str, Any], column: str | None, config: dict[str, Any]
    ) -> TestQuery:
        namespace, _, test = name.rpartition(".")
        if namespace in ("", "dbt") and test in ("unique", "not_null", "accepted_values", "relationships"):
            plain = generic.plain_column(column, name)
            if test == "unique":
                return generic.unique_test((plain,))
            if test == "not_null":
                return generic.not_null_test(plain)
            if test == "accepted_values":
                quote = args.get("quote", True) is not False
                return generic.accepted_values_test(plain, list(args.get("values") or []), quote)
            parent, field_name = self._parent(args, "to", "field", name)
            return generic.relationships_test(plain, parent, field_name)
        if namespace == "dbt_utils":
            return self._dbt_utils(test, args, column, config)
        if namespace and namespace not in self.renderer.jinja.package_macros and namespace != "dbt":
            raise Skip(
                f'"{name}" is a test of the package {namespace}, which is not in dbt_packages/ '
                "(run `dbt deps`, or check packages.yml)"
            )
        raise Skip(
            f'"{name}" has no equivalent Gristmill check and no test macro in the project or its packages'
        )

    def _dbt_utils(
        self, test: str, args: dict[str, Any], column: str | None, config: dict[str, Any]
    ) -> TestQuery:
        name = f"dbt_utils.{test}"
        if test == "unique_combination_of_columns":
            columns = tuple(str(c) for c in args.get("combination_of_columns") or [])
            if not columns or not all(COLUMN.match(c) for c in columns):
                raise Skip(f"{name} needs plain column names in combination_of_columns")
            return generic.unique_test(columns)
        if test == "expression_is_true":
            if args.get("condition"):  # dbt_utils before 0.8: a where clause as an argument
                condition = str(args["condition"])
                if config.get("where"):
                    both = exp.and_(exp.paren(user_sql(str(config["where"]))), exp.paren(user_sql(condition)))
                    condition = text(both)
                config["where"] = condition
            return dbt_utils.expression_is_true(column, args)
        if test in ("unique_where", "not_null_where"):  # dbt_utils before 1.0: where is a config now
            plain = generic.plain_column(column, name)
            return generic.unique_test((plain,)) if test == "unique_where" else generic.not_null_test(plain)
        if test in ("equal_rowcount", "fewer_rows_than"):
            compare = self._relation(args.get("compare_model"), "compare_model", name)
            return dbt_utils.compare_counts(
                compare, args, fewer=test == "fewer_rows_than", expand=not config.get("fail_calc")
            )
        if test == "recency":
            return dbt_utils.recency(args)
        column = generic.needs_column(column, name)
        if test == "accepted_range":
            if args.get("min_value") is None and args.get("max_value") is None:
                raise Skip(f"{name} needs min_value, max_value or both")
            return dbt_utils.accepted_range(column, args)
        if test == "not_null_proportion":
            return dbt_utils.not_null_proportion(column, args)
        if test == "at_least_one":
            return dbt_utils.at_least_one(column, args)
        if test == "not_constant":
            return dbt_utils.not_constant(column, args)
        if test == "not_empty_string":
            return dbt_utils.not_empty_string(column, args)
        if test == "not_accepted_values":
            return dbt_utils.not_accepted_values(column, args)
        if test == "sequential_values":
            return dbt_utils.sequential_values(column, args)
        if test == "cardinality_equality":
            parent, field_name = self._parent(args, "to", "field", name)
            return dbt_utils.cardinality_equality(column, parent, field_name)
        if test == "relationships_where":
            parent, field_name = self._parent(args, "to", "field", name)
            return dbt_utils.relationships_where(column, parent, field_name, args)
        raise Skip(f'"{name}" has no equivalent Gristmill check')

    def _relation(self, value: Any, key: str, test: str) -> str:
        if not isinstance(value, Relation) or value.is_cte:
            raise Skip(
                f"{test} needs {key}: ref('…') or source('…', '…') naming a built table, got {value!r}"
            )
        return value.asset

    def _parent(self, args: dict[str, Any], to: str, field_key: str, test: str) -> tuple[str, str]:
        parent = args.get(to)
        field_name = str(args.get(field_key, ""))
        if not isinstance(parent, Relation) or parent.is_cte or not COLUMN.match(field_name):
            raise Skip(f"{test} needs {to}: ref('…') and a {field_key}, got {args!r}")
        return parent.asset, field_name

    def _custom(
        self,
        name: str,
        args: dict[str, Any],
        column: str | None,
        target: TestedNode,
        config: dict[str, Any],
        where: str,
    ) -> tuple[TestQuery, dict[str, Any]] | None:
        """A test macro of the project (``{% test name %}`` or ``test_<name>``) rendered as dbt
        renders it: ``model`` is the asset (or its rows meeting ``where``), then the arguments.
        Returns the test and the configs its ``config()`` calls set; None if it is not one."""
        definition = self._test_macro(name)
        if definition is None:
            return None
        macro = definition.name
        restrict = config.get("where")
        model: Any = target.relation
        if restrict:
            model = text(
                select_from(table(target.asset)).where(user_sql(str(restrict))).subquery("dbt_subquery")
            )
        scope = Scope(name, where.split(":")[0], "test", config=dict(config))
        context = self.renderer.context(scope, self.resolver(where))
        kwargs = {**args, "model": model, **({"column_name": column} if column else {})}
        called = macro if definition.package is None else f"{definition.package}.{macro}"
        # Called from a template, as dbt does, so that an error names the macro's own line.
        call = self.renderer.jinja.env.from_string("{{ " + called + "(**dbt_generic_test_kwargs) }}")
        try:
            sql = call.render({**context, "dbt_generic_test_kwargs": kwargs}).strip().rstrip(";")
        except Exception as err:  # the project's macro: report where it went wrong, and go on
            error = self.renderer.jinja.error(err, definition.file, context)
            raise Skip(f"{name} could not be rendered: {error.message}") from None
        if not sql:
            raise Skip(f"{name} rendered no SQL ({definition.file}:{definition.line})")
        captured = {k: v for k, v in scope.captured.items() if k in CONFIG_KEYS and k != "where"}
        return TestQuery(written=sql), captured

    def _test_macro(self, name: str) -> MacroDef | None:
        """The generic test ``name`` names: ``test_<name>`` in the root project, then (bare) in the
        installed packages by name, or in the package ``<package>.<name>`` names. dbt_utils' tests
        with a built-in equivalent keep it (a package copy is used only for the others)."""
        namespace, _, test = name.rpartition(".")
        macro = f"test_{test}"
        jinja = self.renderer.jinja
        if namespace in ("", self.project.name) and macro in jinja.macros:
            return jinja.macros[macro]
        if namespace in ("", "dbt") and _has_builtin("dbt", test):
            return None
        if namespace == "dbt_utils" and _has_builtin(namespace, test):
            return None
        packages = [namespace] if namespace not in ("", self.project.name) else list(jinja.package_macros)
        for package in packages:
            found = jinja.package_macros.get(package, {}).get(macro)
            if found is not None:
                return found
        return None
