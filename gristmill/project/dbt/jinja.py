"""The Jinja side of a dbt project: a sandboxed environment holding every model and macro as a
named template, macros bound late into each model's context, and errors turned into
``file:line`` messages that say what to do instead of a traceback."""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import BaseLoader, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

from gristmill._util.suggest import did_you_mean
from gristmill.errors import ProjectError

log = logging.getLogger("gristmill.dbt")

_MACRO_BLOCK = re.compile(
    r"{%-?\s*macro\s+(?P<name>\w+)\s*\(.*?{%-?\s*endmacro\s*-?%}", re.DOTALL | re.IGNORECASE
)
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_$]*$")
_TEST_BLOCK = re.compile(
    r"{%-?\s*test\s+(?P<name>\w+)\s*\((?P<args>.*?)\)\s*-?%}(?P<body>.*?){%-?\s*endtest\s*-?%}",
    re.DOTALL,
)

KNOWN_PACKAGES = {
    "dbt_utils": "dbt-labs/dbt_utils",
    "dbt_date": "godatadriven/dbt_date (formerly calogica/dbt_date)",
    "dbt_expectations": "metaplane/dbt_expectations (formerly calogica/dbt_expectations)",
    "audit_helper": "dbt-labs/audit_helper",
    "codegen": "dbt-labs/codegen",
    "metrics": "dbt-labs/metrics",
    "dbt_external_tables": "dbt-labs/dbt_external_tables",
    "dbt_project_evaluator": "dbt-labs/dbt_project_evaluator",
    "spark_utils": "dbt-labs/spark_utils",
    "dbt_artifacts": "brooklyn-data/dbt_artifacts",
    "elementary": "elementary-data/elementary",
    "fivetran_utils": "fivetran/fivetran_utils",
    "dbt_constraints": "Snowflake-Labs/dbt_constraints",
    "dbt_meta_testing": "tnightengale/dbt_meta_testing",
    "dbt_profiler": "data-mie/dbt_profiler",
    "re_data": "re-data/re_data",
    "datavault4dbt": "ScalefreeCOM/datavault4dbt",
    "dbtvault": "Datavault-UK/dbtvault",
    "automate_dv": "Datavault-UK/automate_dv",
    "dbt_activity_schema": "bcodell/dbt_activity_schema",
    "dbt_set_similarity": "Matts52/dbt_set_similarity",
    "dbt_ml_preprocessing": "omnata-labs/dbt_ml_preprocessing",
    "snowplow_utils": "snowplow/snowplow_utils",
    "snowplow_web": "snowplow/snowplow_web",
    "tsql_utils": "dbt-msft/tsql_utils",
    "dbt_privacy": "pvcy/dbt_privacy",
    "logging": "dbt-labs/logging",
    "dbt_duckdb_utils": "duckdb/dbt_duckdb_utils",
}
"""Packages from the dbt package hub by the name their macros are called under, with where
they come from: an undefined name among these is a package that is not installed."""


class DbtError(Exception):
    """Raised by a helper called from a template (ref(), var(), raise_compiler_error()…); the render
    that catches it adds the template's file:line."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class MacroReturn(Exception):
    """dbt's ``{{ return(value) }}``: leaves the macro with ``value`` instead of its text."""

    def __init__(self, value: Any) -> None:
        super().__init__()
        self.value = value


