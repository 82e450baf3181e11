"""MySQL and MariaDB tables and queries, read with ConnectorX; DuckDB's mysql scanner maps the types."""
