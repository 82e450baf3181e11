"""The column types of a dbt project's assets, known before anything runs, for unit tests.

dbt builds a unit test's input rows with every column of the input relation, typed as the
warehouse has it: a column the test leaves out is NULL, a value given as text is cast to the
column's type. Nothing is built yet, so the types are worked out the way they will be, by the
probe of the project's engine kind (``project/probe.py``): a seed's from its CSV, read as the seed
lands, and a model's from its SQL described over empty tables typed the same way, recursively.
An asset whose types cannot be known (a table a Gristmill source lands, a snapshot) has none: its
rows are used as given."""

from __future__ import annotations

from collections.abc import Mapping

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from gristmill._util.naming import snake_case
from gristmill.errors import EngineError
from gristmill.project.dialect import PROJECT_DIALECT
from gristmill.project.probe import CompileProbe, Types
from gristmill.project.specs import ModelSpec, SourceTable


class AssetTypes:
    """``types(asset)``: column -> type, or None when they cannot be known."""

    def __init__(
        self,
        models: Mapping[str, ModelSpec],
        seeds: Mapping[str, SourceTable],
        root: str,
        probe: CompileProbe,
    ) -> None:
        self.models = models
        self.seeds = seeds
        self.root = root
        self.probe = probe
        self._busy: set[str] = set()
        self._known: dict[str, Types | None] = {}

    def types(self, asset: str) -> Types | None:
        if asset not in self._known:
            self._known[asset] = self._types(asset)
        return self._known[asset]

    def _types(self, asset: str) -> Types | None:
        if asset in self._busy:
            return None
        self._busy.add(asset)
        try:
            if asset in self.seeds:
                return self._seed(self.seeds[asset])
            model = self.models.get(asset)
            if model is None or model.error is not None or model.kind == "snapshot" or not model.sql:
                return None
            return self._model(model)
        except (EngineError, SqlglotError, OSError):
            return None  # the test's rows are used as given; running the test reports the problem
        finally:
            self._busy.discard(asset)

    def _seed(self, table: SourceTable) -> Types:
        options = dict(table.options.get("options") or {})
        path = f"{self.root}/{table.options['path']}"
        found = self.probe.csv_types(
            path, list(options.get("nullstr") or [""]), options.get("delim"), options.get("types")
        )
        return {snake_case(column): kind for column, kind in found.items()}  # as the seed lands

    def _model(self, model: ModelSpec) -> Types | None:
        tree = sqlglot.parse_one(model.sql, read=PROJECT_DIALECT)
        tables: dict[str, Types] = {}
        for table in {f"{t.db}.{t.name}" for t in tree.find_all(exp.Table) if t.db}:
            if table == model.asset:
                continue
            upstream = self.types(table)
            if upstream is None:
                if table in self.models or table in self.seeds:
                    return None
                continue  # not an asset: a CTE or a function the SQL names
            tables[table] = upstream
        return self.probe.query_types(model.sql, tables)
