"""``gristmill docs build`` over a workspace: the CLI comes here, never to ``gristmill.ui``
(it imports only the workspace). What the UI cannot know of the project (each model's compiled
SQL, its declared checks) is gathered here and handed to the pages."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gristmill.ui.docsite import Built
    from gristmill.workspace.facade import Workspace


def model_docs(workspace: Workspace, env: str) -> dict[str, dict[str, Any]]:
    """Per asset: its file, SQL as written and as compiled for ``env``, declared checks."""
    compiled = {m.model: m for m in workspace.compile(env=env)}
    found: dict[str, dict[str, Any]] = {}
    for name, asset in workspace.graph.assets.items():
        model = compiled.get(name)
        checks = [{"name": c.name, "severity": c.severity, "location": c.location} for c in asset.checks]
        if model is None and not checks:
            continue
        found[name] = {
            "file": asset.file,
            "raw": asset.model.sql if asset.model is not None else None,
            "compiled": _pretty(model.sql, workspace.project.settings.engine.kind) if model else None,
            "problem": model.problem if model is not None else None,
            "checks": checks,
        }
    return found


def _pretty(sql: str | None, dialect: str) -> str | None:
    """The compiled query laid out on lines for reading (the engine runs the one-line text, which
    ``gristmill compile`` prints); as it is if sqlglot cannot lay it out."""
    if sql is None:
        return None
    import sqlglot
    from sqlglot.errors import SqlglotError

    try:
        return sqlglot.parse_one(sql, read=dialect).sql(dialect=dialect, pretty=True)
    except (SqlglotError, ValueError):
        return sql


def build_docs_site(workspace: Workspace, out: Path, *, env: str = "prod", samples: bool = False) -> Built:
    """The static docs site of what ``env`` serves, written to ``out``; sample rows (masked as
    the UI masks personal data) only when ``samples``."""
    from gristmill.runtime.datadiff import diff
    from gristmill.ui.docsite import build_site
    from gristmill.ui.services import StaticSite, UiServices

    site = StaticSite(samples=samples, models=model_docs(workspace, env))
    tables = workspace.reader(env)
    try:
        compare = lambda asked: diff(workspace.project, workspace.graph, asked)  # noqa: E731
        services = UiServices(workspace, tables, env, compare, None, static_site=site)
        return build_site(services, workspace, out)
    finally:
        tables.close()
