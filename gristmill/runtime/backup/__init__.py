"""Backups of a project's lake: a consistent copy (catalog, data files, run history) taken while
runs continue (``take.py``), and its verified restore (``restore.py``); ``manifest.py`` is the
record that makes a backup complete, ``places.py`` the folders and ``s3://`` prefixes they live in."""

from gristmill.runtime.backup.manifest import BackupInfo, list_backups
from gristmill.runtime.backup.restore import restore_backup
from gristmill.runtime.backup.take import take_backup

__all__ = ["BackupInfo", "list_backups", "restore_backup", "take_backup"]
