"""Where a check that reads other assets runs: one reading an asset built from its own runs when
the last asset it reads is built, as dbt runs a test once every node it reads is built."""

from __future__ import annotations

import logging

from sqlglot import exp

from gristmill.errors import ProjectError
from gristmill.project.checks import parse_failing_rows_query, query_reads
from gristmill.project.dbt.context import Scope
from gristmill.project.dbt.tests.generic import relationships_test
from gristmill.project.dbt.tests.mapper import TestMapper
from gristmill.project.dbt.tests.query import table as table_of
from gristmill.project.dbt.tests.query import text
from gristmill.project.dbt.tests.render import sql_files
from gristmill.project.specs import CheckSpec

log = logging.getLogger("gristmill.dbt")


def placed(checks: list[CheckSpec], mapper: TestMapper, known: set[str]) -> list[CheckSpec]:
    """Checks that read other assets, each run where it can be: one reading an asset built from
    its own runs when the last asset it reads is built, as dbt runs a test once every node it
    reads is built (checked with its own asset, the run would have to loop)."""
    lineage: _Lineage | None = None
    schemas = {asset.split(".", 1)[0] for asset in known}
    placed: list[CheckSpec] = []
    for check in checks:
        reads = _reads(check)
        strangers = [r for r in reads if r not in known and r.split(".", 1)[0] in schemas]
        if strangers:
            log.warning(
                "%s: test not run: %s reads %s, which no model, seed or source builds",
                check.location,
                check.name,
                strangers[0],
            )
            continue
        reads = [r for r in reads if r in known and r != check.asset]
        if not reads:
            placed.append(check)
            continue
        lineage = lineage or _Lineage(mapper)
        if not any(lineage.built_from(r, check.asset) for r in reads):
            placed.append(check)
            continue
        everything = [check.asset, *reads]
        last = next(c for c in reads if not any(lineage.built_from(o, c) for o in everything if o != c))
        placed.append(_moved(check, last))
    return placed


def _reads(check: CheckSpec) -> list[str]:
    if check.kind == "relationships":
        return [str(check.params["to"]).rsplit(".", 1)[0]]
    return list(query_reads(check))


def _moved(check: CheckSpec, asset: str) -> CheckSpec:
    """``check`` as a query check on ``asset``, reading its own asset by name."""
    if check.kind == "relationships":
        parent, field_name = str(check.params["to"]).rsplit(".", 1)
        query = relationships_test(check.columns[0], parent, field_name).failing_rows(None)
    else:
        query = parse_failing_rows_query(str(check.params["sql"]))
    ctes = {cte.alias for cte in query.find_all(exp.CTE)}
    for table in list(query.find_all(exp.Table)):
        if not table.db and not table.catalog and table.name == "this" and "this" not in ctes:
            table.replace(exp.alias_(table_of(check.asset), table.alias or "this", table=True))
    name = str(check.params.get("name") or check.name)
    params = {"sql": text(query), "name": name}
    return CheckSpec("query", asset, (), params, check.severity, check.location)


class _Lineage:
    """The assets each model reads (through ephemeral models too), from rendering the models
    again with a resolver that records ``ref()`` and ``source()``."""

    def __init__(self, mapper: TestMapper) -> None:
        self._reads: dict[str, set[str]] = {}
        project, renderer = mapper.project, mapper.renderer
        for folder in project.model_paths:
            for path in sql_files(project.root / folder):
                file = path.relative_to(project.root).as_posix()
                try:
                    relation = mapper.evaluate(f"ref({path.stem!r})", file)
                except ProjectError:
                    continue  # a disabled model
                resolver = mapper.resolver(file)
                scope = Scope(path.stem, file, "model", None if relation.is_cte else relation)
                template = f"{file}#lineage"
                try:
                    renderer.jinja.add(template, file, path.read_text(encoding="utf-8"))
                    renderer.jinja.render(template, renderer.context(scope, resolver), file=file)
                except ProjectError:
                    pass  # the model's own rendering reports it
                self._reads[relation.asset] = {r.asset for r in resolver.used}

    def built_from(self, asset: str, ancestor: str) -> bool:
        """Whether ``asset`` reads ``ancestor``, directly or through other models."""
        seen: set[str] = set()
        stack = list(self._reads.get(asset, ()))
        while stack:
            current = stack.pop()
            if current == ancestor:
                return True
            if current not in seen:
                seen.add(current)
                stack.extend(self._reads.get(current, ()))
        return False
