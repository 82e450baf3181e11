"""SQLite database files, read by DuckDB's sqlite scanner."""
