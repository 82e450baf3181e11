"""Everything that reads or rewrites SQL, built on one sqlglot parse per model."""

from gristmill.sql.parse import ParsedModel, TableRef, parse_model
from gristmill.sql.rewrite import render
from gristmill.sql.validate import output_columns

__all__ = ["ParsedModel", "TableRef", "output_columns", "parse_model", "render"]
