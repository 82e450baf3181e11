"""The default engine: embedded DuckDB over a DuckLake (catalog + Parquet files)."""

from gristmill.engines.duckdb.engine import DuckDBEngine

__all__ = ["DuckDBEngine"]
