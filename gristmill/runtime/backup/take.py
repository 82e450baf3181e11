"""Take a backup while runs continue.

Consistency without stopping anyone: SQLite's online backup API copies the DuckLake catalog as
of one committed transaction; the snapshot it holds names exactly the data files to copy, and
those are immutable once written (a later run adds files, never rewrites one), so they can be
copied at leisure. The run history is copied the same way. The manifest goes last, atomically:
until it exists the backup is incomplete, and restore refuses it."""

from __future__ import annotations

import sqlite3
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

from gristmill.config.settings import ProjectSettings
from gristmill.errors import GristmillError
from gristmill.runtime.backup.manifest import BackupInfo, FileEntry
from gristmill.runtime.backup.places import Place, copy_hashing

CATALOG_FILE = "catalog.sqlite"
STATE_FILE = "state.sqlite"
LAKE_DIR = "lake"
DATABASE_FILE = "database.duckdb"


def refuse_unsupported(settings: ProjectSettings) -> None:
    """Backups cover the embedded engine's own storage; a server keeps its data itself."""
    if settings.engine.kind != "duckdb":
        raise GristmillError(
            f"`gristmill backup` covers the embedded DuckDB lake; this project runs on "
            f"{settings.engine.kind}",
            hint=f"use the {settings.engine.kind} server's own backup (pg_dump / pgBackRest for "
            "PostgreSQL, the table format's snapshots for Spark)",
        )
    storage = settings.storage
    if storage.format == "ducklake" and ("://" in storage.catalog or "://" in storage.data):
        raise GristmillError(
            "this lake's catalog or data is on a server or an object store",
            hint="back those up with their own tools (the PostgreSQL catalog with pg_dump, the "
            "bucket with its versioning); `gristmill backup` copies a lake kept in the project",
        )


def sqlite_copy(source: Path, target: Path) -> None:
    """A consistent copy of a live SQLite database (WAL or not), as of one transaction."""
    with closing(sqlite3.connect(f"file:{source.as_posix()}?mode=ro", uri=True)) as src:
        with closing(sqlite3.connect(target)) as dst:
            src.backup(dst)
        # The copy should not need the source's -wal file: fold it into one file.
        with closing(sqlite3.connect(target)) as dst:
            dst.execute("PRAGMA journal_mode=DELETE")


def lake_files(catalog: Path) -> tuple[int, list[str]]:
    """The catalog copy's latest snapshot and every data and delete file it references, relative
    to the lake folder (older snapshots' files too: time travel within the backup keeps working)."""
    with closing(sqlite3.connect(catalog)) as con:
        snapshot = con.execute("SELECT max(snapshot_id) FROM ducklake_snapshot").fetchone()[0]
        schemas = {
            sid: (path or "", bool(rel))
            for sid, path, rel in con.execute(
                "SELECT DISTINCT schema_id, path, path_is_relative FROM ducklake_schema"
            )
        }
        tables = {
            tid: (sid, path or "", bool(rel))
            for tid, sid, path, rel in con.execute(
                "SELECT DISTINCT table_id, schema_id, path, path_is_relative FROM ducklake_table"
            )
        }
        rows = con.execute(
            "SELECT table_id, path, path_is_relative FROM ducklake_data_file "
            "UNION SELECT table_id, path, path_is_relative FROM ducklake_delete_file"
        ).fetchall()
    files = set()
    for table_id, path, relative in rows:
        if not relative:
            raise GristmillError(f"the lake references a file outside its folder: {path}")
        schema_id, table_path, table_relative = tables[table_id]
        schema_path, schema_relative = schemas[schema_id]
        if not (table_relative and schema_relative):
            raise GristmillError(f"the lake references a table outside its folder: {table_path}")
        files.add(f"{schema_path}{table_path}{path}")
    return int(snapshot or 0), sorted(files)


