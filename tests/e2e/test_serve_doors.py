"""``gristmill serve`` as a user starts it with its doors: API keys required on the data API by
default (a key made with ``gristmill keys create``, refused once revoked), read-only SQL with
``--allow-sql`` and the PostgreSQL wire door with ``--pg-port``, all in the one process; and the
flags that would expose data without a key refused off loopback."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import write_files
from tests.e2e.test_serve_tables import FILES, GRISTMILL, ROWS, Server, _run

pytestmark = pytest.mark.services


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _gristmill(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GRISTMILL, *args, "--project", str(root)], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Server, int]]:
    root = write_files(tmp_path_factory.mktemp("doors"), FILES)
    _run(root)
    pg_port = _free_port()
    server = Server(root, args=("--allow-sql", "--pg-port", str(pg_port)))
    try:
        yield root, server, pg_port
    finally:
        server.stop()


def test_the_data_api_wants_a_key_until_it_is_revoked(served: tuple[Path, Server, int]) -> None:
    root, server, _ = served
    assert server.client.get("/healthz").status_code == 200  # health and metrics stay open
    refused = server.client.get("/api/v1/tables")
    assert refused.status_code == 401 and "gristmill keys create" in refused.text
    made = _gristmill(root, "keys", "create", "-q", "--name", "test")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("gmk_")
    auth = {"Authorization": f"Bearer {key}"}
    tables = server.client.get("/api/v1/tables", headers=auth)
    assert tables.status_code == 200
    assert "marts.items" in {f"{t['schema']}.{t['name']}" for t in tables.json()["tables"]}
    sql = server.client.post(
        "/api/v1/sql", json={"sql": "select count(*) as n from marts.items"}, headers=auth
    )
    assert sql.status_code == 200, sql.text
    assert sql.json()["rows"][0][0] in (ROWS, str(ROWS))
    assert server.client.post("/api/v1/sql", json={"sql": "select 1"}).status_code == 401
    revoked = _gristmill(root, "keys", "revoke", key.split("_")[1])
    assert revoked.returncode == 0, revoked.stdout + revoked.stderr
    assert server.client.get("/api/v1/tables", headers=auth).status_code == 401
    assert key not in (root / "serve.log").read_text()


def _key(root: Path, *flags: str) -> str:
    made = _gristmill(root, "keys", "create", "-q", *flags)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


def _connect(pg_port: int, key: str | None, user: str = "bi") -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        host="127.0.0.1", port=pg_port, user=user, password=key, dbname="shop", autocommit=True
    )


def test_the_wire_door_logs_in_with_an_api_key_and_refuses_others(served: tuple[Path, Server, int]) -> None:
    root, _, pg_port = served
    key = _key(root, "--name", "bi")
    with _connect(pg_port, key, user="anyone") as conn:
        assert conn.execute("select count(*) from marts.items").fetchone() == (ROWS,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("drop table marts.items")
    with _connect(pg_port, key, user=f"gmk_{key.split('_')[1]}") as conn:  # the key's id as user
        assert conn.execute("select 1 as one").fetchone() == (1,)
    refusals = {
        "": "missing API key",
        "not-a-key": "not a Gristmill API key",
        f"gmk_{'0' * 12}_{'x' * 43}": "unknown API key",
    }
    for wrong, said in refusals.items():
        with pytest.raises(psycopg.OperationalError, match=said):
            _connect(pg_port, wrong or " ")
    from datetime import timedelta

    from gristmill.workspace.keys import ApiKeys

    keys = ApiKeys.for_project(root)
    try:
        expired = keys.create("old", expires=timedelta(seconds=-1)).token
    finally:
        keys.close()
    with pytest.raises(psycopg.OperationalError, match="is expired"):
        _connect(pg_port, expired)
    assert _gristmill(root, "keys", "revoke", key.split("_")[1]).returncode == 0
    with pytest.raises(psycopg.OperationalError, match="is revoked"):
        _connect(pg_port, key)
    log = (root / "serve.log").read_text()
    assert f"key=gmk_{key.split('_')[1]} method=SQL route=pgwire status=OK rows=1" in log
    assert "route=pgwire status=28P01" in log
    assert key not in log and "drop table" not in log  # neither the key nor the statement's text


def test_a_key_scoped_to_a_schema_reads_and_lists_only_that_schema(served: tuple[Path, Server, int]) -> None:
    root, _, pg_port = served
    key = _key(root, "--name", "raw-only", "--schemas", "raw")
    with _connect(pg_port, key) as conn:
        assert conn.execute("select count(*) from raw.feed__items").fetchone() == (ROWS,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="not a served table"):
            conn.execute("select count(*) from marts.items")
        listed = conn.execute("select table_schema, table_name from information_schema.tables").fetchall()
    assert {schema for schema, _ in listed} == {"raw"}


def test_a_key_rate_applies_per_statement_on_the_wire(served: tuple[Path, Server, int]) -> None:
    root, _, pg_port = served
    key = _key(root, "--name", "slow", "--rate", "1/min")
    with _connect(pg_port, key) as conn:
        assert conn.execute("select count(*) from marts.items").fetchone() == (ROWS,)
        with pytest.raises(psycopg.errors.ConfigurationLimitExceeded, match="rate limit of API key"):
            conn.execute("select count(*) from marts.items")


@pytest.mark.parametrize("flags", [("--no-auth",), ("--pg-port", "5999")])
def test_what_would_serve_data_without_a_key_is_refused_off_loopback(
    tmp_path: Path, flags: tuple[str, ...]
) -> None:
    root = write_files(tmp_path, FILES)
    done = subprocess.run(
        [GRISTMILL, "serve", "--project", str(root), "--host", "0.0.0.0", "--port", "0", *flags],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    out = done.stdout + done.stderr
    assert "loopback" in out or "127.0.0.1" in out, out
    assert "Traceback" not in out


def test_off_loopback_the_door_speaks_only_tls(served: tuple[Path, Server, int], tmp_path: Path) -> None:
    """Keys travel as passwords in clear text inside the protocol: off loopback, TLS or nothing."""
    from gristmill.server.pgwire import start_pg_door
    from gristmill.workspace.facade import Workspace
    from gristmill.workspace.keys import ApiKeys
    from gristmill.workspace.sql_reading import SqlReader

    root, _, _ = served
    cert, private = tmp_path / "cert.pem", tmp_path / "key.pem"
    self_signed = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"]
    made = subprocess.run(
        ["openssl", *self_signed, "-keyout", str(private), "-out", str(cert)],
        capture_output=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    key = _key(root, "--name", "tls")
    workspace, keys = Workspace(root), ApiKeys.for_project(root)
    reader = SqlReader(workspace)
    door = start_pg_door(reader, "0.0.0.0", 0, keys=keys, tls=(str(cert), str(private)))
    try:
        with psycopg.connect(
            host="127.0.0.1", port=door.port, password=key, dbname="shop", sslmode="require", autocommit=True
        ) as conn:
            assert conn.pgconn.ssl_in_use
            assert conn.execute("select count(*) from marts.items").fetchone() == (ROWS,)
        with pytest.raises(psycopg.OperationalError, match="only TLS"):
            psycopg.connect(host="127.0.0.1", port=door.port, password=key, dbname="shop", sslmode="disable")
    finally:
        door.stop()
        reader.close()
        keys.close()
        workspace.close()
