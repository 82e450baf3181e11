"""Capabilities are checked, never probed: a missing one is a clear error naming it."""

from __future__ import annotations

from typing import Any

import pytest

from gristmill.engines.base import (
    ArrowViews,
    Interruptible,
    Maintenance,
    NativeRelations,
    StreamingEngine,
    Transactions,
    require_arrow_views,
    require_streaming,
    require_transactions,
)
from gristmill.engines.duckdb.memory import memory_engine
from gristmill.errors import MissingCapability


class CoreOnly:
    """An engine with the core alone (its methods are never called here)."""

    kind = "core-only"
    dialect = "postgres"

    def __getattribute__(self, name: str) -> Any:
        if name in ("kind", "dialect", "__class__"):
            return object.__getattribute__(self, name)
        raise AttributeError(name)


def test_the_duckdb_engine_declares_every_capability() -> None:
    engine = memory_engine()
    try:
        capabilities = [Transactions, ArrowViews, Maintenance, Interruptible, NativeRelations]
        capabilities.append(StreamingEngine)
        for capability in capabilities:
            assert isinstance(engine, capability), capability.__name__
    finally:
        engine.close()


@pytest.mark.parametrize(
    ("require", "named"),
    [
        (require_transactions, "transactions"),
        (require_arrow_views, "Arrow views"),
        (require_streaming, "transactions and Arrow views"),
    ],
)
def test_a_missing_capability_names_itself_and_the_work(require: Any, named: str) -> None:
    with pytest.raises(MissingCapability) as caught:
        require(CoreOnly(), "a Python model")
    assert caught.value.message == f"the core-only engine has no {named}, which a Python model needs"
    assert "What an engine must provide" in (caught.value.hint or "")