def take_backup(
    settings: ProjectSettings,
    root: Path,
    dest: str,
    *,
    options: dict[str, object] | None = None,
    workers: int = 8,
) -> BackupInfo:
    """Copy the project's lake and history into a new folder under ``dest``; returns what it wrote."""
    refuse_unsupported(settings)
    storage = settings.storage
    if storage.format == "duckdb":
        return _take_database(settings, root, dest, options, workers)
    catalog = (root / storage.catalog).resolve()
    if not catalog.exists():
        raise GristmillError("this project has no data yet", hint="run `gristmill run` first")
    data = (root / storage.data).resolve()
    state = (root / storage.state).resolve()
    created = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="gristmill-backup-", dir=catalog.parent) as temp:
        local_catalog = Path(temp) / CATALOG_FILE
        sqlite_copy(catalog, local_catalog)
        snapshot, files = lake_files(local_catalog)
        name = f"{created.strftime('%Y%m%dT%H%M%S%fZ')}-s{snapshot}"
        place = Place(dest, options).child(name)
        copies = [(Path(local_catalog).as_posix(), CATALOG_FILE)]
        if state.exists():
            local_state = Path(temp) / STATE_FILE
            sqlite_copy(state, local_state)
            copies.append((local_state.as_posix(), STATE_FILE))
        copies += [((data / f).as_posix(), f"{LAKE_DIR}/{f}") for f in files]
        missing = [f for f in files if not (data / f).exists()]
        if missing:
            raise GristmillError(
                f"the lake's snapshot {snapshot} references {len(missing)} missing file(s), "
                f"e.g. {missing[0]}",
                hint="`gristmill gc` may have removed them while the backup ran; take it again",
            )

        entries = _copy_all(copies, place, workers)
    return _finish(settings, place, name, snapshot, created, entries)


def _copy_all(copies: list[tuple[str, str]], place: Place, workers: int) -> tuple[FileEntry, ...]:
    """Copy local files (absolute path, path in the backup) in parallel, hashing each."""
    source = Place("/")

    def copy(item: tuple[str, str]) -> FileEntry:
        size, digest = copy_hashing(source.fs, item[0], place.fs, place.path(item[1]))
        return FileEntry(item[1], size, digest)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return tuple(pool.map(copy, copies))


def _finish(
    settings: ProjectSettings,
    place: Place,
    name: str,
    snapshot: int | None,
    created: datetime,
    entries: tuple[FileEntry, ...],
) -> BackupInfo:
    """Write the manifest, last and atomically: from now on the backup is complete."""
    info = BackupInfo(
        name=name,
        url=place.url,
        complete=True,
        project=settings.name,
        storage=settings.storage.format,
        snapshot=snapshot,
        created_at=created.isoformat(timespec="seconds"),
        files=entries,
    )
    place.write_bytes_atomically("manifest.json", info.to_json())
    return info


def _take_database(
    settings: ProjectSettings, root: Path, dest: str, options: dict[str, object] | None, workers: int
) -> BackupInfo:
    """A DuckDB database file: held read-only (no run can write meanwhile), copied with its WAL."""
    from gristmill.engines.duckdb.held import database_held

    database = (root / settings.storage.database).resolve()
    if not database.exists():
        raise GristmillError("this project has no data yet", hint="run `gristmill run` first")
    state = (root / settings.storage.state).resolve()
    created = datetime.now(UTC)
    name = created.strftime("%Y%m%dT%H%M%S%fZ")
    place = Place(dest, options).child(name)
    with tempfile.TemporaryDirectory(prefix="gristmill-backup-", dir=database.parent) as temp:
        copies = []
        if state.exists():
            sqlite_copy(state, Path(temp) / STATE_FILE)
            copies.append(((Path(temp) / STATE_FILE).as_posix(), STATE_FILE))
        with database_held(database):
            wal = database.with_name(database.name + ".wal")
            copies.append((database.as_posix(), DATABASE_FILE))
            if wal.exists():
                copies.append((wal.as_posix(), DATABASE_FILE + ".wal"))
            entries = _copy_all(copies, place, workers)
    return _finish(settings, place, name, None, created, entries)
