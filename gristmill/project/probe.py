"""What compiling a dbt project asks an engine before anything is built.

A dbt project is compiled as its adapter compiles it: a package may compute a value with a query
that reads no table (dbt_date sizes its series with ``datediff``), and a dbt unit test's input
rows take the column types its inputs will have (a seed's as its CSV lands, a model's as its SQL
types them). Only an engine can answer; this layer sits below the engines, so the loader is given
a :data:`ProbeFor` (``gristmill.engines.registry.compile_probe``) and asks it for the probe of
the project's engine kind once the settings are read.

Queries are written in the project's dialect (``project.dialect``): a probe renders them for its
engine. Types come back as sqlglot ``DataType`` nodes, the platform's type values. Every failure
is an ``EngineError``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from sqlglot import exp

from gristmill.errors import EngineError

Types = dict[str, exp.DataType]
"""Column -> type, in the column order the engine gives."""


class CompileProbe(Protocol):
    """The three questions compiling asks; each runs on private, empty scratch state."""

    def run_constant(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """The column names and rows of ``sql`` (a query reading no table), in UTC."""
        ...

    def csv_types(
        self, path: str, nullstr: list[str], delim: str | None, types: Mapping[str, str] | None
    ) -> Types:
        """The columns of a CSV file with a header, typed as it lands (``types``: the seed's
        ``column_types``, type texts in the project's dialect)."""
        ...

    def query_types(self, sql: str, tables: Mapping[str, Types]) -> Types:
        """The columns of ``sql`` over empty tables typed as ``tables`` says (``schema.name`` ->
        types)."""
        ...


ProbeFor = Callable[[str], CompileProbe]
"""The probe of an engine kind (``[engine] kind``)."""


class NoProbe:
    """The probe of a load given none (``load_project`` called without ``probe``): every question
    fails, so a constant query is an error and unit-test input types are unknown (rows are used
    as given). Interfaces always pass the probe of the project's engine."""

    def run_constant(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        raise _no_engine()

    def csv_types(
        self, path: str, nullstr: list[str], delim: str | None, types: Mapping[str, str] | None
    ) -> Types:
        raise _no_engine()

    def query_types(self, sql: str, tables: Mapping[str, Types]) -> Types:
        raise _no_engine()


def _no_engine() -> EngineError:
    return EngineError("no engine to ask while compiling (the project was loaded without a probe)")
