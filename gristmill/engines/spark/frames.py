"""Spark DataFrames for Python models (the ``SparkDataFrames`` capability of engines/base.py).

A model that annotates a parameter ``pyspark.sql.DataFrame`` gets a lazy DataFrame over the
input's physical table, and one annotated ``pyspark.sql.SparkSession`` gets the session. The
DataFrame the model returns becomes a temporary view of the session, which the engine stages
like any query: the plan runs on the executors and no row reaches the driver."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from gristmill.sql.render import render

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

SPARK = "spark"
FRAME_VIEW = "_gm_frame_"
"""Prefix of the temporary views that hold Python models' results until they are staged."""
_numbers = itertools.count()


class SparkFrames:
    """``SparkDataFrames`` for an engine that keeps its SparkSession in ``_spark``: mixed into the
    spark engine."""

    _spark: Any

    @property
    def spark(self) -> Any:
        return self._spark

    def dataframe(self, table: exp.Table) -> DataFrame:
        """A lazy DataFrame over ``table`` (nothing is read until an action runs)."""
        return self.spark.table(render(table, SPARK))

    def frame_view(self, frame: Any) -> exp.Table | None:
        """``frame`` as a temporary view (replaced on the next model's result of the same number,
        never read twice); None when it is not a DataFrame of this engine's session."""
        if not is_dataframe(frame) or not _same_session(frame, self.spark):
            return None
        name = f"{FRAME_VIEW}{next(_numbers)}"
        frame.createOrReplaceTempView(name)
        return exp.to_table(name)


def is_dataframe(value: Any) -> bool:
    """A pyspark DataFrame, classic or Spark Connect (named by type: pyspark is imported lazily)."""
    kind = type(value)
    return kind.__module__.partition(".")[0] == "pyspark" and kind.__name__ == "DataFrame"


def _same_session(frame: Any, spark: Any) -> bool:
    session = getattr(frame, "sparkSession", None)
    return session is spark or (
        session is not None and getattr(session, "_jsparkSession", 0) is getattr(spark, "_jsparkSession", 1)
    )
