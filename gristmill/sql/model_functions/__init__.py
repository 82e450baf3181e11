"""Functions users write in models (DuckDB's spelling, the project's dialect) as other engines
spell them, computing the same value of the same type: one module per engine's dialect.

``sql.functions`` lowers what the platform's own statements use; these modules lower what models
commonly call (date parts, names of days and months, string tests, regular expressions, list
helpers, ``arg_max`` and friends) where sqlglot's generator for the engine writes a function the
engine lacks or one that returns another type (PostgreSQL's ``EXTRACT`` is ``numeric``, DuckDB's
``year()`` a ``BIGINT``). ``sql.functions.LOWERINGS`` merges their tables into its own.

What has no form at all on an engine is named by ``NO_FORM``: a strict render (planning a run,
``gristmill compile``) reports it as the construct the model must not use, rather than sending
the engine SQL it rejects mid-run (or, for ``TRY_CAST`` on PostgreSQL, SQL that fails where
DuckDB gave NULL).
"""

from __future__ import annotations

from gristmill.sql.model_functions.no_form import NO_FORM
from gristmill.sql.model_functions.postgres import POSTGRES, POSTGRES_BY_NAME
from gristmill.sql.model_functions.spark import SPARK, SPARK_BY_NAME

__all__ = ["NO_FORM", "POSTGRES", "POSTGRES_BY_NAME", "SPARK", "SPARK_BY_NAME"]
