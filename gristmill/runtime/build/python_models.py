"""Run a Python model: hand its function the tables it reads, in the form each parameter asks for,
and stage what it returns, so the executor materializes it like a SQL model's query.

Only the engine protocol and its capabilities are used. Inputs and results travel as Arrow through
``ArrowViews`` (``read_arrow``, then ``stage``). A relation (the default form) comes from an
engine with ``NativeRelations`` (DuckDB): it is lazy, what the function builds on it runs in the
engine, and a relation it returns is staged in place, so rows never cross Python; on another
engine the rows are read as Arrow into the registry's fallback engine (DuckDB in memory, private
to this model) and the relation is that engine's. Arrow, polars and pandas inputs are read whole;
results in those forms are staged as record batches. Spark DataFrames (and the SparkSession) come
only from an engine with ``SparkDataFrames``: lazy on the cluster, and a DataFrame returned is
staged by the executors, never collected to the driver."""

from __future__ import annotations

import importlib
import itertools
from collections.abc import Callable
from typing import Any

import pyarrow as pa
from sqlglot import exp

from gristmill.engines.base import (
    ArrowViews,
    Engine,
    NativeRelations,
    SparkDataFrames,
    require_arrow_views,
)
from gristmill.engines.registry import fallback_engine
from gristmill.errors import EngineError, ProjectError
from gristmill.project.python_models import (
    Parameter,
    PythonModel,
    check_reads,
    load_function,
    python_model_fingerprint,
)
from gristmill.project.specs import ModelSpec
from gristmill.runtime.run.stopping import user_code

__all__ = ["check_reads", "python_model_fingerprint", "run_python_model"]

ACCEPTED_RESULTS = (
    "a pyarrow Table, RecordBatch or RecordBatchReader, a polars DataFrame or LazyFrame, "
    "a pandas DataFrame, a DuckDB relation, or a Spark DataFrame (on a spark engine)"
)
_LIBRARIES = {"polars": "polars", "polars_lazy": "polars", "pandas": "pandas"}


def run_python_model(engine: Engine, model: ModelSpec, physical: Callable[[str], exp.Table]) -> exp.Query:
    """Call the model's function on its upstream tables (``physical`` names each asset's table) and
    return a query over the staged result, to be written like a SQL model's."""
    views = require_arrow_views(engine, "a Python model (its inputs and result travel as Arrow)")
    found = load_function(model)
    parameters = found.parameters(model.reads)
    inputs = _Inputs(engine, views, found)
    try:
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for parameter in parameters:
            value = inputs.read(parameter, physical(parameter.asset) if parameter.asset else None)
            if parameter.positional:
                args.append(value)
            else:
                kwargs[parameter.name] = value
        try:
            # A cancel or a timeout raises StepStopped in here (a BaseException: not caught below).
            with found.on_path(), user_code():
                result = found.function(*args, **kwargs)
        except Exception as err:
            raise found.failure(err, f"{found.name}() failed") from None
        return exp.select("*").from_(_stage(engine, found, result))
    finally:
        inputs.close()


class _Inputs:
    """Upstream tables in the form a parameter asks for."""

    def __init__(self, engine: Engine, views: ArrowViews, found: PythonModel) -> None:
        self.engine = engine
        self.views = views
        self.found = found
        self._private: Engine | None = None  # the fallback engine, made when first needed
        self._views = itertools.count()

    def read(self, parameter: Parameter, table: exp.Table | None) -> Any:
        if parameter.form in ("spark", "spark_session"):
            return self._spark(parameter, table)
        assert table is not None  # every other form receives a table
        try:
            if parameter.form == "relation":
                return self._relation(table)
            arrow = self.views.read_arrow(table).read_all()
        except EngineError as err:
            raise ProjectError(
                f'{self.found.name}(): reading {parameter.asset} for "{parameter.name}" failed: '
                + err.message,
                location=self.found.where("reads"),
                hint=f"build it first: gristmill run -s +{parameter.asset}",
            ) from None
        if parameter.form == "arrow":
            return arrow
        library = _library(_LIBRARIES[parameter.form], parameter, self.found)
        if parameter.form == "pandas":
            return arrow.to_pandas()
        frame = library.from_arrow(arrow)
        return frame.lazy() if parameter.form == "polars_lazy" else frame

    def _spark(self, parameter: Parameter, table: exp.Table | None) -> Any:
        """The engine's session, or a lazy DataFrame over ``table``: only a Spark engine has them."""
        if not isinstance(self.engine, SparkDataFrames):
            what = "the SparkSession" if table is None else "a Spark DataFrame"
            raise ProjectError(
                f'{self.found.name}(): parameter "{parameter.name}" asks for {what}, which only a '
                f"spark engine has; this target's engine is {self.engine.kind}",
                location=self.found.where(),
                hint="run it on a spark target (--target), or annotate the parameter pyarrow.Table "
                "(any engine)",
            )
        if table is None:
            return self.engine.spark
        return self.engine.dataframe(table)

    def _relation(self, table: exp.Table) -> Any:
        if isinstance(self.engine, NativeRelations):
            return self.engine.relation(table)
        # Another engine: the rows come over as Arrow into a private fallback engine, where
        # every input of this model lives, so relations over them can be joined.
        if self._private is None:
            self._private = fallback_engine()
        private = self._private
        assert isinstance(private, NativeRelations) and isinstance(private, ArrowViews)
        rows = self.views.read_arrow(table).read_all()
        return private.relation(private.register(f"_gristmill_input_{next(self._views)}", rows))

    def close(self) -> None:
        if self._private is not None:
            self._private.close()


