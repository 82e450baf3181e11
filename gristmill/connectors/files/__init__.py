"""Files on disk: CSV, JSON, NDJSON and Parquet, read by DuckDB's own readers."""
