"""The UI's router: static files, login and logout, every page of the registry.

Mounted by ``gristmill serve`` beside the data API (same process, same reader, same keys). Its
routes are outside ``/api/v1``, so the API's key middleware lets them through; the UI checks the
visitor itself (``access.py``): a cookie rather than a header, since a browser navigates."""

from __future__ import annotations

import mimetypes
from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from gristmill.ui.access import COOKIE, check_key, form_of, safe_next
from gristmill.ui.registry import NAV, PAGES, Page
from gristmill.ui.render import Ui
from gristmill.ui.services import UiServices

STATIC_PREFIX = "/ui/static/"


def _static_files() -> dict[str, Path]:
    """Every file under ``static/`` by its relative name: only these are served (no path walks)."""
    root = Path(str(files("gristmill.ui") / "static"))
    return {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}


def ui_router(services: UiServices) -> APIRouter:
    """The UI's routes for ``create_app(routers=[...])``."""
    router = APIRouter(include_in_schema=False)
    ui = Ui(services, NAV)
    statics = _static_files()

    @router.get(STATIC_PREFIX + "{name:path}")
    def static(name: str) -> Response:
        path = statics.get(name)
        if path is None:
            return Response("not found", status_code=404, media_type="text/plain")
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        # The URLs carry a version (``?v=``): a browser may keep them for a day.
        return Response(
            path.read_bytes(), media_type=kind, headers={"Cache-Control": "public, max-age=86400"}
        )

    @router.get("/login")
    def login_page(request: Request, next: str = "/") -> Response:
        if services.keys is None:
            return RedirectResponse(safe_next(next), status_code=303)
        return ui.html("login.html.j2", request, None, next=safe_next(next), failed=False)

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await form_of(request)
        target = safe_next(str(form.get("next") or "/"))
        token = str(form.get("key") or "").strip()
        if services.keys is None:
            return RedirectResponse(target, status_code=303)
        if not token or check_key(services.keys, token) is None:
            return ui.html("login.html.j2", request, None, next=target, failed=True, status=401)
        answer = RedirectResponse(target, status_code=303)
        secure = request.url.scheme == "https"
        answer.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=secure, path="/")
        return answer

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        form = await form_of(request)
        checked = ui.check_post(request, form)
        if isinstance(checked, Response):
            return checked
        answer = RedirectResponse("/login", status_code=303)
        answer.delete_cookie(COOKIE, path="/")
        return answer

    for page in PAGES:
        if page.mount is not None:
            page.mount(router, ui)
        elif not page.elsewhere:
            _placeholder(router, ui, page)
    return router


def _placeholder(router: APIRouter, ui: Ui, page: Page) -> None:
    def coming(request: Request) -> Response:
        return ui.show(request, "coming.html.j2", lambda: {"page": page}, active=page.key)

    router.add_api_route(page.path, coming, methods=["GET"])
