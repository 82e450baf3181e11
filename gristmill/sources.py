"""What pipeline code imports: ``from gristmill.sources import source``."""

from gristmill.connectors.python import source_decorator as source

__all__ = ["source"]
