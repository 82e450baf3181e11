"""The names a dbt template sees: ref, source, config, var, env_var, is_incremental, this, target,
adapter, api, exceptions, return, log, the project's macros, each installed package's macros under
its name, ``dbt_utils`` and dbt's cross-database macros. A query that reads the warehouse's tables
while compiling is refused with a clear error (one that reads no table runs: see statements.py)."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import itertools
import json
import logging
import os
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Protocol

import yaml

from gristmill.project.dbt.config import DbtProject, Target
from gristmill.project.dbt.crossdb import CrossDb
from gristmill.project.dbt.dbt_utils import DbtUtils
from gristmill.project.dbt.jinja import (
    BoundMacros,
    DbtError,
    Jinja,
    MacroNamespace,
    MacroReturn,
    Relation,
    quote_identifier,
)
from gristmill.project.dbt.statements import Statements

log = logging.getLogger("gristmill.dbt")
DBT_VERSION = "1.10.0"
_MISSING = object()
RUN_STARTED_AT = dt.datetime.now(dt.UTC)  # once per process, as once per dbt invocation
INVOCATION_ID = str(uuid.uuid4())


class Resolver(Protocol):
    """What a context asks the compiler: where names point and which columns a relation has."""

    def ref(self, name: str, package: str | None) -> Relation: ...

    def source(self, source: str, table: str) -> Relation: ...

    def columns(self, relation: Any) -> list[str]: ...

    def relation(self, schema: str, identifier: str) -> Relation | None: ...


@dataclass
class Scope:
    """The node a template is rendered for."""

    name: str
    file: str
    resource_type: str = "model"
    this: Relation | None = None
    config: dict[str, Any] = field(default_factory=dict)
    """Configs known so far; ``config()`` calls are merged into ``captured`` and here."""
    captured: dict[str, Any] = field(default_factory=dict)
    incremental: bool = False
    executing: bool = True
    """False while only configs are collected: dbt's ``execute`` flag."""
    node: Mapping[str, Any] = field(default_factory=dict)


class _Config:
    """``{{ config(materialized='table') }}`` and ``config.get('unique_key')``."""

    def __init__(self, scope: Scope) -> None:
        self._scope = scope

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        values = dict(args[0]) if args and isinstance(args[0], dict) else {}
        values.update(kwargs)
        for key, value in values.items():
            self._scope.captured[key] = value
            self._scope.config[key] = value
        return ""

    def get(self, name: str, default: Any = None, validator: Any = None) -> Any:
        return self._scope.config.get(name, default)

    def require(self, name: str, validator: Any = None) -> Any:
        if name not in self._scope.config:
            raise DbtError(f'config "{name}" is required here', hint=f"set {name} in config() or the YAML")
        return self._scope.config[name]

    def set(self, name: str, value: Any) -> str:
        return self(**{name: value})

    def persist_relation_docs(self) -> bool:
        return False

    def persist_column_docs(self) -> bool:
        return False


@dataclass(frozen=True)
class Column:
    """A column as ``adapter.get_columns_in_relation`` returns it; only the name is known."""

    name: str
    data_type: str = "unknown"

    @property
    def column(self) -> str:
        return self.name

    @property
    def dtype(self) -> str:
        return self.data_type

    @property
    def quoted(self) -> str:
        return '"' + self.name.replace('"', '""') + '"'

    def is_string(self) -> bool:
        return False

    def is_number(self) -> bool:
        return False

    def is_numeric(self) -> bool:
        return False

    def is_integer(self) -> bool:
        return False

    def is_float(self) -> bool:
        return False

    def string_size(self) -> int:
        return 0


def _unsupported(name: str) -> Callable[..., Any]:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise DbtError(
            f"{name}() queries the warehouse while compiling, which Gristmill does not do",
            hint="write the values into the model (or a var in dbt_project.yml) instead",
        )

    return refuse


_BUILT_IN_NAMESPACES = ("dbt", "dbt_utils")
"""Namespaces Gristmill implements itself (as dbt-duckdb and dbt_utils emit them); their macros
win over an installed copy of the package, which may query the warehouse while compiling."""


