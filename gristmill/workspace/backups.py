"""Backups of a project's lake (``gristmill backup``, ``restore``, ``backups list``): the entry
point interfaces call; the work is in ``gristmill.runtime.backup``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gristmill.config.settings import ProjectSettings
from gristmill.config.targets import choose
from gristmill.project.definition import find_root
from gristmill.project.settings_file import load_settings
from gristmill.runtime.backup import BackupInfo, list_backups, restore_backup, take_backup

__all__ = ["BackupInfo", "Backups"]


@dataclass(frozen=True)
class Backups:
    """One project's backups; reads only gristmill.toml, never opens the lake for writing."""

    root: Path
    settings: ProjectSettings

    @classmethod
    def for_project(cls, start: Path | str = ".", target: str | None = None) -> Backups:
        root = find_root(Path(start))
        return cls(root, choose(load_settings(root), target))

    def backup(self, dest: str, *, options: dict[str, object] | None = None, workers: int = 8) -> BackupInfo:
        """A consistent copy under ``dest`` (a folder or ``s3://bucket/prefix``), runs continuing."""
        return take_backup(self.settings, self.root, dest, options=options, workers=workers)

    def restore(
        self, src: str, *, force: bool = False, options: dict[str, object] | None = None
    ) -> BackupInfo:
        """The backup folder ``src`` verified, then swapped in; an existing lake only with ``force``."""
        return restore_backup(self.settings, self.root, src, force=force, options=options)

    @staticmethod
    def list(dest: str, *, options: dict[str, object] | None = None) -> list[BackupInfo]:
        return list_backups(dest, options)
