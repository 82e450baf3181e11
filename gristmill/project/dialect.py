"""The SQL dialect a project's own SQL is written in.

A model may name another (``-- dialect: snowflake``) and is transpiled from it; everything else the
user writes (checks, dbt models and tests, conditions in YAML) is read in this one. It is the
dialect the project's SQL is parsed with, not the engine's: rendering for an engine happens in
``gristmill.sql.render``."""

PROJECT_DIALECT = "duckdb"
