"""What the UI reads and does, handed in by the workspace that serves it.

The UI sits below the workspace (the workspace mounts it), so it never imports it: the serving
workspace passes itself as a ``UiWorkspace`` (the few verbs the pages call), with the same
``TableReader`` and key store the data API uses, so the UI reads exactly what the API serves and
accepts exactly the keys it accepts."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from gristmill.plan import AssetGraph
from gristmill.project import Project
from gristmill.runtime.diffresult import DataDiff, DiffRequest
from gristmill.server.auth import KeyChecker
from gristmill.server.reading import TableReader
from gristmill.server.sql_api import SqlReading
from gristmill.state import CheckRecord, LogRecord, MetricRecord, RunRecord, StepRecord


class UiWorkspace(Protocol):
    """The workspace verbs the pages call (``gristmill.workspace.Workspace`` has them all)."""

    @property
    def project(self) -> Project: ...

    @property
    def graph(self) -> AssetGraph: ...

    def runs(
        self,
        limit: int = 20,
        *,
        status: str | None = None,
        command: str | None = None,
        asset: str | None = None,
        since: str | None = None,
    ) -> list[RunRecord]: ...

    def steps(self, run_id: int) -> list[StepRecord]: ...

    def logs(self, run_id: int, asset: str | None = None, *, grep: str | None = None) -> list[LogRecord]: ...

    def failed_steps(self, run_id: int) -> list[str]: ...

    def quality_history(
        self, assets: Sequence[str], *, env: str = "prod", runs: int = 30
    ) -> tuple[list[CheckRecord], list[MetricRecord]]: ...

    def streams(self, *, everything: bool = True) -> list[dict[str, Any]]: ...

    def query(self, sql: str, env: str = "prod") -> pa.Table: ...


@dataclass(frozen=True)
class StaticSite:
    """Pages rendered for ``gristmill docs build``: written as files, with no server behind them,
    so the templates hide forms and live parts, and add what a docs site shows (model SQL, the
    declared checks) from ``models`` (asset name -> ``file``, ``raw``, ``compiled``, ``checks``)."""

    samples: bool = False
    models: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    pages: tuple[str, ...] = ("catalog", "graph")
    """The menu entries the site has."""


@dataclass
class UiServices:
    """Everything the pages need. ``keys`` None means ``--no-auth`` (loopback only)."""

    workspace: UiWorkspace
    reader: TableReader
    env: str
    diff: Callable[[DiffRequest], DataDiff]
    keys: KeyChecker | None
    launcher: RunLauncher | None = None
    sql: SqlReading | None = None
    """The read-only SQL endpoint's reader (guard, row cap, timeout); None: SQL is off."""
    static_site: StaticSite | None = None

    def __post_init__(self) -> None:
        if self.launcher is None:
            self.launcher = RunLauncher(self.workspace.project.root, self.workspace)


class RunLauncher:
    """Starts runs for the UI's buttons as ``gristmill`` processes of their own: a run holds the
    project's run lock and may take minutes, and its process (not the server's) is what ``cancel``
    signals and what the history watches for death. The server returns as soon as the run is
    recorded, so the page can show it."""

    def __init__(self, root: Path, workspace: UiWorkspace) -> None:
        self.root, self.workspace = root, workspace
        self._started: list[subprocess.Popen[bytes]] = []

    def run(self, selection: Sequence[str], env: str) -> int | None:
        args = ["run", "--quiet", "--env", env]
        for item in selection:
            args += ["--select", item]
        return self._start(args)

    def backfill(self, selection: Sequence[str], env: str, start: str, end: str | None) -> int | None:
        """``gristmill backfill`` of the selection from ``start`` to ``end`` (days, included)."""
        args = ["backfill", "--env", env, "--from", start, *(["--to", end] if end else [])]
        for item in selection:
            args += ["--select", item]
        return self._start(args)

    def retry(self, run_id: int) -> int | None:
        return self._start(["retry", str(run_id)])

    def _start(self, args: list[str]) -> int | None:
        before = max((r.run_id for r in self.workspace.runs(1)), default=0)
        self._reap()
        log = (self.root / ".gristmill").resolve()
        log.mkdir(exist_ok=True)
        with (log / "ui-runs.log").open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "gristmill", *args, "--project", str(self.root)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C of the server does not kill the run
            )
        self._started.append(process)
        # The run records itself once its project is loaded: wait for it to show, a few seconds.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            newest = self.workspace.runs(1)
            if newest and newest[0].run_id > before:
                return newest[0].run_id
            if process.poll() is not None:
                break
            time.sleep(0.1)
        return None

    def _reap(self) -> None:
        self._started = [p for p in self._started if p.poll() is None]

    def cancel(self, run_id: int) -> None:
        from gristmill.state import open_history

        history = open_history(self.workspace.project.path(self.workspace.project.settings.storage.state))
        try:
            history.runs.request_cancel(run_id, "cancelled from the web UI")
        finally:
            history.close()
