"""Outside systems, one folder each (config.py, source.py), moving only Arrow record batches."""

from gristmill.connectors.base import Source
from gristmill.connectors.registry import SOURCE_KINDS, open_source

__all__ = ["SOURCE_KINDS", "Source", "open_source"]
