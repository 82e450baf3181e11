"""A run's page: its steps as a Gantt timeline (every attempt a bar, so retries show), each step's
rows, checks and error, the run's logs; while the run is running the steps part polls (htmx) and
stops once it ends. Buttons: cancel, retry the failed steps."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from gristmill.errors import ConfigError
from gristmill.ui.access import form_of

if TYPE_CHECKING:
    from fastapi import APIRouter

    from gristmill.state import StepRecord
    from gristmill.ui.render import Ui
    from gristmill.ui.services import UiServices

LOG_LINES = 500
STATUS_COLOURS = {
    "success": "#2b7a78",
    "failed": "#c62828",
    "cancelled": "#8a8f98",
    "skipped": "#c9cdd2",
    "switched": "#6f9fd8",
    "running": "#b26a00",
}


def timeline(steps: list[StepRecord]) -> dict[str, Any] | None:
    """The Vega-Lite Gantt spec: one bar per step attempt from its start to its end, coloured by
    status; a retried step has a row per attempt (``asset #2``). None when no step has a time."""
    bars: list[dict[str, Any]] = []
    for step in steps:
        if not step.started_at:
            continue
        start = datetime.fromisoformat(step.started_at)
        end = start + timedelta(seconds=max(step.seconds or 0.0, 0.01))
        label = step.asset if step.attempt == 1 else f"{step.asset} #{step.attempt}"
        bars.append(
            {
                "step": label,
                "asset": step.asset,
                "attempt": step.attempt,
                "status": step.status,
                "start": start.isoformat(),
                "end": end.isoformat(),
                "seconds": round(step.seconds or 0.0, 3),
                "rows": step.rows,
            }
        )
    if not bars:
        return None
    statuses = sorted({b["status"] for b in bars})
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
        "width": "container",
        "height": {"step": 18},
        "data": {"values": bars},
        "mark": {"type": "bar", "cornerRadius": 2},
        "encoding": {
            "y": {"field": "step", "type": "nominal", "sort": {"field": "start"}, "title": None},
            "x": {"field": "start", "type": "temporal", "title": None, "axis": {"format": "%H:%M:%S"}},
            "x2": {"field": "end"},
            "color": {
                "field": "status",
                "type": "nominal",
                "scale": {"domain": statuses, "range": [STATUS_COLOURS.get(s, "#888") for s in statuses]},
                "legend": {"orient": "top", "title": None},
            },
            "tooltip": [
                {"field": "asset"},
                {"field": "attempt"},
                {"field": "status"},
                {"field": "seconds"},
                {"field": "rows"},
            ],
        },
    }


def data(services: UiServices, run_id: int, *, step: str = "") -> dict[str, Any]:
    workspace = services.workspace
    found = _lookup(services, run_id)
    if not found:
        raise ConfigError(f"no run {run_id}", hint="the Runs page lists them")
    run = found[0]
    steps = workspace.steps(run_id)
    built = [s for s in steps if s.status != "skipped" or s.action == "build"]
    checks, _ = workspace.quality_history(sorted({s.asset for s in steps}), env=services.env, runs=30)
    logs = workspace.logs(run_id, step or None)[-LOG_LINES:]
    return {
        "run": run,
        "steps": steps,
        "skipped": len(steps) - len(built),
        "chart": timeline(built),
        "checks": [c for c in checks if c.run_id == run_id],
        "logs": logs,
        "step": step,
        "failed": [s for s in built if s.status == "failed"],
        "live": run.status == "running",
    }


def _lookup(services: UiServices, run_id: int) -> list[Any]:
    """A run by id (``runs`` lists newest first: look far enough back to reach it)."""
    newest = services.workspace.runs(1)
    if not newest or run_id > newest[0].run_id or run_id < 1:
        return []
    return [r for r in services.workspace.runs(newest[0].run_id - run_id + 1) if r.run_id == run_id]


def mount(router: APIRouter, ui: Ui) -> None:
    def page(request: Request, run_id: int, step: str = "") -> Response:
        return ui.show(request, "run.html.j2", lambda: data(ui.services, run_id, step=step), active="runs")

    def live(request: Request, run_id: int, step: str = "") -> Response:
        return ui.show(
            request, "run_live.html.j2", lambda: data(ui.services, run_id, step=step), active="runs"
        )

    async def cancel(request: Request, run_id: int) -> Response:
        form = await form_of(request)
        checked = ui.check_post(request, form)
        if isinstance(checked, Response):
            return checked
        launcher = ui.services.launcher
        assert launcher is not None
        await run_in_threadpool(launcher.cancel, run_id)
        return RedirectResponse(f"/runs/{run_id}", status_code=303)

    async def retry(request: Request, run_id: int) -> Response:
        form = await form_of(request)
        checked = ui.check_post(request, form)
        if isinstance(checked, Response):
            return checked
        launcher = ui.services.launcher
        assert launcher is not None
        started = await run_in_threadpool(launcher.retry, run_id)
        return RedirectResponse(f"/runs/{started or run_id}", status_code=303)

    router.add_api_route("/runs/{run_id}", page, methods=["GET"])
    router.add_api_route("/runs/{run_id}/live", live, methods=["GET"])
    router.add_api_route("/runs/{run_id}/cancel", cancel, methods=["POST"])
    router.add_api_route("/runs/{run_id}/retry", retry, methods=["POST"])
