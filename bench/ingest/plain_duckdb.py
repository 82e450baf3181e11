"""DuckDB over a fresh DuckLake without importing Gristmill: what the baselines use, so that a
baseline process pays only for duckdb (whole-process figures would otherwise include Gristmill's
imports on both sides).

The extensions load from the pip-installed ``duckdb-extension-*`` packages exactly as Gristmill
loads them (straight from the package files, through a link named as DuckDB expects)."""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

import duckdb

_CANONICAL = {"sqlite": "sqlite_scanner", "postgres": "postgres_scanner"}


def connect(extensions: tuple[str, ...] = ("ducklake", "sqlite")) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(config={"allow_unsigned_extensions": True, "autoinstall_known_extensions": False})
    with tempfile.TemporaryDirectory() as private:
        for name in extensions:
            spec = importlib.util.find_spec(f"duckdb_extension_{name}")
            assert spec is not None and spec.submodule_search_locations, f"duckdb-extension-{name}"
            packaged = Path(spec.submodule_search_locations[0]) / "extensions" / f"v{duckdb.__version__}"
            link = Path(private) / f"{_CANONICAL.get(name, name)}.duckdb_extension"
            link.symlink_to((packaged / f"{name}.duckdb_extension").resolve())
            con.execute(f"LOAD '{link.as_posix()}'")
    con.execute("SET enable_progress_bar = false")
    return con


def lake(folder: Path, extensions: tuple[str, ...] = ("ducklake", "sqlite")) -> duckdb.DuckDBPyConnection:
    """A DuckDB session over a fresh DuckLake (SQLite catalog), as Gristmill stores data."""
    folder.mkdir(parents=True, exist_ok=True)
    con = connect(extensions)
    con.execute(f"ATTACH 'ducklake:sqlite:{folder}/catalog.sqlite' AS lake (DATA_PATH '{folder}/data/')")
    con.execute("USE lake")
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    return con
