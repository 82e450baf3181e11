"""Schedules & streams: each schedule's trigger, next ticks, paused or not, catch-up policy and
what happened to its latest ticks (with their runs); every stream process's state, throughput,
lag per partition and watermark, as its own status file reports them. The live part polls
(htmx, every 5 s). Pause and resume are POST forms with the CSRF token; the pause is kept in the
run history, where the scheduler reads it at every turn of its loop."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from gristmill._util.cron import Cron
from gristmill.errors import ConfigError
from gristmill.state import open_history
from gristmill.ui.access import form_of

if TYPE_CHECKING:
    from fastapi import APIRouter

    from gristmill.config.settings import ScheduleSettings
    from gristmill.state import RunHistory
    from gristmill.ui.render import Ui
    from gristmill.ui.services import UiServices

NEXT_TICKS = 3
LAST_TICKS = 5
POLL = "every 5s"


def next_ticks(schedule: ScheduleSettings, now: datetime, count: int = NEXT_TICKS) -> list[str]:
    """The cron's next ``count`` fire times after ``now`` (ISO UTC); none without a cron."""
    if not schedule.cron:
        return []
    cron, moment, found = Cron(schedule.cron, schedule.timezone), now, []
    for _ in range(count):
        moment = cron.next_fire(moment)
        found.append(moment.astimezone(UTC).isoformat())
    return found


def trigger_of(schedule: ScheduleSettings) -> str:
    """What starts the schedule, in words the toml uses."""
    if schedule.cron:
        return f"cron {schedule.cron} ({schedule.timezone})"
    parts = []
    if schedule.freshness:
        parts.append(f"freshness {schedule.freshness}")
    if schedule.on_assets:
        parts.append("on assets " + ", ".join(schedule.on_assets))
    if schedule.on_files:
        parts.append(f"on files {schedule.on_files}")
    if schedule.webhook:
        parts.append("webhook")
    return "; ".join(parts) or "manual"


def schedule_rows(history: RunHistory, services: UiServices, now: datetime) -> list[dict[str, Any]]:
    settings = services.workspace.project.settings.schedules
    paused = history.schedules.paused()
    rows = []
    for name, schedule in settings.items():
        ticks = history.schedules.ticks(name, limit=LAST_TICKS)
        waiting = [t for t in ticks if t.status in ("claimed", "started")]
        skipped = [t for t in ticks if t.status == "skipped"]
        rows.append(
            {
                "name": name,
                "select": " ".join(schedule.select) or "everything",
                "env": schedule.env,
                "trigger": trigger_of(schedule),
                "catch_up": schedule.catch_up,
                "next": [] if name in paused else next_ticks(schedule, now),
                "paused_at": paused.get(name),
                "ticks": ticks,
                "catching_up": len(waiting),
                "skipped": len(skipped),
            }
        )
    return rows


def stream_rows(statuses: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stream processes as ``gristmill streams`` lists them, running first; lag per
    partition sorted, and its total."""
    order = {"running": 0, "stalled": 1, "failed": 2, "dead": 3, "stopped": 4}
    rows = []
    for status in statuses:
        lag = status.get("lag") or {}
        lag = lag if isinstance(lag, dict) else {"all": lag}
        rows.append(
            {
                "model": status.get("model", "?"),
                "pid": status.get("pid"),
                "state": status.get("state", "?"),
                "events": status.get("events") or 0,
                "rate": float(status.get("events_per_second") or 0.0),
                "rows_out": status.get("rows_out") or 0,
                "late": status.get("late") or 0,
                "rejected": status.get("rejected") or 0,
                "lag": sorted(lag.items()),
                "total_lag": sum(int(v or 0) for v in lag.values()),
                "watermark": status.get("watermark"),
                "error": status.get("error"),
                "updated_at": status.get("updated_at"),
            }
        )
    rows.sort(key=lambda r: (order.get(r["state"], 9), r["model"]))
    return rows


def data(services: UiServices, now: datetime | None = None) -> dict[str, Any]:
    project = services.workspace.project
    history = open_history(project.path(project.settings.storage.state))
    try:
        schedules = schedule_rows(history, services, now or datetime.now(UTC))
    finally:
        history.close()
    return {"schedules": schedules, "streams": stream_rows(services.workspace.streams()), "poll": POLL}


def set_paused(services: UiServices, name: str, paused: bool) -> None:
    project = services.workspace.project
    if name not in project.settings.schedules:
        raise ConfigError(f"no schedule {name!r}", hint="gristmill.toml [schedules.*] declares them")
    history = open_history(project.path(project.settings.storage.state))
    try:
        history.schedules.set_paused(name, paused)
    finally:
        history.close()


def mount(router: APIRouter, ui: Ui) -> None:
    def page(request: Request) -> Response:
        return ui.show(request, "schedules.html.j2", lambda: data(ui.services), active="schedules")

    def live(request: Request) -> Response:
        return ui.show(request, "schedules_live.html.j2", lambda: data(ui.services), active="schedules")

    def toggle(paused: bool) -> Any:
        async def post(request: Request, name: str) -> Response:
            form = await form_of(request)
            checked = ui.check_post(request, form)
            if isinstance(checked, Response):
                return checked
            try:
                await run_in_threadpool(set_paused, ui.services, name, paused)
            except ConfigError as err:
                return Response(err.message, status_code=404, media_type="text/plain")
            return RedirectResponse("/schedules", status_code=303)

        return post

    router.add_api_route("/schedules", page, methods=["GET"])
    router.add_api_route("/schedules/live", live, methods=["GET"])
    router.add_api_route("/schedules/{name}/pause", toggle(True), methods=["POST"])
    router.add_api_route("/schedules/{name}/resume", toggle(False), methods=["POST"])
