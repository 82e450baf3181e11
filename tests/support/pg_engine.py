"""A database of its own on the loopback PostgreSQL for the postgres engine's tests, made once per
test session (``gristmill_conf_<random>``) and dropped at its end. Each engine opened on it gets a
schema prefix of its own, so tests never see each other's tables.

A server that cannot be reached fails the tests under CI (``CI`` set) and skips them elsewhere,
with the reason."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

ADMIN_URL = os.environ.get("GRISTMILL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _admin() -> psycopg.Connection:
    try:
        return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as err:
        message = (
            f"PostgreSQL is not reachable at {ADMIN_URL} ({str(err).strip().splitlines()[0]}): the postgres "
            "engine's tests need it (scripts/services starts it; GRISTMILL_TEST_POSTGRES_URL names another)"
        )
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@contextmanager
def postgres_database(prefix: str = "gristmill_conf") -> Iterator[str]:
    """A new, empty database; yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with _admin() as con:
        con.execute(f'CREATE DATABASE "{name}"'.encode())
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with _admin() as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def schema_prefix() -> str:
    """A prefix no other engine of the session uses."""
    return f"t{uuid.uuid4().hex[:8]}_"