def quote_identifier(name: str) -> str:
    """An identifier as DuckDB reads it back unchanged: bare when lower-case, else double-quoted."""
    return name if _IDENTIFIER.match(name) else '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Relation:
    """What ``ref()``, ``source()`` and ``this`` return: renders as ``schema.name``, the asset name.

    ``inline`` is set for an ephemeral model: it renders as its own SQL in parentheses."""

    schema: str
    identifier: str
    database: str = "main"
    type: str = "table"
    inline: Callable[[], str] | None = None

    @property
    def name(self) -> str:
        return self.identifier

    @property
    def table(self) -> str:
        return self.identifier

    @property
    def asset(self) -> str:
        return f"{self.schema}.{self.identifier}"

    @property
    def is_table(self) -> bool:
        return self.type == "table"

    @property
    def is_view(self) -> bool:
        return self.type == "view"

    @property
    def is_cte(self) -> bool:
        return self.inline is not None

    def render(self) -> str:
        if self.inline is not None:
            return f"(\n{self.inline()}\n)"
        return f"{quote_identifier(self.schema)}.{quote_identifier(self.identifier)}"

    def include(self, database: bool = True, schema: bool = True, identifier: bool = True) -> Relation:
        return self  # the asset name is always <schema>.<name>

    def quote(self, *args: Any, **kwargs: Any) -> Relation:
        return self

    def incorporate(self, **kwargs: Any) -> Relation:
        path = kwargs.get("path") or {}
        return Relation(
            str(path.get("schema", self.schema)),
            str(path.get("identifier", self.identifier)),
            self.database,
            str(kwargs.get("type", self.type)),
        )

    def __str__(self) -> str:
        return self.render()

    def __html__(self) -> str:
        return self.render()


class MacroNamespace:
    """Base of ``dbt_utils``, ``dbt_date``…: a package's macros as attributes. The sandbox lets
    templates reach its ``_private`` names, which packages call (``dbt_date._get_utils_namespaces``)."""


class _Sandbox(SandboxedEnvironment):
    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, MacroNamespace) and not attr.startswith("__"):
            return True
        return bool(super().is_safe_attribute(obj, attr, value))


class _Templates(BaseLoader):
    """Template sources by name; a name's filename is the file it came from (for tracebacks)."""

    def __init__(self) -> None:
        self.sources: dict[str, tuple[str, str]] = {}

    def get_source(self, environment: Any, template: str) -> tuple[str, str, Callable[[], bool]]:
        source, filename = self.sources[template]
        return source, filename, lambda: True


@dataclass(frozen=True)
class MacroDef:
    name: str
    file: str
    line: int
    template: str
    package: str | None = None
    """The package the macro comes from; None for the root project's own macros."""


