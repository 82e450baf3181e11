"""Transformation benchmark: a layered 300-model project, run by raw DuckDB, Gristmill, dbt and SQLMesh."""
