"""The scheduler: decides when each schedule runs, claims the tick, and supervises the run.

Every tick is claimed in the state store before its run starts (one row per schedule and tick),
so a tick never runs twice, whatever crashes. Runs execute one at a time in child processes
forked from a warm server process (imports already done, so a run starts in milliseconds); a
run that dies takes nothing with it: its transaction rolls back, the scheduler marks its tick
failed, and after a restart ticks whose run never finished are run again.

Triggers: cron ticks (time zone and DST aware, with a catch-up policy after downtime),
freshness policies (run the selection with its upstream when an asset is older than allowed),
new or changed files matching a glob, updates of other assets, and webhook calls."""

from __future__ import annotations

import fcntl
import json
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from gristmill._util.cron import Cron, due
from gristmill.config.secrets import redact
from gristmill.config.settings import ProjectSettings, ScheduleSettings
from gristmill.engines.registry import compile_probe
from gristmill.errors import ConcurrentRunError, ConfigError, GristmillError
from gristmill.plan import build_graph, select
from gristmill.project import load_project
from gristmill.state import open_history

log = logging.getLogger("gristmill.scheduler")

FILE_POLL = 5.0
"""Seconds between listings of a watched folder or bucket."""
RETRY_STALE = 300.0
"""After a freshness run failed, wait this long (or the limit, if shorter) before the next."""


@dataclass(frozen=True)
class Launch:
    """One run the scheduler starts: which schedule, for which tick, and why."""

    schedule: str
    tick_at: str
    select: tuple[str, ...]
    exclude: tuple[str, ...]
    env: str
    full_refresh: bool
    reason: str
    target: str | None = None
    """The target the scheduler serves (its runs open the same one)."""


Launcher = Callable[[Path, Launch, Connection], None]
"""Runs a launch in the child process and reports ("run", run_id) then ("done", status) or
("error", message) on the connection. Must be importable (it is sent to the child by name)."""


@dataclass
class _Child:
    launch: Launch
    process: BaseProcess
    conn: Connection
    run_id: int | None = None
    status: str | None = None
    error: str | None = None


@dataclass
class _Watch:
    """What event triggers saw last, and when they last looked."""

    files_checked: float = 0.0
    stale_since: dict[str, float] = field(default_factory=dict)
    freshness_failed_at: dict[str, float] = field(default_factory=dict)
    alerted: set[str] = field(default_factory=set)


