"""The PostgreSQL engine: ``[engine] kind = "postgres"`` (see docs/engines.md)."""