class Jinja:
    """One environment for a project: models, snapshots and macros are templates in it."""

    def __init__(self) -> None:
        self._templates = _Templates()
        self.env = _Sandbox(
            loader=self._templates,
            extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols"],
            keep_trailing_newline=True,
            cache_size=-1,  # packages hold hundreds of macros: never compile one twice
        )
        self.macros: dict[str, MacroDef] = {}
        """The root project's macros, callable by bare name everywhere."""
        self.package_macros: dict[str, dict[str, MacroDef]] = {}
        """Each installed package's macros (and ``test_<name>`` generic tests), by package."""
        self.root_name = ""
        self.declared_packages: tuple[str, ...] = ()
        """Packages listed in packages.yml, for the hint when one is not installed."""
        self._files: set[str] = set()

    def add(
        self, name: str, file: str, source: str, first_line: int = 1, *, compile_now: bool = True
    ) -> None:
        """Register a template; ``first_line`` pads it so Jinja's line numbers are the file's.
        ``compile_now`` false (a package's macros, most never called) compiles it on first use."""
        self._templates.sources[name] = ("\n" * (first_line - 1) + source, file)
        self._files.add(file)
        if compile_now:
            self._template(name, file)

    def _template(self, name: str, file: str) -> Any:
        try:
            return self.env.get_template(name)  # a syntax error is reported at its file and line
        except TemplateSyntaxError as err:
            raise ProjectError(
                f"Jinja syntax error: {err.message}",
                location=f"{file}:{err.lineno}",
                hint="fix the template at this line (a tag left open, or a typo in {% %} / {{ }})",
            ) from None

    def add_macro_file(self, path: Path, file: str, package: str | None = None) -> None:
        """Each ``{% macro %}`` block of a file becomes its own template, so that macros calling one
        another are looked up in the model's context, where ``return()`` is handled. A package's
        macros are compiled when first called (most never are): a syntax error in one is reported
        at its file and line when a model calls it."""
        text = path.read_text(encoding="utf-8")
        table = self.macros if package is None else self.package_macros.setdefault(package, {})
        for block in _MACRO_BLOCK.finditer(text):
            name = block.group("name")
            line = text.count("\n", 0, block.start()) + 1
            if name in table:
                other = table[name]
                raise ProjectError(
                    f'two macros are both named "{name}": {other.file}:{other.line} and {file}:{line}',
                    location=f"{file}:{line}",
                    hint="rename or remove one of them",
                )
            template = f"{file}#{name}"
            self.add(template, file, block.group(0), first_line=line, compile_now=package is None)
            table[name] = MacroDef(name, file, line, template, package)

    def add_test_file(self, path: Path, file: str, package: str | None = None) -> None:
        """``{% test name(model, …) %}`` blocks become ``test_<name>`` macros, as dbt names them."""
        text = path.read_text(encoding="utf-8")
        table = self.macros if package is None else self.package_macros.setdefault(package, {})
        for block in _TEST_BLOCK.finditer(text):
            name = f"test_{block.group('name')}"
            line = text.count("\n", 0, block.start()) + 1
            source = f"{{% macro {name}({block.group('args')}) %}}{block.group('body')}{{% endmacro %}}"
            template = f"{file}#{name}"
            try:
                self.add(template, file, source, first_line=line, compile_now=package is None)
            except ProjectError as err:
                log.warning("%s: test %s not loaded: %s", err.location, name[5:], err.message)
                continue
            table[name] = MacroDef(name, file, line, template, package)

    def bind(self, definition: MacroDef, context: MutableMapping[str, Any]) -> _MacroCall:
        """One macro, looking names up in ``context`` when it runs (late bound)."""
        template = self._template(definition.template, definition.file)
        # Run the template's body (it only defines the macro) in a context sharing ``context``;
        # the macro is read from the context's own names, as Jinja exports no ``_private`` macro.
        run = template.new_context(vars=context, shared=True)
        for _ in template.root_render_func(run):
            pass
        return _MacroCall(run.vars[definition.name], definition)

    def bind_macros(self, context: dict[str, Any], names: Iterable[str] | None = None) -> BoundMacros:
        """Put the project's macros into ``context``, each seeing the context itself (late bound);
        each package's macros are bound on first use, seeing their own package's macros first,
        then the context (dbt's search order: the macro's own package, the root project, dbt)."""
        for name, value in self.env.globals.items():  # range, dict, namespace…: a shared context
            context.setdefault(name, value)  # (as macros get) does not see the globals otherwise
        for name in self.macros if names is None else names:
            context[name] = self.bind(self.macros[name], context)
        return BoundMacros(self, context)

    def render(self, template: str, context: Mapping[str, Any], *, file: str) -> str:
        try:
            return self.env.get_template(template).render(dict(context))
        except MacroReturn as returned:
            return str(returned.value)
        except Exception as err:  # anything a template does wrong is the project's error
            raise self.error(err, file, context) from None

    def evaluate(self, expression: str, context: Mapping[str, Any], *, where: str) -> Any:
        """The value of a Jinja expression (e.g. a test's ``to: ref('customers')``)."""
        try:
            return self.env.compile_expression(expression, undefined_to_none=False)(**context)
        except Exception as err:
            message = err.message if isinstance(err, DbtError) else str(err)
            raise ProjectError(f"cannot evaluate {expression!r}: {message}", location=where) from None

    def render_text(self, text: str, context: Mapping[str, Any], *, where: str) -> str:
        """Render a string from a YAML file (no template of its own)."""
        try:
            return self.env.from_string(text).render(dict(context))
        except Exception as err:
            message = err.message if isinstance(err, DbtError) else str(err)
            raise ProjectError(f"cannot render {text!r}: {message}", location=where) from None

    def error(self, err: Exception, file: str, context: Mapping[str, Any]) -> ProjectError:
        if isinstance(err, ProjectError):
            return err
        if isinstance(err, TemplateSyntaxError):
            return ProjectError(
                f"Jinja syntax error: {err.message}",
                location=f"{err.filename or file}:{err.lineno}",
                hint="fix the template at this line",
            )
        frames = [(f.filename, f.lineno) for f in _frames(err) if f.filename in self._files]
        line = next((n for name, n in frames if name == file), None)
        where = f"{file}:{line}" if line else file
        inner = frames[-1] if frames and frames[-1][0] != file else None
        within = f" (in {inner[0]}:{inner[1]})" if inner else ""
        if isinstance(err, DbtError):
            return ProjectError(err.message + within, location=where, hint=err.hint)
        if isinstance(err, UndefinedError):
            missing = re.match(r"'(\w+)' is undefined", str(err))
            hint = None
            name = missing.group(1) if missing else ""
            if name and name not in context and (name in KNOWN_PACKAGES or self._declared(name)):
                return self._missing_package(name, where, within)
            if missing:
                hint = did_you_mean(missing.group(1), [k for k in context if not k.startswith("_")])
                hint = hint or "define it as a macro in the macros folder, or check its spelling"
            return ProjectError(f"{err}{within}", location=where, hint=hint)
        return ProjectError(
            f"{type(err).__name__}: {err}{within}",
            location=where,
            hint="fix the Jinja at this line; see the dbt support notes in docs/dbt.md",
        )

    def _declared(self, name: str) -> list[str]:
        """The packages.yml entries that install ``name``, by the last part of their path:
        ``calogica/dbt_date``, ``https://github.com/org/dbt-my-utils.git`` for ``my_utils``."""

        def names(spec: str) -> set[str]:
            last = spec.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git").replace("-", "_").lower()
            return {last, last.removeprefix("dbt_")}

        return [spec for spec in self.declared_packages if name.lower() in names(spec)]

    def _missing_package(self, name: str, where: str, within: str) -> ProjectError:
        declared = self._declared(name)
        origin = KNOWN_PACKAGES.get(name)
        if declared:
            hint = f"packages.yml lists {declared[0]}: run `dbt deps` to install it into dbt_packages/"
        else:
            hint = f"add {(origin or name).split(' ')[0]} to packages.yml and run `dbt deps`"
        what = f"the {name} package ({origin})" if origin else f"the package {declared[0]}"
        return ProjectError(
            f"'{name}' is undefined: it is {what}, which is not in dbt_packages/{within}",
            location=where,
            hint=hint,
        )


