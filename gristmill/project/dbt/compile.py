"""Render a dbt project's models into Gristmill model specs.

Two passes, as dbt itself parses then compiles: the first renders every model with ``execute``
false only to collect its ``config()`` (so schema, alias and materialization are known before
any ``ref()`` points at them); the second renders the SQL, ``ref()`` and ``source()`` becoming
``<schema>.<name>`` asset names. An incremental model is rendered a second time with
``is_incremental()`` true; an ephemeral model is inlined where it is referenced.
"""

from __future__ import annotations

import contextlib
import csv
import logging
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.qualify import qualify

from gristmill._util.naming import snake_case
from gristmill._util.suggest import did_you_mean
from gristmill.errors import ConfigError, ProjectError
from gristmill.project.dbt.config import DbtProject, Target, merge_config
from gristmill.project.dbt.context import Scope, build_context
from gristmill.project.dbt.jinja import DbtError, Jinja, MacroNamespace, Relation
from gristmill.project.dbt.nodes import Node
from gristmill.project.dbt.properties import Properties, SourceTable
from gristmill.project.dialect import PROJECT_DIALECT
from gristmill.project.specs import HookSpec, ModelKind, ModelSpec

log = logging.getLogger("gristmill.dbt")
_KINDS: dict[str, ModelKind] = {"table": "table", "view": "view", "incremental": "incremental"}
_INTERVALS = {"hour": "hour", "day": "day", "month": "month"}


class Collecting:
    """The resolver of the first pass: every name resolves, nothing is checked yet."""

    def __init__(self, target: Target) -> None:
        self.target = target

    def ref(self, name: str, package: str | None) -> Relation:
        return Relation(self.target.schema, name, self.target.database)

    def source(self, source: str, table: str) -> Relation:
        return Relation(source, table, self.target.database)

    def columns(self, relation: Any) -> list[str]:
        return []

    def relation(self, schema: str, identifier: str) -> Relation | None:
        return None


def _constant(value: Any) -> Any:
    """A macro overridden by a unit test: whatever it is called with, it returns ``value``."""

    def macro(*args: Any, **kwargs: Any) -> Any:
        return value

    return macro


class _Overridden(MacroNamespace):
    """A package namespace with some macros overridden (``dbt_utils.current_timestamp: …``)."""

    def __init__(self, namespace: Any, overridden: dict[str, Any]) -> None:
        self._namespace = namespace
        self._overridden = overridden

    def __getattr__(self, name: str) -> Any:
        if name in self._overridden:
            return _constant(self._overridden[name])
        if self._namespace is None or name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._namespace, name)


