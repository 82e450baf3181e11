"""``@source``: marks the functions a ``kind: python`` source may call.

The mark lives with the connector that runs those functions (``connectors/python/marking.py``:
it records what that connector reads back); this is the name user code imports, through
``gristmill.sources`` (documented) or ``gristmill.source``."""

from gristmill.connectors.python.marking import source_decorator as source

__all__ = ["source"]
