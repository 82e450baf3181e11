"""What each engine's dialect has no spelling for, by dialect."""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from gristmill.sql.model_functions.postgres import postgres_no_form
from gristmill.sql.model_functions.spark import spark_no_form

NO_FORM: dict[str, Callable[[exp.Expr], str | None]] = {"postgres": postgres_no_form, "spark": spark_no_form}
"""dialect -> what a lowered node has no spelling for in it (a message), or None."""