def _frames(err: BaseException) -> Iterator[traceback.FrameSummary]:
    yield from traceback.extract_tb(err.__traceback__)


class _MacroCall:
    """A macro as dbt calls it: ``{{ return(x) }}`` inside makes ``x`` the macro's value."""

    def __init__(self, macro: Any, definition: MacroDef | None = None) -> None:
        self.macro = macro
        self.name = getattr(macro, "name", "")
        self.definition = definition

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self.macro(*args, **kwargs)
        except MacroReturn as returned:
            return returned.value


class _PackageNames(dict[str, Any]):
    """The names a package's macro sees: the package's own macros first (bound on first use),
    then everything the rendering context holds."""

    def __init__(self, jinja: Jinja, package: str, base: Mapping[str, Any]) -> None:
        super().__init__()
        self._jinja = jinja
        self._own = jinja.package_macros.get(package, {})
        self._base = base

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or key in self._own or key in self._base

    def __getitem__(self, key: str) -> Any:
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        if key in self._own:
            bound = self._jinja.bind(self._own[key], self)
            self[key] = bound
            return bound
        return self._base[key]

    def get(self, key: str, default: Any = None) -> Any:
        if key in self:
            return self[key]
        return default


class BoundMacros:
    """Macros by package for one rendering context; packages' macros are bound when first used."""

    def __init__(self, jinja: Jinja, context: dict[str, Any]) -> None:
        self.jinja = jinja
        self.context = context
        self._packages: dict[str, _PackageNames] = {}

    def get(self, package: str | None, name: str) -> Any | None:
        """``package``'s macro ``name`` (None or the root project's name: the root project's)."""
        if package is None or package == self.jinja.root_name:
            return self.context.get(name) if name in self.jinja.macros else None
        if name not in self.jinja.package_macros.get(package, {}):
            return None
        if package not in self._packages:
            self._packages[package] = _PackageNames(self.jinja, package, self.context)
        return self._packages[package][name]

    def has_package(self, package: str) -> bool:
        return package in self.jinja.package_macros
