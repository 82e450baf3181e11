"""PostgreSQL tables and queries, read by DuckDB's postgres scanner."""