def _library(name: str, parameter: Parameter, found: PythonModel) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ProjectError(
            f'{found.name}(): parameter "{parameter.name}" asks for a {name} data frame, '
            f"but {name} is not installed",
            location=found.where(),
            hint=f"pip install {name}, or annotate the parameter with another form",
        ) from None


def _stage(engine: Engine, found: PythonModel, result: Any) -> exp.Table:
    what = _described(result)
    try:
        if isinstance(engine, SparkDataFrames):
            staged = engine.stage_dataframe(result)
            if staged is not None:  # a DataFrame: written by the executors, never collected
                return staged
        elif _is_spark_frame(result):
            raise ProjectError(
                f"{found.name}() returned a Spark DataFrame, but this target's engine is {engine.kind}",
                location=found.where(),
                hint="run it on a spark target, or return a pyarrow Table (any engine)",
            )
        if isinstance(engine, NativeRelations):
            staged = engine.stage_relation(result)
            if staged is not None:  # one of the engine's own relations, staged in place
                return staged
        try:
            reader = _arrow(result)
        except Exception as err:
            raise found.failure(err, f"{found.name}() returned {what}, which Arrow cannot hold") from None
        if reader is None:
            raise ProjectError(
                f"{found.name}() returned {what}, not a table",
                location=found.where(),
                hint=("did the function forget to return? " if result is None else "")
                + f"return {ACCEPTED_RESULTS}",
            )
        return engine.stage(reader)
    except EngineError as err:
        detail = err.message.split("\n\n", 1)[0]  # not the staging statement DuckDB quotes
        raise ProjectError(
            f"{found.name}() returned {what}, which failed when run: {detail}", location=found.where()
        ) from None


def _arrow(result: Any) -> pa.RecordBatchReader | None:
    """The result as record batches (columnar conversions only), or None for anything else."""
    if isinstance(result, pa.RecordBatchReader):
        return result
    if isinstance(result, pa.Table):
        return result.to_reader()
    if isinstance(result, pa.RecordBatch):
        return pa.Table.from_batches([result]).to_reader()
    package, name = type(result).__module__.partition(".")[0], type(result).__name__
    if package == "polars" and name in ("DataFrame", "LazyFrame"):
        frame = result.collect() if name == "LazyFrame" else result
        return frame.to_arrow().to_reader()
    if package == "pandas" and name == "DataFrame":
        keep = any(level is not None for level in result.index.names)  # a named index is data
        table = pa.Table.from_pandas(result, preserve_index=keep)
        return table.replace_schema_metadata(None).to_reader()
    # Duck-typed on purpose: anything that exports an Arrow C stream (a DuckDB relation the
    # engine cannot stage in place, a polars or DataFusion frame...) streams in as batches.
    if hasattr(result, "__arrow_c_stream__") and not isinstance(result, pa.Array | pa.ChunkedArray):
        return pa.RecordBatchReader.from_stream(result)
    return None


def _is_spark_frame(result: Any) -> bool:
    """Named by its type, not checked with isinstance: this module imports no engine library."""
    kind = type(result)
    return kind.__module__.partition(".")[0] == "pyspark" and kind.__name__ == "DataFrame"


def _described(result: Any) -> str:
    if result is None:
        return "None"
    kind = type(result)
    package = kind.__module__.partition(".")[0]
    if package in ("builtins", "_duckdb", "duckdb"):
        # Named by its type, not checked with isinstance: this module imports no engine library.
        return "a DuckDB relation" if kind.__name__ == "DuckDBPyRelation" else kind.__name__
    if _is_spark_frame(result):
        return "a Spark DataFrame"
    return f"{'pyarrow' if package == 'pyarrow' else package}.{kind.__name__}"
