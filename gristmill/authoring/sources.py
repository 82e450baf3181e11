"""``@source``: marks the functions a ``kind: python`` source may call.

The decorator lives with the connector that runs those functions (it records what that
connector reads back); this is the name user code imports."""

from gristmill.connectors.python import source_decorator as source

__all__ = ["source"]