class _Adapter:
    def __init__(
        self,
        project: DbtProject,
        macros: BoundMacros,
        resolver: Resolver,
        builtins: Mapping[str, Any],
    ) -> None:
        self._project = project
        self._macros = macros
        self._resolver = resolver
        self._builtins = builtins

    def _search_order(self, namespace: str | None, packages: Any) -> list[str | None]:
        """dbt's: the ``dispatch:`` config's search_order for the namespace; else the root project
        then the namespace's own package; no namespace searches the root project."""
        if namespace is None:
            listed = [str(p) for p in packages] if isinstance(packages, list | tuple) else []
            return [*listed, None] if listed else [None]
        if namespace in self._project.dispatch:
            return list(self._project.dispatch[namespace])
        return [self._project.name, namespace]

    def dispatch(
        self, macro_name: str, macro_namespace: str | None = None, packages: Any = None
    ) -> Callable[..., Any]:
        """The first ``duckdb__<name>`` or ``default__<name>`` macro in the search order (Gristmill's
        own for dbt and dbt_utils), else the built-in one."""
        for package in self._search_order(macro_namespace, packages):
            if package in _BUILT_IN_NAMESPACES and macro_name in self._builtins:
                return self._builtins[macro_name]
            for prefix in ("duckdb", "default"):
                found = self._macros.get(package, f"{prefix}__{macro_name}")
                if found is not None:
                    return found
        if macro_name in self._builtins:
            return self._builtins[macro_name]
        where = f"{macro_namespace}." if macro_namespace else ""
        installed = macro_namespace is None or self._macros.has_package(macro_namespace)
        raise DbtError(
            f'adapter.dispatch found no macro "{where}{macro_name}" (nor duckdb__/default__{macro_name})',
            hint=(
                "define it in the macros folder"
                if installed
                else f"the package {macro_namespace} is not in dbt_packages/: run `dbt deps`"
            ),
        )

    def quote(self, identifier: str) -> str:
        return '"' + str(identifier).replace('"', '""') + '"'

    def type(self) -> str:
        return "duckdb"

    def get_columns_in_relation(self, relation: Any) -> list[Column]:
        return [Column(name) for name in self._resolver.columns(relation)]

    def get_relation(
        self, database: Any = None, schema: Any = None, identifier: Any = None
    ) -> Relation | None:
        return self._resolver.relation(str(schema), str(identifier))

    def already_exists(self, schema: str, identifier: str) -> bool:
        return self._resolver.relation(schema, identifier) is not None

    def check_schema_exists(self, database: Any, schema: str) -> bool:
        return True

    def get_missing_columns(self, from_relation: Any, to_relation: Any) -> list[Column]:
        return []

    def expand_target_column_types(self, *args: Any, **kwargs: Any) -> str:
        return ""

    def quote_as_configured(self, identifier: str, quote_key: str) -> str:
        return str(identifier)


class _Namespace(MacroNamespace):
    """``dbt_utils.star``, ``jaffle_shop.my_macro``: names looked up when used."""

    def __init__(self, lookup: Callable[[str], Any]) -> None:
        self._lookup = lookup

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # Python's own; packages do call their _private macros
            raise AttributeError(name)
        return self._lookup(name)


def _raise_compiler_error(message: str) -> None:
    raise DbtError(str(message))


def _return(value: Any) -> None:
    raise MacroReturn(value)


def _log(message: Any, info: bool = False) -> str:
    log.log(logging.INFO if info else logging.DEBUG, "%s", message)
    return ""


def _warn(message: Any) -> str:
    log.warning("warning from the project: %s", message)
    return ""


def _project_functions(
    project: DbtProject, target: Target, scope: Scope, resolver: Resolver
) -> dict[str, Any]:
    """The functions that read the project, its target and the node being rendered."""

    def ref(*names: str, **kwargs: Any) -> Relation:
        if not names or len(names) > 2:
            raise DbtError("ref() takes a model name, or a package and a model name")
        return resolver.ref(str(names[-1]), str(names[0]) if len(names) == 2 else None)

    def source(source_name: str, table_name: str) -> Relation:
        return resolver.source(str(source_name), str(table_name))

    def var(name: str, default: Any = _MISSING) -> Any:
        found, value = project.var(name)
        if found:
            return value
        if default is not _MISSING:
            return default
        raise DbtError(
            f'var "{name}" is not set',
            hint=f"add it under vars: in dbt_project.yml, or give a default: var('{name}', …)",
        )

    def env_var(name: str, default: Any = _MISSING) -> Any:
        if name in os.environ:
            return os.environ[name]
        if default is not _MISSING:
            return default
        raise DbtError(f'environment variable "{name}" is not set', hint=f"export {name}=… or give a default")

    def is_incremental() -> bool:
        return scope.incremental

    def generate_schema_name(custom_schema_name: Any = None, node: Any = None) -> str:
        custom = str(custom_schema_name).strip() if custom_schema_name else ""
        return f"{target.schema}_{custom}" if custom else target.schema

    def generate_schema_name_for_env(custom_schema_name: Any = None, node: Any = None) -> str:
        custom = str(custom_schema_name).strip() if custom_schema_name else ""
        return custom if custom and target.name == "prod" else target.schema

    def generate_alias_name(custom_alias_name: Any = None, node: Any = None) -> str:
        if custom_alias_name:
            return str(custom_alias_name).strip()
        return str((node or {}).get("name", scope.name))

    return {
        "ref": ref,
        "source": source,
        "var": var,
        "env_var": env_var,
        "is_incremental": is_incremental,
        "generate_schema_name": generate_schema_name,
        "default__generate_schema_name": generate_schema_name,
        "generate_schema_name_for_env": generate_schema_name_for_env,
        "generate_alias_name": generate_alias_name,
        "default__generate_alias_name": generate_alias_name,
    }


