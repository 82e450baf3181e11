"""``GET /dashboards`` (the list) and ``GET /dashboards/{name}`` (a page, filters in the query
string so a filtered page is a link to paste), with ``ETag``/``If-None-Match`` answered 304 when
neither the file, the filters nor the data it reads changed. The chart scripts are served from
``/dashboards/static/`` unless ``scripts_url`` names where the UI serves its own copies."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from gristmill.dashboards.reading import DEFAULT_ROW_CAP, check_guarded
from gristmill.dashboards.render import SCRIPTS, STATIC, DashboardPages, render_list
from gristmill.errors import BadQuery, GristmillError

if TYPE_CHECKING:
    from gristmill.project import Project
    from gristmill.server.reading import TableReader

OWN_SCRIPTS = "/dashboards/static"


def dashboards_router(
    project: Project,
    tables: TableReader,
    *,
    scripts_url: str = OWN_SCRIPTS,
    row_cap: int = DEFAULT_ROW_CAP,
    site_bar: str = "",
) -> APIRouter:
    """``tables``: the serve process's tables reader (shared; its owner closes it);
    ``scripts_url``: where the pages load vega, vega-lite and vega-embed from (``*.min.js``);
    ``site_bar``: HTML put first in each page's body (the UI's menu when the UI serves them).
    Every sql block passes the SQL guard here, so a refused one stops the server from starting
    with its ``file:line``."""
    # Checked against what the project will serve, not by reading the lake: a router is built
    # while the serve process starts, when a run killed with the previous process may have left
    # the catalog to recover, and a read then held the lock the next run needed ("database is
    # locked", tests/e2e/test_scheduler.py). Each render checks again against its snapshot.
    for dashboard in project.dashboards.values():
        check_guarded(dashboard, _assets(project))
    pages = DashboardPages(project, tables, scripts_url=scripts_url, row_cap=row_cap)
    router = APIRouter(tags=["dashboards"])

    @router.get("/dashboards", response_class=HTMLResponse)
    def listing() -> HTMLResponse:
        return HTMLResponse(_with_bar(render_list(project.dashboards), site_bar))

    @router.get("/dashboards/static/{name}", include_in_schema=False)
    def script(name: str) -> FileResponse:
        if name not in SCRIPTS:
            raise HTTPException(404)
        return FileResponse(
            STATIC / name, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"}
        )

    @router.get("/dashboards/{name}", response_class=HTMLResponse)
    def page(name: str, request: Request) -> Response:
        if name not in project.dashboards:
            raise HTTPException(404, f'no dashboard "{name}"')
        try:
            found = pages.page(name, dict(request.query_params))
        except BadQuery as error:
            raise HTTPException(400, error.message) from None
        except GristmillError as error:
            raise HTTPException(503, error.message) from None
        etag = f'"{found.etag}"'
        given = request.headers.get("if-none-match", "")
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if etag in {t.strip() for t in given.split(",")}:
            return Response(status_code=304, headers=headers)
        return HTMLResponse(_with_bar(found.html, site_bar), headers=headers)

    return router


def _with_bar(html: str, site_bar: str) -> str:
    return html.replace("<body>", "<body>\n" + site_bar, 1) if site_bar else html


def _assets(project: Project) -> list[str]:
    return [*project.models, *(t.asset for s in project.sources.values() for t in s.tables.values())]
