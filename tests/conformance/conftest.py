"""One suite over every engine in the registry: each test runs on each kind's project engine and,
where the kind makes one, its scratch engine. A capability an engine does not implement skips
its tests with a reason naming the capability, never silently.

The postgres kind runs against the loopback server, in a database the session makes and drops
(tests/support/pg_engine.py), each test under a schema prefix of its own; the spark kind on one
local Spark session for the whole test session (tests/support/spark_engine.py), each test under a
schema prefix and with a ledger of its own. Their cases are marked ``services`` (the fast tier
leaves them out, CI runs them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from gristmill.config.settings import EngineSettings, ProjectSettings
from gristmill.engines.base import Engine
from gristmill.engines.registry import ENGINES
from tests.support.pg_engine import postgres_database, schema_prefix
from tests.support.spark_engine import spark_settings, start_shared_session

SERVERS = {"postgres", "spark"}
"""Kinds whose engine is a server the tests must reach (or a JVM they start)."""

FLAVOURS = [
    pytest.param(
        (kind, flavour), id=f"{kind}-{flavour}", marks=[pytest.mark.services] if kind in SERVERS else []
    )
    for kind, entry in sorted(ENGINES.items())
    for flavour in ("project", "scratch")
    if flavour == "project" or entry.scratch is not None
]

C = TypeVar("C")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def spark_session(tmp_path_factory: pytest.TempPathFactory) -> None:
    start_shared_session(tmp_path_factory.mktemp("spark"))


def engine_settings(kind: str, request: pytest.FixtureRequest) -> EngineSettings:
    if kind == "spark":
        request.getfixturevalue("spark_session")
        return spark_settings()
    if kind == "postgres":
        url = request.getfixturevalue("postgres_url")
        return EngineSettings(kind="postgres", url=url, schema_prefix=schema_prefix())
    return EngineSettings(kind=kind)  # type: ignore[arg-type]


@pytest.fixture(params=FLAVOURS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    kind, flavour = request.param
    entry = ENGINES[kind]
    if flavour == "scratch":
        assert entry.scratch is not None
        made = entry.scratch()
    else:
        settings = ProjectSettings(name="conformance", engine=engine_settings(kind, request))
        made = entry.open(settings, tmp_path, False)
    try:
        yield made
    finally:
        made.close()


def needs(engine: Engine, capability: type[C]) -> C:
    """``engine`` as ``capability``, or skip the test naming what is missing."""
    if not isinstance(engine, capability):
        pytest.skip(f"not implemented: the {engine.kind} engine has no {capability.__name__} capability")
    return engine