def _fixed_names() -> dict[str, Any]:
    """What every rendering sees the same: modules, serialisers, logging, dbt's flags and graph."""
    return dict(
        should_full_refresh=lambda: False,
        flags=SimpleNamespace(FULL_REFRESH=False, STORE_FAILURES=False, WHICH="run", WARN_ERROR=False),
        dbt_version=DBT_VERSION,
        run_started_at=RUN_STARTED_AT,
        invocation_id=INVOCATION_ID,
        modules=SimpleNamespace(datetime=dt, re=re, itertools=itertools),
        fromjson=lambda text, default=None: json.loads(text) if text else default,
        tojson=lambda value, sort_keys=False: json.dumps(value, sort_keys=sort_keys, default=str),
        fromyaml=lambda text, default=None: yaml.safe_load(text) if text else default,
        toyaml=lambda value, sort_keys=False: yaml.safe_dump(value, sort_keys=sort_keys),
        local_md5=lambda text: hashlib.md5(str(text).encode()).hexdigest(),
        zip=zip,
        set=set,
        log=_log,
        print=lambda message: _log(message),
        doc=lambda *names: "",
        exceptions=SimpleNamespace(
            raise_compiler_error=_raise_compiler_error,
            warn=_warn,
            raise_not_implemented=_raise_compiler_error,
        ),
        graph={"nodes": {}, "sources": {}, "macros": {}, "exposures": {}, "metrics": {}},
        selected_resources=[],
        store_result=_unsupported("store_result"),
        get_columns_in_query=_unsupported("get_columns_in_query"),
        quote=quote_identifier,
    )


def build_context(
    jinja: Jinja, project: DbtProject, target: Target, scope: Scope, resolver: Resolver
) -> dict[str, Any]:
    context: dict[str, Any] = {}
    functions = _project_functions(project, target, scope, resolver)
    ref, source, var = functions["ref"], functions["source"], functions["var"]
    cross_db = CrossDb()
    utils = DbtUtils(
        var=lambda name, default=None: var(name, default),
        columns=resolver.columns if scope.executing else lambda relation: [],
        database=target.database,
        executing=scope.executing,
    )
    builtins = {**cross_db.functions(), **utils.functions()}
    statements = Statements(scope.executing, target.probe)
    this = scope.this
    context.update(cross_db.functions())
    context.update(functions)
    context.update(_fixed_names())
    context.update(
        config=_Config(scope),
        this=this,
        target=SimpleNamespace(**target.names(), **{"user": None, "account": None, "catalog": None}),
        schema=this.schema if this else target.schema,
        database=target.database,
        model=dict(scope.node),
        node=dict(scope.node),
        execute=scope.executing,
        project_name=project.name,
        api=SimpleNamespace(
            Relation=SimpleNamespace(create=_create_relation(target)),
            Column=SimpleNamespace(create=Column, translate_type=cross_db.translate_type),
        ),
        builtins={"ref": ref, "source": source},
        dbt_utils=utils.namespace(),
        dbt=_Namespace(lambda name: _lookup(builtins, name, "dbt")),
        statement=statements.statement,
        run_query=statements.run_query,
        load_result=statements.load_result,
        load_relation=lambda relation: resolver.relation(relation.schema, relation.identifier),
        load_cached_relation=lambda relation: resolver.relation(relation.schema, relation.identifier),
    )
    context["builtins"]["config"] = context["config"]
    context["return"] = _return
    context[project.name] = _Namespace(lambda name: _lookup(context, name, project.name))
    macros = jinja.bind_macros(context)
    for package in jinja.package_macros:
        if package == project.name:
            continue
        context[package] = _Namespace(functools.partial(_package_lookup, macros, package, builtins))
    context["adapter"] = _Adapter(project, macros, resolver, builtins)
    return context


def _lookup(names: Mapping[str, Any], name: str, namespace: str) -> Any:
    if name in names:
        return names[name]
    raise DbtError(f'"{namespace}.{name}" is not defined', hint=f"known: {namespace}.<macro name>")


def _package_lookup(macros: BoundMacros, package: str, builtins: Mapping[str, Any], name: str) -> Any:
    """``package.name``: Gristmill's own for dbt_utils' macros it implements, else the package's."""
    if package in _BUILT_IN_NAMESPACES and name in builtins:
        return builtins[name]
    found = macros.get(package, name)
    if found is None:
        raise DbtError(
            f'"{package}.{name}" is not defined: the installed {package} has no macro {name}',
            hint=f"check the name, or the version of {package} in packages.yml",
        )
    return found


def _create_relation(target: Target) -> Callable[..., Relation]:
    def create(
        database: Any = None, schema: Any = None, identifier: Any = None, type: Any = None, **_: Any
    ) -> Relation:
        return Relation(str(schema or target.schema), str(identifier), str(database or target.database))

    return create
