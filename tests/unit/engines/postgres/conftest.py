"""The postgres engine's tests share one database per session; each engine gets its own prefix."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gristmill.config.settings import EngineSettings, ProjectSettings
from gristmill.engines.postgres.engine import PostgresEngine
from gristmill.engines.postgres.open import open_postgres
from tests.support.pg_engine import postgres_database, schema_prefix

pytestmark = pytest.mark.services


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with postgres_database("gristmill_engine") as url:
        yield url


@pytest.fixture
def open_engine(postgres_url: str, tmp_path: Path) -> Iterator[Callable[..., PostgresEngine]]:
    """Opens engines on the session's database (a fresh prefix unless one is given); closes them."""
    opened: list[PostgresEngine] = []

    def make(
        *, url: str | None = None, prefix: str | None = None, threads: int | None = None
    ) -> PostgresEngine:
        settings = EngineSettings(
            kind="postgres",
            url=url or postgres_url,
            schema_prefix=schema_prefix() if prefix is None else prefix,
            threads=threads,
        )
        engine = open_postgres(ProjectSettings(name="t", engine=settings), tmp_path)
        opened.append(engine)
        return engine

    yield make
    for engine in opened:
        engine.close()


@pytest.fixture
def engine(open_engine: Callable[..., PostgresEngine]) -> PostgresEngine:
    return open_engine()
