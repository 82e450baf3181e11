"""The asset graph's routes: the page, its layout, selections, an asset's details, column lineage,
and the page's own static files (served here, so the graph needs no other mount).

The page keeps its state (search, selection, colouring, view) in the query string: a pasted
link opens the same view."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from gristmill.errors import GristmillError
from gristmill.plan import AssetGraph, Plan, select
from gristmill.plan.lineage import Lineage
from gristmill.project.definition import Project
from gristmill.runtime.published import lineage as lineage_of
from gristmill.ui.graph.columns import column_graph
from gristmill.ui.graph.lineage_graph import Drawn, drawn_graph
from gristmill.ui.graph.payload import attributes, layout_of
from gristmill.ui.registry import site_bar


class Workspace(Protocol):
    """What the graph reads of ``gristmill.workspace.Workspace`` (named here, not imported, so
    the workspace may import this router without a cycle)."""

    project: Project
    graph: AssetGraph

    @property
    def root(self) -> Path: ...

    def assets(self, selection: Sequence[str] = (), env: str = "prod") -> Sequence[Any]: ...

    def plan(self, *, env: str = "prod") -> Plan: ...


HERE = Path(__file__).parent
STATIC = HERE / "static"
PLAN_SECONDS = 30.0
"""How long one plan answers column lineage: planning costs ~1 s on a small project, and a user
clicking through columns asks many times a minute; a run in between shows after this."""
CACHE = "public, max-age=3600"
"""Static files change only with a new Gristmill version; an hour keeps reloads from asking."""

_templates = Environment(
    loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]), auto_reload=False
)


def _problem(error: GristmillError, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error.message, "hint": error.hint}, status_code=status)


def graph_router(workspace: Workspace, env: str = "prod") -> APIRouter:
    """Routes under ``/graph`` over ``workspace``'s project, statuses read from ``env``."""
    router = APIRouter(tags=["ui: asset graph"], include_in_schema=False)
    lock = threading.Lock()  # one workspace call at a time: it holds open resources
    drawn: list[Drawn] = []
    planned: list[tuple[float, Plan]] = []

    def lineage(target: str) -> Lineage:
        """Column lineage from a plan at most ``PLAN_SECONDS`` old."""
        with lock:
            if not planned or time.monotonic() - planned[0][0] > PLAN_SECONDS:
                planned[:] = [(time.monotonic(), workspace.plan(env=env))]
            return lineage_of(workspace.graph, planned[0][1], target)

    def graph() -> Drawn:
        if not drawn:
            drawn.append(drawn_graph(workspace.project, workspace.graph))
        return drawn[0]

    @router.get("/graph", response_class=HTMLResponse)
    def page() -> HTMLResponse:
        return HTMLResponse(
            _templates.get_template("graph.html").render(
                project=workspace.root.name, site_bar=site_bar("graph")
            )
        )

    @router.get("/graph/layout.json")
    def layout() -> JSONResponse:
        shown = graph()
        try:
            with lock:
                infos = workspace.assets(env=env)
        except GristmillError:  # no history or lake yet: every node "never run"
            infos = []
        return JSONResponse({**layout_of(shown), "attributes": attributes(shown, infos)})

    @router.get("/graph/select.json")
    def selection(
        expr: str = Query(..., description="e.g. +revenue, fct_sales+2, tag:finance"),
    ) -> JSONResponse:
        try:
            return JSONResponse({"names": select(graph().graph, [expr], compiled=False)})
        except GristmillError as error:
            return _problem(error)

    @router.get("/graph/asset.json")
    def asset(name: str) -> JSONResponse:
        shown = graph()
        if name not in shown.graph.assets:
            return JSONResponse({"error": f'no asset "{name}"', "hint": None}, status_code=404)
        return JSONResponse(_details(shown, name, lineage))

    @router.get("/graph/columns/{schema}/{name}/{column}", response_class=HTMLResponse)
    def columns(schema: str, name: str, column: str) -> HTMLResponse:
        target = f"{schema}.{name}"
        try:
            found = lineage(f"{target}.{column}")
        except GristmillError as error:
            html = _templates.get_template("columns.html").render(
                asset=target, column=column, error=error.message, hint=error.hint, columns=[]
            )
            return HTMLResponse(html, status_code=404)
        html = _templates.get_template("columns.html").render(
            asset=target, column=column, picture=column_graph(found), columns=found.columns
        )
        return HTMLResponse(html)

    @router.get("/graph/static/{file}")
    def static(file: str) -> FileResponse:
        path = STATIC / file
        if "/" in file or file.startswith(".") or not path.is_file():
            raise HTTPException(404, f"no file {file}")
        return FileResponse(path, headers={"Cache-Control": CACHE})

    return router


def _details(shown: Drawn, name: str, lineage: Callable[[str], Lineage]) -> dict[str, Any]:
    """What the side panel shows of one node; its columns from the project's column lineage."""
    node = shown.graph.assets[name]
    columns: list[str] = []
    if name not in shown.metrics:
        try:
            columns = list(lineage(name).columns)
        except GristmillError:  # an asset whose SQL could not be analysed: no columns to show
            columns = []
    schema, _, short = name.partition(".")
    return {
        "name": name,
        "schema": schema,
        "short": short,
        "kind": str(node.kind),
        "tags": list(node.tags),
        "upstream": list(node.upstream),
        "downstream": list(shown.graph.children.get(name, ())),
        "columns": columns,
        "checks": [check.name for check in node.checks],
        "owner": (node.contract.owner if node.contract is not None else None)
        or (node.model.owner if node.model is not None else None),
        "catalog": None if name in shown.metrics else f"/catalog/{schema}/{short}",
        "file": node.file,
    }
