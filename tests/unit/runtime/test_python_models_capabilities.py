"""Python models need the engine's Arrow views: without them the error names the capability."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from gristmill.errors import MissingCapability
from gristmill.runtime.build.python_models import run_python_model


class CoreOnly:
    kind = "core-only"
    dialect = "postgres"


def test_an_engine_without_arrow_views_cannot_run_python_models() -> None:
    engine: Any = CoreOnly()
    with pytest.raises(MissingCapability) as caught:
        run_python_model(engine, SimpleNamespace(), lambda asset: None)  # type: ignore[arg-type]
    assert "Arrow views" in caught.value.message
