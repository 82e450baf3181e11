"""Python functions as sources (``kind: python``): the ``@source`` mark and the source that calls
the marked functions."""

from gristmill.connectors.python.marking import MARK, SourceFunction, marked, source_decorator

__all__ = ["MARK", "SourceFunction", "marked", "source_decorator"]
