"""Throwaway databases on the loopback PostgreSQL and MariaDB servers, loaded with Chinook.

Each test session creates its own database (and, for MariaDB, its own password-protected user),
named after the process id so concurrent runs never meet, and drops them at the end. A server
that cannot be reached fails the tests with a message saying so: never a skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from gristmill.connectors import Source, open_source
from gristmill.project import load_project
from gristmill.project.specs import SourceTable

DATA = Path(__file__).parent / "data"
HOST = "127.0.0.1"
PG_PORT = 5432
MY_PORT = 3306
MY_PASSWORD = "gm-Pw:with@odd/chars"  # URL-encoded in the URL; must never appear in a message


@dataclass(frozen=True)
class Database:
    kind: str
    name: str
    url: str
    """The URL a source connects with (password included for MariaDB)."""
    password: str | None = None

    def execute(self, sql: str) -> None:
        """Run one or more statements as the administrator."""
        if self.kind == "postgres":
            with _pg_admin(self.name) as con:
                con.execute(sql.encode())
        else:
            _mariadb(sql, database=self.name)

    def scalar(self, sql: str) -> object:
        if self.kind == "postgres":
            with _pg_admin(self.name) as con:
                row = con.execute(sql.encode()).fetchone()
                return None if row is None else row[0]
        return _mariadb(sql, database=self.name, capture=True).strip()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


def _session_suffix() -> str:
    return f"{os.getpid()}"


# -- PostgreSQL ------------------------------------------------------------------------------------


def _pg_admin(database: str = "postgres") -> psycopg.Connection:
    try:
        return psycopg.connect(
            host=HOST, port=PG_PORT, user="postgres", dbname=database, autocommit=True, connect_timeout=5
        )
    except psycopg.OperationalError as err:
        pytest.fail(
            f"PostgreSQL is not reachable at {HOST}:{PG_PORT} ({err}). These tests need the loopback "
            "server (user postgres, no password); start it and rerun.",
            pytrace=False,
        )


@contextmanager
def postgres_chinook() -> Iterator[Database]:
    name = f"gristmill_test_pg_{_session_suffix()}"
    with _pg_admin() as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
        con.execute(f'CREATE DATABASE "{name}"'.encode())
    try:
        script = (DATA / "Chinook_PostgreSql.sql").read_text(encoding="utf-8")
        kept = [
            line
            for line in script.splitlines()
            if not line.startswith(("DROP DATABASE", "CREATE DATABASE", "\\c "))
        ]
        with _pg_admin(name) as con:
            con.execute("\n".join(kept).encode())
        yield Database("postgres", name, f"postgresql://postgres@{HOST}:{PG_PORT}/{name}")
    finally:
        with _pg_admin() as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


# -- MariaDB ---------------------------------------------------------------------------------------


def _mariadb(sql: str, *, database: str | None = None, capture: bool = False) -> str:
    client = shutil.which("mariadb") or shutil.which("mysql")
    if client is None:
        pytest.fail("the mariadb command-line client is not installed (apt-get install mariadb-client)")
    command = [client, f"--host={HOST}", f"--port={MY_PORT}", "--user=root", "--batch", "--skip-column-names"]
    result = subprocess.run(
        [*command, *([database] if database else [])],
        input=sql,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        if "Can't connect" in result.stderr:
            pytest.fail(
                f"MariaDB is not reachable at {HOST}:{MY_PORT} ({result.stderr.strip()}). These tests "
                "need the loopback server (root, empty password); start it and rerun.",
                pytrace=False,
            )
        raise RuntimeError(f"mariadb failed: {result.stderr.strip()}")
    return result.stdout


@contextmanager
def mysql_chinook() -> Iterator[Database]:
    suffix = _session_suffix()
    name, user = f"gristmill_test_my_{suffix}", f"gm_test_{suffix}"
    account = f"'{user}'@'{HOST}'"
    _mariadb(
        f"DROP DATABASE IF EXISTS `{name}`; CREATE DATABASE `{name}` CHARACTER SET utf8mb4;"
        f"DROP USER IF EXISTS {account}; CREATE USER {account} IDENTIFIED BY '{MY_PASSWORD}';"
        f"GRANT SELECT ON `{name}`.* TO {account};"
    )
    try:
        script = (DATA / "Chinook_MySql.sql").read_text(encoding="utf-8")
        kept = [
            line
            for line in script.splitlines()
            if not line.startswith(("DROP DATABASE", "CREATE DATABASE", "USE "))
        ]
        _mariadb("\n".join(kept), database=name)
        url = f"mysql://{user}:{quote(MY_PASSWORD, safe='')}@{HOST}:{MY_PORT}/{name}"
        yield Database("mysql", name, url, MY_PASSWORD)
    finally:
        _mariadb(f"DROP DATABASE IF EXISTS `{name}`; DROP USER IF EXISTS {account};")


# -- sources over them -----------------------------------------------------------------------------


class Sources:
    """Opens ``kind`` sources declared in a fresh project's ``sources/shop.yml``; closes them all."""

    def __init__(self, make_project: Callable[..., Path], kind: str, env: str) -> None:
        self.make_project, self.kind, self.env = make_project, kind, env
        self.opened: list[Source] = []

    def open(self, body: str, *, connection: str | None = None) -> tuple[Source, dict[str, SourceTable]]:
        """``body`` is the YAML after ``kind`` and ``connection`` (e.g. a ``tables:`` block);
        the connection is the URL in the environment variable unless given."""
        connection = connection or f"${{env:{self.env}}}"
        text = f"kind: {self.kind}\nconnection: {connection}\n" + textwrap.dedent(body).lstrip("\n")
        root = self.make_project({"sources/shop.yml": text})
        spec = load_project(root).sources["shop"]
        source = open_source(spec, root)
        self.opened.append(source)
        return source, spec.tables

    def close(self) -> None:
        for source in self.opened:
            source.close()
