"""Before a run: every model the plan builds can be written in the engine's dialect.

A model is written in the project's dialect (DuckDB's unless it says otherwise) and transpiled
for the engine when it runs. What the engine has no form for (``* EXCLUDE`` on PostgreSQL, a
DuckDB-only function) is refused here, naming the model's file, line and the construct, before
any step runs: not a server error halfway through the run."""

from __future__ import annotations

from collections.abc import Iterable

from gristmill.errors import SQLError
from gristmill.plan.planner import Step
from gristmill.sql.render import unspellable


def refuse_unspellable(steps: Iterable[Step], dialect: str) -> None:
    """Raise SQLError for the first built SQL model ``dialect`` cannot spell."""
    for step in steps:
        parsed = step.asset.parsed
        if step.action != "build" or parsed is None or parsed.passthrough or parsed.dialect == dialect:
            continue
        if step.asset.kind == "stream":
            continue  # rewritten into windows when built: checked where it runs
        queries = [parsed, step.asset.incremental_parsed]
        for query in (q for q in queries if q is not None):
            found = unspellable(query.expression, dialect)
            if found is None:
                continue
            message, node = found
            raise SQLError(
                f"{step.asset.name} cannot run on the {dialect} engine: {message}",
                location=query.where(node),
                hint=f"rewrite it in SQL {dialect} has a form for (or write the model in the "
                f"engine's dialect); `gristmill compile --dialect {dialect}` shows each model's SQL",
            )