class Scheduler:
    def __init__(
        self,
        root: Path,
        launcher: Launcher,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        poll: float = 1.0,
        preload: tuple[str, ...] = ("gristmill.workspace",),
        target: str | None = None,
    ) -> None:
        self.root = root
        self.target = target
        self._launcher = launcher
        self._clock = clock
        self._poll = poll
        self._wake = threading.Event()
        self._hooks: deque[tuple[str, dict[str, Any]]] = deque()
        self._queue: deque[Launch] = deque()
        self._child: _Child | None = None
        self._watch = _Watch()
        self._loaded_at: float | None = None
        self._project_stamp: tuple[float, ...] = ()
        self.settings: ProjectSettings
        self._crons: dict[str, Cron] = {}
        self._watched: dict[str, list[str]] = {}
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(list(preload))
        self._load()
        self._history = open_history(self.settings_path(self.settings.storage.state))

    def settings_path(self, setting: str) -> Path:
        path = Path(setting)
        return path if path.is_absolute() else self.root / path

    # -- the project -------------------------------------------------------------------------------

    def _stamp(self) -> tuple[float, ...]:
        files = [self.root / "gristmill.toml"]
        for folder in ("models", "sources", "checks", "contracts"):
            base = self.root / folder
            if base.is_dir():
                files += sorted(p for p in base.rglob("*") if p.is_file())
        return (*(p.stat().st_mtime for p in files if p.exists()), len(files))

    def _load(self) -> None:
        """(Re)read the project: schedules, and the assets freshness policies watch."""
        project = load_project(self.root, probe=compile_probe, target=self.target)
        graph = build_graph(project)
        crons, watched = {}, {}
        for name, schedule in project.settings.schedules.items():
            where = f"gristmill.toml: [schedules.{name}]"
            if schedule.cron:
                try:
                    crons[name] = Cron(schedule.cron, schedule.timezone)
                except ValueError as err:
                    raise ConfigError(str(err), location=where) from None
            if schedule.freshness or schedule.on_assets:
                chosen = list(select(graph, schedule.select or (), schedule.exclude))
                watched[name] = chosen if schedule.freshness else list(select(graph, schedule.on_assets))
        self.settings = project.settings
        self._crons, self._watched = crons, watched
        self._project_stamp = self._stamp()
        self._loaded_at = time.monotonic()

    def _reload_if_changed(self) -> None:
        if self._loaded_at is not None and time.monotonic() - self._loaded_at < 5:
            return
        self._loaded_at = time.monotonic()
        if self._stamp() != self._project_stamp:
            try:
                self._load()
                log.info("project changed: schedules reloaded")
            except GristmillError as err:
                log.error("project changed but cannot be loaded, keeping the old schedules: %s", err)

    # -- the loop ----------------------------------------------------------------------------------

    def serve(self, stop: threading.Event) -> None:
        """Schedule until ``stop`` is set; then wait for the running run to finish."""
        with _single_scheduler(self.settings_path(self.settings.storage.state).parent / "scheduler.lock"):
            self._context.Process(target=_warm).start()  # start the fork server before any run needs it
            self._recover()
            while not stop.is_set():
                self._tick()
                self._wake.wait(self._sleep())
                self._wake.clear()
            if self._child is not None:
                log.info("stopping: waiting for run %s to finish", self._child.run_id or "")
            while self._child is not None:
                self._supervise(block=0.2)
        self._history.close()

    def wake(self) -> None:
        self._wake.set()

    def cancel_running(self) -> None:
        """Interrupt the running run (it rolls back what it was building)."""
        child = self._child
        if child is not None and child.run_id is not None:
            # Through the state store too: it reaches the run whatever its signal handlers.
            self._history.runs.request_cancel(child.run_id, "cancelled: the scheduler was stopped")
        if child is not None and child.process.pid is not None and child.process.is_alive():
            os.kill(child.process.pid, signal.SIGINT)

    def _tick(self) -> None:
        self._reload_if_changed()
        self._supervise()
        now = self._clock()
        paused = self._history.schedules.paused()  # paused from the web UI: its triggers wait
        for name, schedule in self.settings.schedules.items():
            if name in self._crons:
                self._cron(name, schedule, now, paused=name in paused)
            if name in paused:
                continue
            if schedule.freshness:
                self._freshness(name, schedule, now)
            if schedule.on_assets:
                self._asset_updates(name, schedule, now)
        watching = any(s.on_files for s in self.settings.schedules.values())
        if watching and time.monotonic() - self._watch.files_checked >= FILE_POLL:
            self._watch.files_checked = time.monotonic()
            for name, schedule in self.settings.schedules.items():
                if schedule.on_files and name not in paused:
                    self._files(name, schedule, now)
        while self._hooks:
            name, payload = self._hooks.popleft()
            if name in paused:
                continue
            self._enqueue(
                name, now, "webhook" + (f" ({payload.get('reason')})" if payload.get("reason") else "")
            )
        self._start_next()

    def _sleep(self) -> float:
        """Until the next cron tick (to the millisecond), at most ``poll``."""
        now = self._clock()
        waits = [self._poll]
        for cron in self._crons.values():
            waits.append((cron.next_fire(now) - now).total_seconds())
        if self._child is not None:
            waits.append(0.2)
        return max(0.0, min(waits))

    # -- triggers ----------------------------------------------------------------------------------

    def _cron(self, name: str, schedule: ScheduleSettings, now: datetime, *, paused: bool = False) -> None:
        last = self._history.schedules.last_tick(name)
        first_seen = datetime.fromisoformat(self._history.schedules.first_seen(name))
        decision = due(
            self._crons[name],
            datetime.fromisoformat(last) if last else None,
            now,
            schedule.catch_up,
            first_seen=first_seen,
        )
        if not decision.run and not decision.skipped:
            return
        rows = [
            (_iso(t), "skipped", f"missed while the scheduler was down (catch_up = {schedule.catch_up})")
            for t in decision.skipped
        ]
        if paused:  # its ticks pass as skipped: resuming does not replay the paused time
            rows += [(_iso(t), "skipped", "paused") for t in decision.run]
            self._history.schedules.claim_ticks(name, rows)
            return
        rows += [(_iso(t), "claimed", "") for t in decision.run]
        claimed = set(self._history.schedules.claim_ticks(name, rows))
        for tick in decision.run:
            if _iso(tick) in claimed:
                self._queue_launch(name, _iso(tick), f"cron {schedule.cron} ({schedule.timezone})")

    def _freshness(self, name: str, schedule: ScheduleSettings, now: datetime) -> None:
        assert schedule.freshness is not None
        limit = schedule.freshness.total_seconds()
        current = self._history.runs.last_success()
        stale: list[str] = []
        for asset in self._watched.get(name, []):
            found = current.get(asset)
            age = None if found is None else (now - datetime.fromisoformat(found[1])).total_seconds()
            if age is None or age > limit:
                stale.append(asset)
                if asset not in self._watch.alerted and age is not None and age > limit:
                    self._watch.alerted.add(asset)
                    self._alert_freshness(asset, age, limit)
            else:
                self._watch.alerted.discard(asset)
        if not stale or self._busy_with(name):
            return
        failed_at = self._watch.freshness_failed_at.get(name)
        if failed_at is not None and time.monotonic() - failed_at < min(RETRY_STALE, limit):
            return
        self._watch.freshness_failed_at.pop(name, None)
        reason = f"freshness: {stale[0]}" + (f" and {len(stale) - 1} more" if len(stale) > 1 else "")
        self._enqueue(name, now, f"{reason} older than {_span(limit)}", upstream=True)

    def _asset_updates(self, name: str, schedule: ScheduleSettings, now: datetime) -> None:
        current = self._history.runs.last_success()
        newest = max((current[a][0] for a in self._watched.get(name, []) if a in current), default=0)
        seen = self._history.schedules.trigger_cursor(name)
        if seen is None:
            self._history.schedules.set_trigger_cursor(name, str(newest))  # start watching from here
            return
        if newest > int(seen):
            self._history.schedules.set_trigger_cursor(name, str(newest))
            run = self._history.runs.get(newest)
            if run is not None and run.command == f"schedule {name}":
                return  # its own run
            self._enqueue(name, now, f"upstream updated by run {newest}")

    def _files(self, name: str, schedule: ScheduleSettings, now: datetime) -> None:
        assert schedule.on_files is not None
        try:
            found = _listing(schedule.on_files, self.root)
        except Exception as err:  # a bucket that is down must not stop the other schedules
            log.warning("[schedules.%s] cannot list %s: %s", name, schedule.on_files, redact(str(err)))
            return
        seen_text = self._history.schedules.trigger_cursor(name)
        self._history.schedules.set_trigger_cursor(name, json.dumps(found, sort_keys=True))
        if seen_text is None:
            return  # what is there when watching starts is not news
        seen = json.loads(seen_text)
        changed = sorted(path for path, stamp in found.items() if seen.get(path) != stamp)
        if changed:
            more = f" and {len(changed) - 1} more" if len(changed) > 1 else ""
            self._enqueue(name, now, f"file {Path(changed[0]).name}{more}")

    def trigger(self, name: str, payload: dict[str, Any]) -> tuple[bool, str]:
        """A webhook call (from the HTTP thread): queue a run of ``name``."""
        schedule = self.settings.schedules.get(name)
        if schedule is None or not schedule.webhook:
            hooked = [n for n, s in self.settings.schedules.items() if s.webhook]
            return False, f"no schedule {name!r} with webhook = true" + (
                f" (these have one: {', '.join(hooked)})" if hooked else ""
            )
        self._hooks.append((name, payload))
        self._wake.set()
        return True, name

    # -- queue and runs ----------------------------------------------------------------------------

    def _busy_with(self, name: str) -> bool:
        queued = any(launch.schedule == name for launch in self._queue)
        return queued or (self._child is not None and self._child.launch.schedule == name)

    def _enqueue(self, name: str, now: datetime, reason: str, *, upstream: bool = False) -> None:
        """An event-driven run: one queued per schedule at a time (events coalesce)."""
        if any(launch.schedule == name for launch in self._queue):
            return
        tick = _iso(now)
        if self._history.schedules.claim_ticks(name, [(tick, "claimed", reason)]):
            self._queue_launch(name, tick, reason, upstream=upstream)

    def _queue_launch(self, name: str, tick: str, reason: str, *, upstream: bool = False) -> None:
        schedule = self.settings.schedules[name]
        chosen = schedule.select
        if upstream:
            chosen = tuple(s if s.startswith("+") or ":" in s else f"+{s}" for s in chosen) or ()
        if schedule.catch_up != "all":  # a newer tick replaces one still waiting
            for waiting in [w for w in self._queue if w.schedule == name]:
                self._queue.remove(waiting)
                self._history.schedules.update_tick(
                    name, waiting.tick_at, "skipped", note=f"superseded by {tick}"
                )
        self._queue.append(
            Launch(
                name, tick, chosen, schedule.exclude, schedule.env, schedule.full_refresh, reason, self.target
            )
        )

    def _start_next(self) -> None:
        if self._child is not None or not self._queue:
            return
        launch = self._queue.popleft()
        parent, child = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=self._launcher,
            args=(self.root, launch, child),
            name=f"run {launch.schedule}",
            daemon=False,
        )
        process.start()
        child.close()
        self._child = _Child(launch, process, parent)
        self._history.schedules.update_tick(
            launch.schedule, launch.tick_at, "started", started=True, note=launch.reason
        )
        log.info("started %s (%s), pid %s", launch.schedule, launch.reason, process.pid)

    def _supervise(self, block: float = 0.0) -> None:
        child = self._child
        if child is None:
            return
        while child.conn.poll(block):
            block = 0.0
            try:
                kind, value = child.conn.recv()
            except (EOFError, OSError):
                break
            if kind == "run":
                child.run_id = int(value)
                self._history.schedules.update_tick(
                    child.launch.schedule, child.launch.tick_at, "started", run_id=child.run_id
                )
            elif kind == "done":
                child.status = str(value)
            elif kind == "error":
                child.error = redact(str(value))
        if child.process.is_alive():
            return
        child.process.join()
        launch = child.launch
        if child.status is None:
            self._history.runs.mark_abandoned()
            note = child.error or f"the run process died (exit code {child.process.exitcode})"
            self._history.schedules.update_tick(launch.schedule, launch.tick_at, "failed", note=note)
            log.error("%s: %s", launch.schedule, note)
        else:
            self._history.schedules.update_tick(launch.schedule, launch.tick_at, child.status)
            log.info("%s finished: %s (run %s)", launch.schedule, child.status, child.run_id)
        if child.status != "success" and self.settings.schedules.get(launch.schedule, None) is not None:
            self._watch.freshness_failed_at[launch.schedule] = time.monotonic()
        child.conn.close()
        self._child = None

    def _recover(self) -> None:
        """After a crash: runs whose process died are failed; their ticks run again."""
        unfinished = (
            self._history.schedules.unfinished_ticks()
        )  # before mark_abandoned marks their ticks failed
        abandoned = self._history.runs.mark_abandoned()
        if abandoned:
            log.warning("%d run(s) left running by a dead process marked failed", abandoned)
        for tick in unfinished:
            if tick.schedule not in self.settings.schedules:
                continue
            run = self._history.runs.get(tick.run_id) if tick.run_id else None
            if run is not None and run.status == "running":
                continue  # still going in a process that outlived the old scheduler
            if run is not None and run.status in ("success", "failed", "cancelled"):
                self._history.schedules.update_tick(tick.schedule, tick.tick_at, run.status)
                if run.status != "failed" or "died" not in json.dumps(run.summary):
                    continue
            self._history.schedules.update_tick(
                tick.schedule, tick.tick_at, "claimed", note="resumed after a restart"
            )
            fresh = self.settings.schedules[tick.schedule].freshness is not None
            self._queue_launch(tick.schedule, tick.tick_at, "resumed after a restart", upstream=fresh)

    def _alert_freshness(self, asset: str, age: float, limit: float) -> None:
        if not self.settings.alerts:
            return
        from gristmill.runtime.notify.alerts import Notifier, freshness_alert

        alert = freshness_alert(self.settings.name, asset, timedelta(seconds=age), timedelta(seconds=limit))
        for problem in Notifier(self.settings.alerts, base=self.root).send([alert]):
            log.warning("alert not delivered: %s", problem)

    # -- what the metrics endpoint shows -----------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Numbers for the metrics endpoint and ``gristmill scheduler --status``."""
        now = self._clock()
        stats = self._history.runs.stats()
        current = self._history.runs.last_success()
        lag, limits = {}, {}
        for name, schedule in self.settings.schedules.items():
            if schedule.freshness:
                for asset in self._watched.get(name, []):
                    limits[asset] = schedule.freshness.total_seconds()
                    if asset in current:
                        lag[asset] = (now - datetime.fromisoformat(current[asset][1])).total_seconds()
        schedule_lag = {}
        for tick in self._history.schedules.ticks(limit=200):
            if tick.started_at and tick.schedule not in schedule_lag and tick.schedule in self._crons:
                delay = datetime.fromisoformat(tick.started_at) - datetime.fromisoformat(tick.tick_at)
                schedule_lag[tick.schedule] = max(0.0, delay.total_seconds())
        return {
            "stats": stats,
            "last_success": {a: datetime.fromisoformat(at).timestamp() for a, (_, at) in current.items()},
            "freshness_lag": lag,
            "freshness_limit": limits,
            "schedule_lag": schedule_lag,
            "next_tick": {n: c.next_fire(now).timestamp() for n, c in self._crons.items()},
        }


def _warm() -> None:
    """Nothing: starting it makes the fork server load its modules now, not at the first tick."""


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _span(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g}h"
    return f"{seconds / 60:g}m" if seconds >= 60 else f"{seconds:g}s"


def _listing(pattern: str, root: Path) -> dict[str, str]:
    """Matching files with a stamp that changes when a file does (size and time, or ETag)."""
    import fsspec

    remote = "://" in pattern
    target = pattern if remote else str(root / pattern)
    fs, _, _ = fsspec.get_fs_token_paths(target)
    found: dict[str, str] = {}
    for path, info in fs.glob(target if remote else str(Path(target)), detail=True).items():
        if info.get("type") == "directory":
            continue
        stamp = (
            info.get("ETag")
            or info.get("etag")
            or f"{info.get('size')}:{info.get('mtime') or info.get('LastModified')}"
        )
        found[str(path)] = str(stamp)
    return found


@contextmanager
def _single_scheduler(path: Path) -> Iterator[None]:
    """One scheduler per project: a second would launch the same freshness and event runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise ConcurrentRunError(
                f"a scheduler (pid {handle.read().strip() or '?'}) is already running for this project",
                hint="stop it first; one scheduler per project",
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