class Compiler:
    def __init__(
        self,
        project: DbtProject,
        target: Target,
        jinja: Jinja,
        properties: Properties,
        nodes: Iterable[Node],
    ) -> None:
        self.project = project
        self.target = target
        self.jinja = jinja
        self.properties = properties
        self.nodes = list(nodes)
        self.by_name: dict[str, Node] = {}
        self.by_asset: dict[str, Node] = {}
        self.used_sources: dict[tuple[str, str], list[str]] = {}
        """Each source table used, with the nodes whose rendering read it (in order)."""
        self._sql: dict[tuple[str, bool], str] = {}
        self._columns: dict[str, list[str]] = {}
        self._busy: list[str] = []
        self._tested: set[str] = set()

    # --- pass 1: configs, names ------------------------------------------------------------------

    def configure(self, tested: set[str]) -> None:
        """Collect each node's own ``config()``, drop disabled nodes, and name every asset.
        ``tested`` names the models with tests: an ephemeral one is kept as a view to test it."""
        self._tested = tested
        for node in self.nodes:
            if node.template is not None:
                self._collect_config(node)
        self.nodes = [n for n in self.nodes if n.enabled]
        for node in self.nodes:
            node.schema = self._schema_of(node)
            node.alias = self._alias_of(node)
            if node.name in self.by_name:
                other = self.by_name[node.name]
                raise ProjectError(
                    f'two {node.kind}s are both named "{node.name}": {other.file} and {node.file}',
                    location=node.file,
                    hint="dbt needs every model, seed and snapshot name to be unique; rename one",
                )
            self.by_name[node.name] = node
        assets: dict[str, Node] = {}
        for node in self.nodes:
            if node.asset in assets and not self._inlined(node) and not self._inlined(assets[node.asset]):
                raise ProjectError(
                    f"{assets[node.asset].file} and {node.file} both build {node.asset}",
                    location=node.file,
                    hint="give one of them another alias or schema",
                )
            assets[node.asset] = node
        self.by_asset = assets

    def _collect_config(self, node: Node) -> None:
        scope = Scope(
            node.name,
            node.file,
            node.kind,
            Relation(self.target.schema, node.name, self.target.database),
            dict(node.config),
            executing=False,
            node=node.as_jinja(),
        )
        context = build_context(self.jinja, self.project, self.target, scope, Collecting(self.target))
        assert node.template is not None
        with contextlib.suppress(ProjectError):  # the second pass renders it again and reports it
            self.jinja.render(node.template, context, file=node.file)
        node.config = merge_config(node.config, scope.captured)

    def _call_macro(self, name: str, node: Node, *args: Any) -> str:
        scope = Scope(node.name, node.file, node.kind, config=dict(node.config), node=node.as_jinja())
        context = build_context(self.jinja, self.project, self.target, scope, self)
        macro = self.jinja.macros[name]
        try:
            return str(context[name](*args)).strip()
        except Exception as err:  # a user macro: report it at its file and line
            raise self.jinja.error(err, macro.file, context) from None

    def _schema_of(self, node: Node) -> str:
        if node.kind == "snapshot" and node.config.get("target_schema"):
            return str(node.config["target_schema"])
        custom = node.config.get("schema")
        if "generate_schema_name" in self.jinja.macros:
            return self._call_macro("generate_schema_name", node, custom, node.as_jinja())
        return self.target.schema if not custom else f"{self.target.schema}_{str(custom).strip()}"

    def _alias_of(self, node: Node) -> str:
        custom = node.config.get("alias")
        if "generate_alias_name" in self.jinja.macros:
            return self._call_macro("generate_alias_name", node, custom, node.as_jinja())
        return str(custom).strip() if custom else node.name

    def _inlined(self, node: Node) -> bool:
        return node.materialized == "ephemeral" and node.name not in self._tested

    # --- pass 2: SQL -------------------------------------------------------------------------------

    def relation_of(self, node: Node) -> Relation:
        if self._inlined(node):
            return Relation(
                node.schema, node.alias, self.target.database, "cte", lambda: self.render(node).strip()
            )
        kind = "view" if node.materialized in ("view", "ephemeral") else "table"
        return Relation(node.schema, node.alias, self.target.database, kind)

    def render(self, node: Node, *, incremental: bool = False) -> str:
        key = (node.name, incremental)
        if node.error is not None:
            raise node.error
        if key not in self._sql:
            if node.name in self._busy:
                loop = " -> ".join([*self._busy[self._busy.index(node.name) :], node.name])
                raise DbtError(f"models refer to each other in a loop: {loop}")
            self._busy.append(node.name)
            try:
                scope = self._scope(node, incremental)
                context = build_context(self.jinja, self.project, self.target, scope, self)
                assert node.template is not None
                text = self.jinja.render(node.template, context, file=node.file)
            finally:
                self._busy.pop()
            # Leading blank lines stay, so that SQL errors point at the file's lines when Jinja
            # has not shifted them.
            self._sql[key] = text.rstrip().rstrip(";").rstrip()
        return self._sql[key]

    def _scope(self, node: Node, incremental: bool) -> Scope:
        """What a model's Jinja sees of itself: name, file, kind, its relation (``this``), config."""
        return Scope(
            node.name,
            node.file,
            node.kind,
            self.relation_of(node) if not self._inlined(node) else Relation(node.schema, node.alias),
            dict(node.config),
            incremental=incremental,
            node=node.as_jinja(),
        )

    def render_overridden(
        self,
        node: Node,
        *,
        incremental: bool,
        macros: dict[str, Any],
        variables: dict[str, Any],
        env_vars: dict[str, str],
    ) -> str:
        """The model rendered as a dbt unit test's ``overrides`` ask: macros return the given
        values, vars and env vars take the given ones (not cached: for one test)."""
        if node.error is not None:
            raise node.error
        project = replace(self.project, cli_vars={**self.project.cli_vars, **variables})
        scope = self._scope(node, incremental)
        context = build_context(self.jinja, project, self.target, scope, self)
        if env_vars:
            plain = context["env_var"]
            context["env_var"] = lambda name, *default: (
                env_vars[name] if name in env_vars else plain(name, *default)
            )
        namespaced: dict[str, dict[str, Any]] = {}
        for name, value in macros.items():
            package, _, macro = str(name).rpartition(".")
            if package:
                namespaced.setdefault(package, {})[macro] = value
            else:
                context[macro] = _constant(value)
        for package, overridden in namespaced.items():
            context[package] = _Overridden(context.get(package), overridden)
        assert node.template is not None
        self._busy.append(node.name)
        try:
            text = self.jinja.render(node.template, context, file=node.file)
        finally:
            self._busy.pop()
        return text.rstrip().rstrip(";").rstrip()

    # --- the resolver templates call ----------------------------------------------------------------

    def ref(self, name: str, package: str | None) -> Relation:
        node = self.by_name.get(name)
        if node is None:
            known = [n.name for n in self.nodes]
            raise DbtError(
                f'ref("{name}") names no model, seed or snapshot',
                hint=did_you_mean(name, known) or "check the name, or whether that model is disabled",
            )
        return self.relation_of(node)

    def source(self, source: str, table: str) -> Relation:
        found = self.properties.sources.get((source, table))
        if found is None:
            known = [f"{s}.{t}" for s, t in self.properties.sources]
            hint = did_you_mean(f"{source}.{table}", known)
            raise DbtError(
                f'source("{source}", "{table}") is not declared',
                hint=hint or "declare it under sources: in a YAML file of the models folder",
            )
        readers = self.used_sources.setdefault((source, table), [])
        readers.extend(n for n in self._busy if n not in readers)  # an ephemeral's reader too
        return Relation(found.schema, found.identifier, self.target.database)

    def relation(self, schema: str, identifier: str) -> Relation | None:
        node = self.by_asset.get(f"{schema}.{identifier}")
        return self.relation_of(node) if node is not None else None

    def columns(self, relation: Any) -> list[str]:
        """The columns of a relation, known without running anything: a seed's CSV header, or a
        model's SELECT list (with ``*`` expanded from what it reads)."""
        if not isinstance(relation, Relation):
            raise DbtError(
                f"{relation!r} is not a relation: pass ref('…') or source('…', '…')",
                hint="macros that list columns need to know which model they read",
            )
        if relation.asset not in self._columns:
            node = self.by_asset.get(relation.asset)
            if node is None or node.kind == "snapshot":
                raise DbtError(
                    f"the columns of {relation.asset} are not known before it is loaded",
                    hint="list the columns in the model instead of asking for them",
                )
            self._columns[relation.asset] = (
                self._csv_columns(node) if node.kind == "seed" else self._model_columns(node)
            )
        return self._columns[relation.asset]

    def _csv_columns(self, node: Node) -> list[str]:
        delimiter = str(node.config.get("delimiter") or ",")
        with node.path.open(newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle, delimiter=delimiter), [])
        return [snake_case(name) for name in header]  # as the seed lands

    def _model_columns(self, node: Node) -> list[str]:
        sql = self.render(node)
        try:
            tree = sqlglot.parse_one(sql, read=PROJECT_DIALECT)
            schema: dict[str, object] = {}
            for table in tree.find_all(exp.Table):
                upstream = self.by_asset.get(f"{table.db}.{table.name}") if table.db else None
                if upstream is not None and upstream is not node:
                    columns = self.columns(self.relation_of(upstream))
                    tables = schema.setdefault(table.db, {})
                    assert isinstance(tables, dict)
                    tables[table.name] = {c: "unknown" for c in columns}
            qualified = qualify(tree, schema=schema, dialect=PROJECT_DIALECT, validate_qualify_columns=False)
        except SqlglotError as err:
            raise DbtError(f"cannot tell the columns of {node.asset} from its SQL: {err}") from None
        if not isinstance(qualified, exp.Query) or any(isinstance(s, exp.Star) for s in qualified.selects):
            raise DbtError(f"cannot tell the columns of {node.asset} from its SQL")
        return list(qualified.named_selects)

    # --- specs ----------------------------------------------------------------------------------

    def model_specs(self) -> dict[str, ModelSpec]:
        specs: dict[str, ModelSpec] = {}
        for node in self.nodes:
            if node.kind == "seed" or self._inlined(node):
                continue
            try:
                spec = self._spec(node)
            except ProjectError as err:
                # Kept with its error: a run that excludes it (-x) goes on without compiling it.
                spec = ModelSpec(node.asset, node.file, node.path, "", 1, "table", error=err)
            specs[spec.asset] = spec
        return specs

    def _spec(self, node: Node) -> ModelSpec:
        sql = self.render(node)
        entry = node.entry
        options: dict[str, Any] = {}
        materialized = node.materialized
        if node.kind == "snapshot":
            kind: ModelKind = "snapshot"
            options = self._snapshot_options(node)
        elif materialized == "ephemeral":
            kind = "view"  # tested, so it has to exist
        elif materialized in _KINDS:
            kind = _KINDS[materialized]
        else:
            raise ConfigError(
                f'materialized "{materialized}" is not supported',
                location=node.file,
                hint="use table, view, incremental or ephemeral",
            )
        if kind == "incremental":
            options = self._incremental_options(node)
            again = self.render(node, incremental=True)
            options["incremental_sql"] = again if again != sql else None
        columns = {
            str(c["name"]): self.properties.describe(c.get("description")) or ""
            for c in (entry.columns if entry else [])
            if c.get("description")
        }
        return ModelSpec(
            asset=node.asset,
            file=node.file,
            path=node.path,
            sql=sql,
            sql_line=1,
            kind=kind,
            tags=tuple(node.config.get("tags", [])),
            description=self.properties.describe(entry.data.get("description")) if entry else None,
            columns=columns,
            pre_hooks=self._hooks(node, "pre-hook"),
            post_hooks=self._hooks(node, "post-hook"),
            passthrough=True,  # dbt never parses a model: SQL sqlglot cannot read runs as written
            **options,
        )

    def _hooks(self, node: Node, key: str) -> tuple[HookSpec, ...]:
        """A model's hooks rendered as dbt renders them when the model runs: ``{{ this }}`` is the
        model (the table being built, when they run)."""
        hooks = node.config.get(key) or []
        found = []
        for hook in hooks if isinstance(hooks, list) else [hooks]:
            text = hook.get("sql") if isinstance(hook, dict) else hook
            if not text or not str(text).strip():
                continue
            scope = Scope(
                node.name,
                node.file,
                node.kind,
                self.relation_of(node),
                dict(node.config),
                node=node.as_jinja(),
            )
            context = build_context(self.jinja, self.project, self.target, scope, self)
            where = f"{node.file} ({key})"
            rendered = self.jinja.render_text(str(text), context, where=where).strip().rstrip(";").strip()
            if rendered:
                found.append(HookSpec(rendered, where))
        return tuple(found)

    def _key(self, node: Node, value: Any) -> tuple[str, ...]:
        keys = [value] if isinstance(value, str) else list(value or [])
        for key in keys:
            if not str(key).isidentifier():
                raise ConfigError(
                    f'unique_key "{key}" is not a column name',
                    location=node.file,
                    hint="list the key columns: unique_key=['a', 'b']",
                )
        return tuple(str(k) for k in keys)

    def _incremental_options(self, node: Node) -> dict[str, Any]:
        strategy = str(node.config.get("incremental_strategy") or "").replace("+", "_").lower()
        if strategy == "microbatch":
            return {
                "time": node.config.get("event_time"),
                "interval": _INTERVALS.get(str(node.config.get("batch_size")), "day"),
                "start": str(node.config["begin"]) if node.config.get("begin") else None,
                "lookback": int(node.config.get("lookback") or 0),
            }
        if strategy not in ("", "append", "merge", "delete_insert"):
            raise ConfigError(
                f'incremental_strategy "{strategy}" is not supported',
                location=node.file,
                hint="use append, merge, delete+insert or microbatch",
            )
        key = () if strategy == "append" else self._key(node, node.config.get("unique_key"))
        return {"key": key}

    def _snapshot_options(self, node: Node) -> dict[str, Any]:
        key = self._key(node, node.config.get("unique_key"))
        if not key:
            raise ConfigError(f'snapshot "{node.name}" needs unique_key', location=f"{node.file}:{node.line}")
        strategy = str(node.config.get("strategy") or "timestamp")
        time = node.config.get("updated_at") if strategy == "timestamp" else None
        return {"key": key, "time": str(time) if time else None}

    # --- sources ------------------------------------------------------------------------------------

    def unlanded_sources(self, landed: set[str]) -> dict[str, ConfigError]:
        """Every ``source()`` used must read a table something lands: a seed, a Gristmill source or
        a model. The error of each node that reads one that nothing lands, by asset (it fails
        only the commands that select it), naming the YAML that declares the source."""
        errors: dict[str, ConfigError] = {}
        for key, readers in self.used_sources.items():
            table: SourceTable = self.properties.sources[key]
            if table.asset in landed or table.asset in self.by_asset:
                continue
            for reader in readers:
                node = self.by_name[reader]
                errors.setdefault(
                    node.asset,
                    ConfigError(
                        f'source("{key[0]}", "{key[1]}") reads {table.asset}, but no seed or Gristmill '
                        f"source lands that table (used by {node.file})",
                        location=table.where,
                        hint=f"add a seed named {table.identifier} with schema {table.schema}, or a "
                        "Gristmill source in sources/*.yml landing there; see docs/dbt.md",
                    ),
                )
        return errors
