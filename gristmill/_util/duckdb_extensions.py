"""Load DuckDB extensions offline from the pip-installed ``duckdb-extension-*`` packages.

DuckDB's own ``INSTALL`` downloads from the internet. Instead we lay the packaged files out
as a local extension repository (``<repo>/v<version>/<platform>/<name>.duckdb_extension``)
and point DuckDB at it, so ``INSTALL``/``LOAD`` work with no network and autoloading never
reaches out.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import tempfile
import threading
from pathlib import Path

import duckdb

# DuckDB registers some extensions under a longer canonical name.
_CANONICAL = {"sqlite": "sqlite_scanner", "postgres": "postgres_scanner", "mysql": "mysql_scanner"}


def _packaged_file(name: str, version: str) -> Path | None:
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    if spec is None or not spec.submodule_search_locations:
        return None
    candidate = Path(spec.submodule_search_locations[0]) / "extensions" / version / f"{name}.duckdb_extension"
    return candidate if candidate.exists() else None


@functools.cache
def _platform() -> str:
    # A connection of its own: duckdb.execute() uses the module's one default connection, which
    # threads opening engines at once (the SQL door's sessions) share and break.
    with duckdb.connect() as con:
        return str(con.execute("PRAGMA platform").fetchone()[0])  # type: ignore[index]


def local_repository(names: tuple[str, ...]) -> Path:
    """Build (once per user and DuckDB version) a repository of the packaged extensions."""
    version = f"v{duckdb.__version__}"
    platform = _platform()
    root = Path(
        os.environ.get("GRISTMILL_EXTENSION_REPO", Path(tempfile.gettempdir()) / "gristmill-extensions")
    )
    folder = root / version / platform
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        source = _packaged_file(name, version)
        if source is None:
            continue
        target = folder / f"{_CANONICAL.get(name, name)}.duckdb_extension"
        if not target.exists() or target.resolve() != source.resolve():
            tmp = target.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")  # per thread too
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(source)
            tmp.replace(target)  # atomic, so parallel processes never see a half-made link
    return root


def load(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Load one more packaged extension into a connection made by :func:`connect`."""
    local_repository((name,))
    con.execute(f"INSTALL {name}")
    con.execute(f"LOAD {name}")


# Settings every connection of this process gets (the engine's and each source's own), so one
# `[engine] memory_limit` bounds them all. Set by whoever opens a project.
process_defaults: dict[str, str | int | bool] = {}

# Packaged extensions the project's engine loads as it connects, besides its own: those the
# sources' native reads will ask it for (see ``connectors.registry.announce_native_reads``).
# Loaded then, from the package's file, they skip the check DuckDB makes on a later ``LOAD``,
# which hashes the whole file: ~0.2 CPU-s and ~40 MB of memory for the postgres scanner.
engine_extensions: set[str] = set()


def connect(
    database: str = ":memory:",
    *,
    extensions: tuple[str, ...] = (),
    read_only: bool = False,
    config: dict[str, str | int | bool] | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that never downloads, with ``extensions`` loaded."""
    repo = local_repository(extensions)
    settings: dict[str, str | int | bool] = {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": True,
        "extension_directory": str(repo / "installed"),
        **process_defaults,
        **(config or {}),
    }
    unsigned = bool(settings.get("allow_unsigned_extensions", False))
    settings["allow_unsigned_extensions"] = True  # for the packaged files only: see _load_packaged
    con = duckdb.connect(database, read_only=read_only, config=settings)  # type: ignore[arg-type]
    try:
        rest = _load_packaged(con, extensions)
    finally:
        if not unsigned:
            con.execute("SET allow_unsigned_extensions = false")
    con.execute(f"SET custom_extension_repository = '{repo.as_posix()}'")
    con.execute("SET enable_progress_bar = false")  # it would print into query output and logs
    for name in rest:
        con.execute(f"INSTALL {name}")
        con.execute(f"LOAD {name}")
    return con


def _load_packaged(con: duckdb.DuckDBPyConnection, names: tuple[str, ...]) -> list[str]:
    """Load the extensions among ``names`` that pip installed, straight from their package's
    files; returns the others.

    DuckDB checks an extension's signature by hashing the whole file on every load: ~0.27 s of
    CPU for ducklake and sqlite, paid by every process. These files came with the packages, as
    trusted as this code, so they load unchecked — through links in a private folder of this
    process (DuckDB takes the entry point from the file name), never through the shared
    repository folder, which another user could have made first. The caller turns the check
    back on right after."""
    version = f"v{duckdb.__version__}"
    rest: list[str] = []
    with tempfile.TemporaryDirectory(prefix="gristmill-extensions-") as private:  # mode 0700
        for name in names:
            source = _packaged_file(name, version)
            if source is None:
                rest.append(name)
                continue
            link = Path(private) / f"{_CANONICAL.get(name, name)}.duckdb_extension"
            link.symlink_to(source.resolve())
            path = link.as_posix().replace("'", "''")
            con.execute(f"LOAD '{path}'")
    return rest
