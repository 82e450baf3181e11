"""Everything that reads or rewrites SQL, built on one sqlglot parse per model."""

from gristmill.sql.parse import ParsedModel, TableRef, parse_model
from gristmill.sql.rewrite import render

__all__ = ["ParsedModel", "TableRef", "parse_model", "render"]
