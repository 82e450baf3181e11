"""What a project folder has open while the workspace works on it: its sources, the engine a
verb opens, its run history and its run lock.

Every verb opens the engine and the history for as long as it needs them and no longer (another
process, a scheduled run, may be waiting for the lake); sources stay open across verbs, since
opening one can cost a connection handshake."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from gristmill.config.settings import ProjectSettings
from gristmill.connectors import Source, open_source
from gristmill.connectors.registry import announce_native_reads
from gristmill.engines import Engine, no_data_yet, open_engine
from gristmill.project import Project
from gristmill.runtime.run.lock import run_lock
from gristmill.runtime.run.runner import Retry
from gristmill.state import RunHistory, open_history


class Session:
    """One project's open resources. ``abandoned``: an engine whose session a step that would
    not stop still holds (see ``RunResult``): never closed, nor the sources it may still use."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self._sources: dict[str, Source] = {}
        self.abandoned: Engine | None = None

    @property
    def root(self) -> Path:
        return self.project.root

    @property
    def state_folder(self) -> Path:
        """Where the run history lives, beside the run lock and the backfills' locks."""
        return self.project.path(self.project.settings.storage.state).parent

    def source(self, name: str) -> Source:
        if name not in self._sources:
            self._sources[name] = open_source(self.project.sources[name], self.root)
        return self._sources[name]

    @contextmanager
    def engine(self, *, read_only: bool, settings: ProjectSettings | None = None) -> Iterator[Engine | None]:
        """The lake's engine; None, read-only, while nothing has run yet (an empty lake)."""
        settings = settings or self.project.settings
        if read_only and no_data_yet(settings, self.root):
            yield None
            return
        if not read_only:
            announce_native_reads(self.project.sources.values())
        engine = open_engine(settings, self.root, read_only=read_only)
        try:
            yield engine
        finally:
            if engine is not self.abandoned:
                engine.close()

    def open_history(self) -> RunHistory:
        return open_history(self.project.path(self.project.settings.storage.state))

    @contextmanager
    def history(self) -> Iterator[RunHistory]:
        """The run history, closed when the block ends."""
        history = self.open_history()
        try:
            yield history
        finally:
            history.close()

    def lock(self, *, wait: float = 0.0) -> AbstractContextManager[None]:
        """The project's run lock: one process writes the lake at a time."""
        return run_lock(self.state_folder / "run.lock", wait=wait)

    def retry(self) -> Retry:
        retries = self.project.settings.run.retries
        return Retry(retries.attempts, retries.delay.total_seconds(), retries.max_delay.total_seconds())

    def close(self) -> None:
        if self.abandoned is not None:
            return  # an abandoned step may still be using a source: leave them to the process's end
        for source in self._sources.values():
            source.close()
        self._sources.clear()
