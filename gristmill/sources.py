"""What pipeline code imports: ``from gristmill.sources import source`` (docs/sources-python.md).

A public path kept for user code; the decorator is defined in ``gristmill.authoring``."""

from gristmill.authoring.sources import source

__all__ = ["source"]
