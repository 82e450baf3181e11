"""Gristmill: ingest, transform, check and serve data from one project folder.

The public API: ``model`` (a Python model's decorator), ``source`` (a Python source's),
``Workspace`` (a project opened for running) and ``__version__``. ``source`` and ``Workspace``
need the data libraries, so they are imported when first used: ``import gristmill`` (which every
Python model does) stays light."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gristmill._util.version import VERSION as __version__
from gristmill.authoring.models import model

if TYPE_CHECKING:
    from gristmill.authoring.sources import source
    from gristmill.workspace import Workspace

__all__ = ["Workspace", "__version__", "model", "source"]


def __getattr__(name: str) -> Any:
    if name == "source":
        from gristmill.authoring.sources import source

        return source
    if name == "Workspace":
        from gristmill.workspace import Workspace

        return Workspace
    raise AttributeError(f"module 'gristmill' has no attribute {name!r}")
