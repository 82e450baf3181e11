"""A throwaway PostgreSQL 15 cluster for tests that need logical replication.

The shared development server is not touched: each cluster gets its own data directory, socket
directory and free port, runs as the ``postgres`` OS user (initdb refuses root) and is stopped with
``pg_ctl -m fast stop``. Failing to start is an error, never a skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

BIN = Path("/usr/lib/postgresql/15/bin")


@dataclass(frozen=True)
class Cluster:
    port: int
    data: Path

    def url(self, database: str = "postgres", user: str = "postgres", password: str | None = None) -> str:
        auth = f"{user}:{password}" if password else user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(self.url(database), autocommit=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _as_postgres(command: list[str]) -> None:
    """Run a server binary as the postgres user when we are root (initdb and postgres refuse root)."""
    if os.geteuid() == 0:
        command = ["su", "postgres", "-c", subprocess.list2cmdline(command)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


@contextmanager
def running_cluster(wal_level: str = "logical") -> Iterator[Cluster]:
    if not (BIN / "initdb").exists():
        raise RuntimeError(f"PostgreSQL binaries not found in {BIN}")
    base = Path(tempfile.mkdtemp(prefix="gm-pg-"))
    data, sockets = base / "pgdata", base / "sock"
    data.mkdir()
    sockets.mkdir()
    if os.geteuid() == 0:
        base.chmod(0o755)
        shutil.chown(data, "postgres", "postgres")
        shutil.chown(sockets, "postgres", "postgres")
    port = _free_port()
    settings = (
        f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c wal_level={wal_level}"
        " -c max_replication_slots=10 -c max_wal_senders=10 -c shared_buffers=32MB"
    )
    started = False
    try:
        initdb = [str(BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"]
        _as_postgres([*initdb, "-E", "UTF8", "--locale=C.UTF-8"])
        _as_postgres(
            [str(BIN / "pg_ctl"), "-D", str(data), "-l", str(data / "log"), "-w", "-o", settings, "start"]
        )
        started = True
        yield Cluster(port, data)
    finally:
        if started:
            _as_postgres([str(BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])
        shutil.rmtree(base, ignore_errors=True)
