"""One long-running process for a project: the scheduler (when the project has schedules), and
the HTTP endpoint beside it (the data API under /api/v1, Prometheus /metrics, POST /hooks/<schedule>).

Composed here, under the workspace, so that the interfaces only ask for it: the command line
starts it, the HTTP server is one of its parts and calls back into the scheduler it is given."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import signal
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gristmill.errors import ConfigError

if TYPE_CHECKING:
    from fastapi import APIRouter

    from gristmill.runtime.schedule.scheduler import Launcher, Scheduler
    from gristmill.server.http import BackgroundServer
    from gristmill.server.metrics import MetricsSnapshot
    from gristmill.server.reading import TableReader
    from gristmill.server.tables import TableLimits
    from gristmill.workspace.keys import ApiKeys

Announce = Callable[[list[str], str | None], None]
"""Told the schedules' names and the endpoint's address (None: no HTTP) once serving starts."""

PRELOAD = ("gristmill.workspace", "gristmill.runtime.launch")
"""Imported once by the scheduler's fork server, not by every scheduled run's process."""

_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, float("inf"))


def serve(
    root: Path,
    launcher: Launcher,
    *,
    port: int | None,
    http: bool,
    announce: Announce,
    target: str | None = None,
    host: str | None = None,
    reader: TableReader | None = None,
    routers: Sequence[APIRouter] = (),
    keys: ApiKeys | None = None,
    no_auth: bool = False,
    closing: Sequence[Callable[[], None]] = (),
) -> None:
    """Run the schedules until SIGINT or SIGTERM (which waits for the running run; a second one
    cancels it), with the HTTP endpoint unless ``http`` is false. ``reader``: serve the data API
    over it; ``routers``: more of it (the metrics API, read-only SQL); ``keys``: the API keys
    ``/api/v1/*`` requires (None only with ``no_auth``, which binds loopback only); ``closing``:
    called when serving ends (the SQL doors). A project without schedules only serves (and
    ``http`` must be true)."""
    from gristmill.runtime.schedule.scheduler import Scheduler

    _configure_logging()
    sched = Scheduler(root, launcher, preload=PRELOAD, target=target)
    scheduling = bool(sched.settings.schedules)
    if not scheduling and not http:
        raise ConfigError(
            "gristmill.toml declares no schedules", hint='add one, e.g. [schedules.hourly] cron = "0 * * * *"'
        )
    stop = threading.Event()
    signals = {"count": 0}

    def on_signal(number: int, frame: Any) -> None:
        signals["count"] += 1
        stop.set()
        sched.wake()
        if signals["count"] > 1:
            sched.cancel_running()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        server = _http(sched, port, host, reader, routers, keys=keys, no_auth=no_auth) if http else None
    except BaseException:
        _close(reader, keys, closing)
        raise
    announce(list(sched.settings.schedules), server.url if server is not None else None)
    try:
        if scheduling:
            sched.serve(stop)
        else:
            while not stop.wait(1.0):
                pass
    finally:
        if server is not None:
            server.stop()
        _close(reader, keys, closing)


def _close(reader: TableReader | None, keys: ApiKeys | None, closing: Sequence[Callable[[], None]]) -> None:
    for close in closing:
        close()
    if reader is not None:
        reader.close()
    if keys is not None:
        keys.close()


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
    )


def _http(
    sched: Scheduler,
    port: int | None,
    host: str | None,
    reader: TableReader | None,
    routers: Sequence[APIRouter],
    *,
    keys: ApiKeys | None,
    no_auth: bool,
) -> BackgroundServer:
    from gristmill.config.secrets import resolve
    from gristmill.server.app import HookResult, create_app
    from gristmill.server.auth import check_no_auth, install_auth
    from gristmill.server.http import BackgroundServer

    settings = sched.settings.server
    token = (
        resolve(settings.token, base=sched.root, where="gristmill.toml: [server] token")
        if settings.token
        else None
    )

    def on_hook(name: str, payload: dict[str, Any]) -> HookResult:
        accepted, message = sched.trigger(name, payload)
        return HookResult(accepted, name if accepted else None, "" if accepted else message)

    app = create_app(
        snapshot=lambda: _snapshot(sched),
        on_hook=on_hook,
        token=token,
        project=sched.settings.name,
        reader=reader,
        routers=routers,
        limits=_table_limits(),
        cursor_secret=_cursor_secret(sched) if reader is not None else None,
    )
    if reader is not None:  # the data API: keys on /api/v1/*, or none on loopback only
        check_no_auth(host or settings.host, no_auth)
        install_auth(app, keys, no_auth=no_auth)
    server = BackgroundServer(app, host or settings.host, settings.port if port is None else port)
    server.start()
    return server


CURSOR_SECRET_FILE = "cursor.secret"


def _cursor_secret(sched: Scheduler) -> bytes:
    """What signs page cursors: ``GRISTMILL_CURSOR_SECRET``, else ``[server] cursor_secret``, else
    a random secret made on the first serve and kept in the state folder (0600), so a cursor
    survives a restart and every process of the project accepts it. Never logged."""
    from gristmill.config.secrets import resolve

    given = os.environ.get("GRISTMILL_CURSOR_SECRET") or (
        resolve(sched.settings.server.cursor_secret, base=sched.root, where="[server] cursor_secret")
        if sched.settings.server.cursor_secret
        else None
    )
    if given:
        return hashlib.sha256(given.encode()).digest()
    return _kept_secret(sched.settings_path(sched.settings.storage.state).parent / CURSOR_SECRET_FILE)


def _kept_secret(path: Path) -> bytes:
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    except ValueError:
        raise ConfigError(
            f"{path} is damaged", hint="delete it: a new one is made (open cursors end)"
        ) from None
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    try:  # created 0600 at once, never readable by others even for a moment
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return _kept_secret(path)
    with os.fdopen(handle, "w") as out:
        out.write(secret.hex() + "\n")
    return secret


def _table_limits() -> TableLimits:
    """``GRISTMILL_PAGE_CACHE_MB`` sizes the JSON page cache (0 turns it off: what the benchmark
    does to measure the uncached path)."""
    from gristmill.server.tables import TableLimits

    size = os.environ.get("GRISTMILL_PAGE_CACHE_MB", "").strip()
    if not size:
        return TableLimits()
    if not size.isdigit():
        raise ConfigError(f"GRISTMILL_PAGE_CACHE_MB is a whole number of MiB, not {size!r}")
    return TableLimits(cache_bytes=int(size) * 1024 * 1024)


def _snapshot(sched: Scheduler) -> MetricsSnapshot:
    from gristmill.server.metrics import MetricsSnapshot
    from gristmill.workspace.streams import read_statuses

    status = sched.status()
    stats = status["stats"]
    seconds: list[float] = stats["seconds"]
    return MetricsSnapshot(
        runs=stats["runs"],
        run_seconds_sum=sum(seconds),
        run_seconds_count=len(seconds),
        run_seconds_buckets={le: sum(1 for s in seconds if s <= le) for le in _BUCKETS},
        steps=stats["steps"],
        last_success=status["last_success"],
        freshness_lag=status["freshness_lag"],
        freshness_limit=status["freshness_limit"],
        schedule_lag=status["schedule_lag"],
        next_tick=status["next_tick"],
        # None (the metric left out) on a serve without schedules: no scheduler runs, and a 1
        # would claim one; a 0 would page whoever alerts on a scheduler that went down.
        scheduler_up=True if sched.settings.schedules else None,
        streams=tuple(read_statuses(sched.root)),
    )
