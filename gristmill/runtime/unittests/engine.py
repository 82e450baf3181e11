"""The engine a unit test runs on: a scratch engine of the project's kind that takes Arrow, else
DuckDB in memory."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from gristmill._util.text import shorten
from gristmill.engines.base import ArrowViews, Engine
from gristmill.engines.registry import fallback_engine, scratch_engine
from gristmill.errors import GristmillError


@runtime_checkable
class TestEngine(Engine, ArrowViews, Protocol):
    """What a unit test needs of its engine: the core and Arrow views."""


def test_engine(kind: str) -> TestEngine:
    """A scratch engine of the project's kind that takes Arrow; else the in-memory DuckDB one."""
    engine = scratch_engine(kind)
    if isinstance(engine, TestEngine):
        return engine
    engine.close()
    fallback = fallback_engine()
    assert isinstance(fallback, TestEngine)
    return fallback


def first(err: GristmillError) -> str:
    """The engine's message without the quoted statement (it is the rendered SQL, not the file)."""
    return shorten(err.message.split("\n\nLINE ")[0].strip())
