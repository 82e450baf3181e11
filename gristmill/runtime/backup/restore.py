"""Restore a backup into a project: every file's checksum is verified before anything of the
project is touched, the backup is copied into a folder beside the lake, and only then swapped in
(renames within one file system), keeping the old lake until the new one is in place."""

from __future__ import annotations

import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gristmill.config.settings import ProjectSettings
from gristmill.errors import GristmillError
from gristmill.runtime.backup.manifest import BackupInfo, FileEntry, read_manifest
from gristmill.runtime.backup.places import Place, copy_hashing, hash_file
from gristmill.runtime.backup.take import (
    CATALOG_FILE,
    DATABASE_FILE,
    LAKE_DIR,
    STATE_FILE,
    refuse_unsupported,
)


def _verify(place: Place, entry: FileEntry, size: int, digest: str) -> None:
    if size != entry.size or digest != entry.sha256:
        raise GristmillError(
            f"backup {place.url} is damaged: {entry.path} does not match its manifest "
            f"({size} bytes, expected {entry.size}; sha256 {digest[:12]}…, expected {entry.sha256[:12]}…)",
            hint="nothing was restored; use another backup",
        )


def verify_backup(place: Place, info: BackupInfo, workers: int = 8) -> None:
    """Refuse a backup with a file missing or different from the manifest, naming the file."""

    def check(entry: FileEntry) -> None:
        if not place.exists(entry.path):
            raise GristmillError(
                f"backup {place.url} is incomplete: {entry.path} is missing",
                hint="nothing was restored; use another backup",
            )
        _verify(place, entry, *hash_file(place.fs, place.path(entry.path)))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(check, info.files))


def restore_backup(
    settings: ProjectSettings,
    root: Path,
    src: str,
    *,
    force: bool = False,
    options: dict[str, object] | None = None,
    workers: int = 8,
) -> BackupInfo:
    """Bring the backup at ``src`` (a folder holding a manifest) back into the project."""
    refuse_unsupported(settings)
    place = Place(src, options)
    info = read_manifest(place, Path(place.root).name)
    storage = settings.storage
    if info.storage != storage.format:
        raise GristmillError(
            f"backup {place.url} holds storage.format = {info.storage!r}, this project uses "
            f"{storage.format!r}",
            hint="restore it into a project with the same [storage] format",
        )
    state = (root / storage.state).resolve()
    if storage.format == "duckdb":
        database = (root / storage.database).resolve()
        data = database.parent
        wal = database.with_name(database.name + ".wal")
        moves = [(DATABASE_FILE, database), (DATABASE_FILE + ".wal", wal), (STATE_FILE, state)]
        existing = database
    else:
        data = (root / storage.data).resolve()
        existing = (root / storage.catalog).resolve()
        moves = [(LAKE_DIR, data), (STATE_FILE, state), (CATALOG_FILE, existing)]
    if existing.exists() and not force:
        raise GristmillError(
            f"this project already has a lake ({existing.name})",
            hint="`gristmill restore --force` replaces it (the current lake is lost)",
        )
    verify_backup(place, info, workers)
    data.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".restore-", dir=data.parent) as temp:
        staged = Path(temp)
        local = Place(staged.as_posix())

        def copy(entry: FileEntry) -> None:
            # Verified again as copied: the bytes that land are the ones the manifest names.
            _verify(
                place,
                entry,
                *copy_hashing(place.fs, place.path(entry.path), local.fs, local.path(entry.path)),
            )

        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(copy, info.files))
        if storage.format == "ducklake":
            (staged / LAKE_DIR).mkdir(exist_ok=True)
        _swap(staged, [(staged / new, current) for new, current in moves])
    return info


def _swap(staged: Path, moves: list[tuple[Path, Path]]) -> None:
    """Move the staged lake in; the old one is moved aside first and removed last."""
    aside = staged / "previous"
    aside.mkdir()
    for new, current in moves:
        for extra in ("", "-wal", "-shm", "-journal") if current.suffix == ".sqlite" else ("",):
            old = current.with_name(current.name + extra)
            if old.exists():
                old.replace(aside / old.name)
        if new.exists():
            current.parent.mkdir(parents=True, exist_ok=True)
            new.replace(current)
    shutil.rmtree(aside, ignore_errors=True)
