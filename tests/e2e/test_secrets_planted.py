"""A source password planted through each secret provider (env, file, the OS keyring, Vault)
shows nowhere: run the project, fail a load on purpose, emit OpenLineage to a file, serve the
data API, then look for each secret (as written, URL-encoded, base64) in every command's output,
every HTTP response and every file under the project: none.

The keyring is an in-memory ``keyring`` backend set explicitly (no system keychain here). Vault is
a recorded-response KV v2 fake on a real loopback HTTP server (tests/support/vault_fake.py): no
Vault server can be installed on this machine. PostgreSQL trusts loopback, so any password is
accepted: the point is only that each one travels to the driver."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import keyring
import psycopg
import pytest

from gristmill.config import secrets
from tests.conftest import Cli
from tests.e2e.test_serve_tables import Server
from tests.support.memory_keyring import MemoryKeyring
from tests.support.vault_fake import FakeVault, fake_vault

pytestmark = pytest.mark.services

HOST = "127.0.0.1"
PLANTED = {
    "env": "Pl4nted!env-Secret-91",
    "file": "Pl4nted!file-Secret-92",
    "keyring": "Pl4nted!ring-Secret-93",
    "vault": "Pl4nted!vault-Secret-94",
}
REFERENCES = {
    "env": "${env:GM_PLANTED_PW}",
    "file": "${file:secrets/pg_password}",
    "keyring": "${keyring:gristmill-test/warehouse}",
    "vault": "${vault:secret/gristmill/warehouse#password}",
}


def _forms(secret: str) -> list[str]:
    raw = secret.encode()
    return [
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    ]


@pytest.fixture
def source_db() -> Iterator[str]:
    name = f"gristmill_test_planted_{os.getpid()}"
    with psycopg.connect(host=HOST, user="postgres", dbname="postgres", autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
        con.execute(f'CREATE DATABASE "{name}"'.encode())
    with psycopg.connect(host=HOST, user="postgres", dbname=name, autocommit=True) as con:
        con.execute("CREATE TABLE orders (order_id int, amount numeric(10,2))")
        con.execute("INSERT INTO orders VALUES (1, 5.5), (2, 7.25)")
    try:
        yield name
    finally:
        with psycopg.connect(host=HOST, user="postgres", dbname="postgres", autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


@pytest.fixture
def providers(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeVault]:
    before = keyring.get_keyring()
    ring = MemoryKeyring()
    ring.set_password("gristmill-test", "warehouse", PLANTED["keyring"])
    keyring.set_keyring(ring)
    monkeypatch.setenv("GM_PLANTED_PW", PLANTED["env"])
    with fake_vault() as vault:
        vault.secrets["secret/gristmill/warehouse"] = {"password": PLANTED["vault"]}
        monkeypatch.setenv("VAULT_ADDR", vault.url)
        monkeypatch.setenv("VAULT_TOKEN", vault.token)
        secrets.set_cache_ttl(300)
        yield vault
    keyring.set_keyring(before)


def _files(database: str) -> dict[str, str]:
    files = {"secrets/pg_password": PLANTED["file"] + "\n"}
    for scheme, reference in REFERENCES.items():
        url = f"postgresql://postgres:{reference}@{HOST}:5432/{database}"
        files[f"sources/pg_{scheme}.yml"] = f"kind: postgres\nconnection: {url}\ntables: [orders]\n"
        files[f"models/marts/total_{scheme}.sql"] = (
            f"select sum(amount) as amount from raw.pg_{scheme}__orders\n"
        )
    # a load that fails on purpose: the table is not there, and the error quotes the connection
    url = f"postgresql://postgres:{REFERENCES['vault']}@{HOST}:5432/{database}"
    files["sources/pg_broken.yml"] = f"kind: postgres\nconnection: {url}\ntables: [no_such_table]\n"
    # and a source of the project's own Python that resolves every reference itself, then logs,
    # prints and raises with the values: only redaction keeps these out of the logs, the run
    # history and the lineage events (without it this test fails)
    files["sources/leaky.yml"] = "kind: python\nmodule: pipelines/leaky.py\ntables: [leaky]\n"
    files["pipelines/leaky.py"] = LEAKY
    return files


LEAKY = f"""
import logging
from pathlib import Path

from gristmill.config.secrets import resolve
from gristmill.sources import source

REFERENCES = {list(REFERENCES.values())!r}


@source
def leaky():
    values = [resolve(reference, base=Path(__file__).parents[1]) for reference in REFERENCES]
    logging.getLogger("pipelines.leaky").warning("connecting with %s", values)
    print("printing", values)
    raise RuntimeError(f"login refused for {{values}}")
"""


TOML = """name = "planted"

[lineage]
openlineage = ".gristmill/openlineage.jsonl"
"""


def test_planted_secrets_appear_nowhere(
    make_project: Callable[..., Path], cli: Cli, source_db: str, providers: FakeVault
) -> None:
    root = make_project(_files(source_db), toml=TOML)
    said: list[str] = []

    def run(*args: str) -> tuple[int, str]:
        code, out = cli(*args, project=root)
        said.append(out)
        return code, out

    code, out = run("run")
    assert code == 1 and "pg_broken" in out and "leaky" in out, out  # the failed loads
    assert "login refused for ['***', '***', '***', '***']" in out, out
    assert providers.reads  # the Vault reference was resolved through the fake server
    for args in (("run", "-o", "json"), ("history",), ("runs",), ("logs", "1"), ("ls",), ("check",)):
        run(*args)
    code, out = run("query", "select * from marts.total_keyring")
    assert code == 0 and "12.75" in out, out

    server = Server(root)
    try:
        for path in ("/healthz", "/metrics", "/api/v1/tables", "/api/v1/tables/marts.total_vault"):
            said.append(server.client.get(path).text)
    finally:
        server.stop()

    files = [p for p in root.rglob("*") if p.is_file() and p.parent.name != "secrets"]
    assert any(p.name == "openlineage.jsonl" for p in files)
    assert any(p.name == "state.sqlite" for p in files)
    for scheme, secret in PLANTED.items():
        for form in _forms(secret):
            for out in said:
                assert form not in out, (scheme, form, out)
            for path in files:
                assert form.encode() not in path.read_bytes(), (scheme, form, path)
