"""Spark DataFrames for Python models: the ``SparkDataFrames`` capability (engines/base.py), mixed
into the spark engine.

A parameter annotated ``pyspark.sql.DataFrame`` gets a lazy DataFrame over its input as the open
transaction sees it, one annotated ``pyspark.sql.SparkSession`` the session. The DataFrame a model
returns becomes a temporary view that the engine stages like any query (``CREATE TABLE … AS
SELECT``): the executors write it, and no row reaches the driver."""

from __future__ import annotations

import uuid
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from sqlglot import exp

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


class SparkFrames:
    """What the host engine provides: ``_spark`` (its session), ``_sql`` (a statement run, its
    errors as EngineError), ``_text`` (a statement in Spark SQL reading the transaction's own
    writes) and ``stage``."""

    if TYPE_CHECKING:
        _spark: SparkSession

        def _sql(self, text: str) -> DataFrame: ...

        def _text(self, statement: exp.Expr) -> str: ...

        def stage(self, data: Any) -> exp.Table: ...

    @property
    def spark(self) -> SparkSession:
        return self._spark

    def dataframe(self, table: exp.Table) -> DataFrame:
        """A lazy DataFrame over ``table``, as the open transaction sees it."""
        return self._sql(self._text(exp.select("*").from_(table.copy())))

    def stage_dataframe(self, result: Any) -> exp.Table | None:
        """Stage a DataFrame on the executors (no row through the driver); None when ``result``
        is not a DataFrame."""
        from pyspark.sql import DataFrame

        if not isinstance(result, DataFrame):
            return None
        view = f"_gm_frame_{uuid.uuid4().hex[:12]}"
        result.createOrReplaceTempView(view)
        try:
            return self.stage(exp.select("*").from_(exp.to_table(view)))
        finally:
            with suppress(Exception):
                self._spark.catalog.dropTempView(view)
