"""Runs: the run history with filters (status, environment, started since a date), and the form
that starts a run for a selection. Filters live in the query string, so a filtered list is a link."""

from __future__ import annotations

from datetime import date
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from gristmill.errors import ConfigError
from gristmill.ui.access import form_of

if TYPE_CHECKING:
    from fastapi import APIRouter

    from gristmill.state import RunRecord
    from gristmill.ui.render import Ui
    from gristmill.ui.services import UiServices

STATUSES = ("running", "success", "failed", "cancelled")
SHOWN = 100


def run_env(run: RunRecord) -> str:
    """The environment a run wrote: its recorded arguments hold ``--env NAME`` unless it was prod."""
    words = run.selection.split()
    for flag, value in pairwise(words):
        if flag == "--env":
            return value
    return "prod"


def data(services: UiServices, *, status: str = "", env: str = "", since: str = "") -> dict[str, Any]:
    if status and status not in STATUSES:
        raise ConfigError(f'no run status "{status}"', hint=f"one of {', '.join(STATUSES)}")
    if since:
        try:
            date.fromisoformat(since)
        except ValueError:
            raise ConfigError(f'since "{since}" is not a date', hint="write YYYY-MM-DD") from None
    runs = services.workspace.runs(SHOWN, status=status or None, since=since or None)
    if env:
        runs = [r for r in runs if run_env(r) == env]
    rows = [{"run": r, "env": run_env(r), "errors": r.summary.get("failed", 0)} for r in runs]
    return {
        "rows": rows,
        "filters": {"status": status, "env": env, "since": since},
        "statuses": STATUSES,
        "envs": sorted({"prod", services.env, *(row["env"] for row in rows)}),
    }


_HINT = "a selection like +marts.revenue, an environment name, days as YYYY-MM-DD (to needs from)"


def _days(start: str, end: str) -> bool:
    """Both empty, or ``from`` a day and ``to`` empty or a day."""
    try:
        return (not start and not end) or (
            bool(start) and all(date.fromisoformat(d) for d in (start, end) if d)
        )
    except ValueError:
        return False


def mount(router: APIRouter, ui: Ui) -> None:
    def runs(request: Request, status: str = "", env: str = "", since: str = "") -> Response:
        return ui.show(
            request,
            "runs.html.j2",
            lambda: data(ui.services, status=status, env=env, since=since),
            active="runs",
        )

    async def start(request: Request) -> Response:
        form = await form_of(request)
        checked = ui.check_post(request, form)
        if isinstance(checked, Response):
            return checked
        selection = [s for s in str(form.get("select") or "").split() if s]
        env = str(form.get("env") or ui.services.env)
        start, end = str(form.get("from") or ""), str(form.get("to") or "")
        # Handed to a `gristmill` process as arguments: nothing may read as an option.
        if any(v.startswith("-") for v in (*selection, env)) or not _days(start, end):
            refused = ConfigError("not a selection, environment or day this form can start", hint=_HINT)
            return ui.html("coming.html.j2", request, None, status=400, problem=refused)
        launcher = ui.services.launcher
        assert launcher is not None
        if start:
            run_id = await run_in_threadpool(launcher.backfill, selection, env, start, end or None)
        else:
            run_id = await run_in_threadpool(launcher.run, selection, env)
        where = f"/runs/{run_id}" if run_id is not None else "/runs?status=failed"
        return RedirectResponse(where, status_code=303)

    router.add_api_route("/runs", runs, methods=["GET"])
    router.add_api_route("/runs", start, methods=["POST"])
