"""Rendering a page: the Jinja environment, the visitor check, the layout's shared values.

Python shapes each page (a ``data`` function per page module, plain values, unit-tested without a
browser); the templates only lay them out, with autoescaping on so names and sample values stay
text. Charts are Vega-Lite specs built in Python and embedded as JSON (``chart`` filter)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import cached_property
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from gristmill.errors import GristmillError
from gristmill.ui.access import CSRF_FIELD, LoginNeeded, Visitor, csrf_ok, visitor
from gristmill.ui.services import UiServices

NO_VALUE = "\N{EN DASH}"
STATIC_VERSION = "1"
"""Appended to static URLs: bump it when a vendored file changes, so browsers fetch it again."""


class Ui:
    """The pages' shared machinery: services, templates, the visitor check."""

    def __init__(self, services: UiServices, nav: tuple[Any, ...]) -> None:
        self.services = services
        self.nav = nav

    @cached_property
    def templates(self) -> Environment:
        env = Environment(
            loader=PackageLoader("gristmill.ui", "templates"),
            autoescape=select_autoescape(["j2", "html"], default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        # Inside <script>: "<" escaped, so no value can close the element.
        env.filters["chart"] = lambda spec: json.dumps(spec, default=str).replace("<", "\\u003c")
        env.filters["when"] = when
        env.filters["count"] = lambda n: NO_VALUE if n is None else f"{n:,}"
        env.filters["seconds"] = seconds
        env.globals["query"] = query
        return env

    def show(
        self,
        request: Request,
        template: str,
        build: Callable[[], Mapping[str, Any]],
        *,
        active: str = "",
        status: int = 200,
    ) -> Response:
        """The page, or the redirect to login. A ``GristmillError`` while building (an unknown
        table, a diff without a key) is shown on the page, with its hint, never a traceback."""
        try:
            visiting = visitor(request, self.services.keys)
        except LoginNeeded as needed:
            return RedirectResponse(needed.location, status_code=303)
        try:
            values: Mapping[str, Any] = build()
            problem = None
        except GristmillError as err:
            values, problem, status = {}, err, 400
        return self.html(template, request, visiting, active=active, problem=problem, status=status, **values)

    def html(
        self, template: str, request: Request, visiting: Visitor | None, *, status: int = 200, **values: Any
    ) -> HTMLResponse:
        page = self.templates.get_template(template).render(
            nav=self.nav,
            request_path=request.url.path,
            visitor=visiting,
            csrf_field=CSRF_FIELD,
            env=self.services.env,
            project=self.services.workspace.project.settings.name,
            static_version=STATIC_VERSION,
            auth=self.services.keys is not None,
            static_site=self.services.static_site,
            **{"active": "", "problem": None, **values},
        )
        return HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-store"})

    def check_post(self, request: Request, form: Mapping[str, Any]) -> Visitor | Response:
        """The visitor of a POST whose CSRF token is right; else a refusal (303 to login, 403)."""
        try:
            visiting = visitor(request, self.services.keys)
        except LoginNeeded as needed:
            return RedirectResponse(needed.location, status_code=303)
        presented = form.get(CSRF_FIELD)
        if not csrf_ok(visiting, presented if isinstance(presented, str) else None):
            return HTMLResponse("refused: the form's CSRF token is missing or wrong", status_code=403)
        return visiting


def when(value: str | None) -> str:
    """An ISO timestamp as ``2026-12-07 21:47:01`` (UTC), or a dash."""
    if not value:
        return NO_VALUE
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def seconds(value: float | None) -> str:
    if value is None:
        return NO_VALUE
    if value < 60:
        return f"{value:.1f} s"
    minutes, rest = divmod(int(value), 60)
    return f"{minutes} min {rest} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def query(path: str, **params: Any) -> str:
    """A page's address with its state in the query string (empty values left out)."""
    kept = {k: v for k, v in params.items() if v not in (None, "", ())}
    return f"{path}?{urlencode(kept, doseq=True)}" if kept else path
