"""Ingestion benchmarks: nested JSON, CSV, PostgreSQL and bounded memory, each against a baseline."""
