"""Running Python models on a real DuckDB engine: every parameter form and every result form gives
the same rows; a failing function or a wrong result names file:line, without a traceback."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from sqlglot import exp

from gristmill.engines import Relation, open_engine
from gristmill.engines.duckdb import DuckDBEngine
from gristmill.errors import ProjectError, Transient, TransientModelError
from gristmill.project import load_project
from gristmill.runtime.build.python_models import run_python_model

CUSTOMER = pa.table({"customer_id": [1, 2, 3], "name": ["Ada", "Bo", "Cy"]})
INVOICE = pa.table({"customer_id": [1, 1, 2, 9], "total": [1.5, 2.5, 4.0, 100.0]})
LTV = [{"customer_id": 1, "name": "Ada", "ltv": 4.0}, {"customer_id": 2, "name": "Bo", "ltv": 4.0}]


class Models:
    """A project with staging.customer and staging.invoice built, and models written on demand."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.engine = open_engine(load_project(root).settings, root)
        assert isinstance(self.engine, DuckDBEngine)
        self.engine.write_arrow(Relation("staging", "customer"), CUSTOMER.to_reader())
        self.engine.write_arrow(Relation("staging", "invoice"), INVOICE.to_reader())

    def write(self, source: str, name: str = "customer_ltv") -> str:
        path = self.root / "models" / "marts" / f"{name}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).lstrip("\n"))
        return f"marts.{name}"

    def build(self, source: str, *, engine: Any = None) -> list[dict[str, Any]]:
        asset = self.write(source)
        engine = engine or self.engine
        spec = load_project(self.root).models[asset]
        with self.engine.transaction():
            query = run_python_model(engine, spec, lambda a: engine.table(Relation.of(a)))
            self.engine.create_table_as(Relation.of(asset), query)
        return self.engine.query(f"select * from {asset} order by all").to_pylist()

    def error(self, source: str) -> ProjectError:
        with pytest.raises(ProjectError) as caught:
            self.build(source)
        assert "Traceback" not in str(caught.value)
        return caught.value


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Models]:
    """One project and engine for the module (opening a lake takes a while); each test rewrites the
    model file."""
    root = tmp_path_factory.mktemp("python_models")
    (root / "gristmill.toml").write_text('name = "t"\n')
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRISTMILL_EXTENSION_REPO", str(tmp_path_factory.getbasetemp() / "extensions"))
        made = Models(root)
        yield made
    made.engine.close()


HEADER = """
from __future__ import annotations

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from gristmill import model
"""
READS = '@model(reads=["staging.customer", "staging.invoice"])'


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            """
            def customer_ltv(customer, invoice):
                totals = invoice.aggregate("customer_id, sum(total) as ltv", "customer_id")
                return customer.join(totals, "customer_id").project("customer_id, name, ltv")
            """,
            id="duckdb-relation",
        ),
        pytest.param(
            """
            def customer_ltv(customer: pa.Table, invoice: pa.Table):
                totals = invoice.group_by("customer_id").aggregate([("total", "sum")])
                totals = totals.rename_columns(["customer_id", "ltv"])
                return customer.join(totals, "customer_id", join_type="inner")
            """,
            id="arrow",
        ),
        pytest.param(
            """
            def customer_ltv(customer: pl.DataFrame, invoice: pl.DataFrame):
                totals = invoice.group_by("customer_id").agg(pl.col("total").sum().alias("ltv"))
                return customer.join(totals, on="customer_id")
            """,
            id="polars",
        ),
        pytest.param(
            """
            def customer_ltv(customer: pl.LazyFrame, invoice: pl.LazyFrame):
                totals = invoice.group_by("customer_id").agg(pl.col("total").sum().alias("ltv"))
                return customer.join(totals, on="customer_id")
            """,
            id="polars-lazy",
        ),
        pytest.param(
            """
            def customer_ltv(customer: pd.DataFrame, invoice: pd.DataFrame):
                totals = invoice.groupby("customer_id")["total"].sum().rename("ltv")
                return customer.set_index("customer_id").join(totals, how="inner")
            """,
            id="pandas-named-index-is-a-column",
        ),
        pytest.param(
            """
            def customer_ltv(invoice: pd.DataFrame, customer):  # bound by name, in any order
                totals = invoice.groupby("customer_id", as_index=False)["total"].sum()
                sql = "select customer_id, name, total as ltv from c join totals using (customer_id)"
                return customer.query("c", sql)  # DuckDB finds the data frame by its name
            """,
            id="mixed-forms",
        ),
    ],
)
def test_every_parameter_form_gives_the_same_rows(models: Models, body: str) -> None:
    rows = models.build(HEADER + READS + textwrap.dedent(body))
    assert [{k: r[k] for k in ("customer_id", "name", "ltv")} for r in rows] == LTV


RESULTS = {
    "arrow-table": "return pa.table({'n': [1, 2]})",
    "record-batch": "return pa.record_batch({'n': [1, 2]})",
    "record-batch-reader": "return pa.table({'n': [1, 2]}).to_reader()",
    "polars": "return pl.DataFrame({'n': [1, 2]})",
    "polars-lazy": "return pl.DataFrame({'n': [1, 2]}).lazy()",
    "pandas": "return pd.DataFrame({'n': [1, 2]})",
    "engine-relation": "return customer.filter('customer_id <= 2').project('customer_id as n')",
    "foreign-relation": "return duckdb.sql('select range + 1 as n from range(2)')",
    "arrow-stream-object": "return Stream()",
}


@pytest.mark.parametrize("result", RESULTS.values(), ids=RESULTS.keys())
def test_every_result_form_is_staged(models: Models, result: str) -> None:
    source = HEADER + textwrap.dedent(f"""
        class Stream:
            def __arrow_c_stream__(self, requested_schema=None):
                return pa.table({{"n": [1, 2]}}).__arrow_c_stream__(requested_schema)

        @model(reads=["staging.customer"])
        def customer_ltv(customer):
            {result}
    """)
    assert models.build(source) == [{"n": 1}, {"n": 2}]


def test_a_relation_result_stays_in_the_engine(models: Models) -> None:
    asset = models.write(HEADER + READS + "\ndef customer_ltv(customer, invoice):\n    return invoice\n")
    spec = load_project(models.root).models[asset]
    with models.engine.transaction():
        query = run_python_model(models.engine, spec, lambda a: models.engine.table(Relation.of(a)))
        staged = query.args["from_"].this
        assert isinstance(staged, exp.Table) and staged.catalog == "temp"
        assert models.engine.query(query).num_rows == 4
    views = models.engine.query("select view_name from duckdb_views() where view_name like '_gristmill%'")
    assert views.num_rows == 0  # the view naming the relation is gone again


def test_another_engine_hands_relations_over_arrow(models: Models) -> None:
    class ArrowOnly:
        """An engine that offers only the protocol, not DuckDB relations."""

        def __init__(self, engine: Any) -> None:
            self._engine = engine

        def __getattr__(self, name: str) -> Any:
            if name in ("relation", "stage_relation"):
                raise AttributeError(name)
            return getattr(self._engine, name)

    body = """
        def customer_ltv(customer, invoice):
            totals = invoice.aggregate("customer_id, sum(total) as ltv", "customer_id")
            return customer.join(totals, "customer_id").project("customer_id, name, ltv")
    """
    assert models.build(HEADER + READS + textwrap.dedent(body), engine=ArrowOnly(models.engine)) == LTV


def test_an_exception_names_the_raising_line(models: Models) -> None:
    err = models.error(
        HEADER
        + READS
        + textwrap.dedent("""
            def customer_ltv(customer, invoice: pa.Table):
                ratio = 1 / 0
                return invoice
        """)
    )
    assert (
        err.message
        == "models/marts/customer_ltv.py:12: customer_ltv() failed: ZeroDivisionError: division by zero"
    )


def test_an_exception_inside_a_library_names_the_calling_line(models: Models) -> None:
    err = models.error(
        HEADER
        + READS
        + textwrap.dedent("""
            def customer_ltv(customer: pl.DataFrame, invoice):

                return customer.select(pl.col("no_such_column"))
        """)
    )
    assert err.message.startswith(
        "models/marts/customer_ltv.py:13: customer_ltv() failed: ColumnNotFoundError"
    )


def test_a_wrong_result_says_what_it_was_and_what_is_accepted(models: Models) -> None:
    err = models.error(HEADER + READS + "\ndef customer_ltv(customer, invoice):\n    return {'n': 1}\n")
    assert err.message == "models/marts/customer_ltv.py:10: customer_ltv() returned dict, not a table"
    assert "pyarrow Table" in (err.hint or "") and "polars DataFrame" in (err.hint or "")
    err = models.error(HEADER + READS + "\ndef customer_ltv(customer, invoice):\n    customer.limit(1)\n")
    assert err.message == "models/marts/customer_ltv.py:10: customer_ltv() returned None, not a table"
    assert (err.hint or "").startswith("did the function forget to return?")


def test_a_relation_that_fails_when_run_names_the_model(models: Models) -> None:
    err = models.error(
        HEADER
        + READS
        + "\ndef customer_ltv(customer, invoice):\n    return customer.project('name::integer')\n"
    )
    assert err.message.startswith(
        "models/marts/customer_ltv.py:10: customer_ltv() returned a DuckDB relation, which failed when run: "
        "Conversion Error:"
    )
    assert "CREATE" not in err.message  # not the statement that staged it


def test_reading_a_table_not_built_names_the_reads_line(models: Models) -> None:
    err = models.error(
        HEADER
        + '@model(\n    reads=["staging.nothing"],\n)\n'
        + "def customer_ltv(nothing: pa.Table):\n    return nothing\n"
    )
    assert err.message.startswith(
        'models/marts/customer_ltv.py:11: customer_ltv(): reading staging.nothing for "nothing" failed:'
    )
    assert err.hint == "build it first: gristmill run -s +staging.nothing"


def test_polars_and_pandas_load_only_when_a_model_asks(models: Models) -> None:
    models.write(
        HEADER.replace("import pandas as pd\nimport polars as pl\n", "")
        + READS
        + """
def customer_ltv(customer, invoice: pa.Table):
    assert invoice.num_rows == 4
    return customer
"""
    )
    code = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from gristmill.engines import Relation, open_engine
        from gristmill.project import load_project
        from gristmill.runtime.build.python_models import run_python_model

        root = Path({str(models.root)!r})
        project = load_project(root)
        engine = open_engine(project.settings, root, read_only=True)
        spec = project.models["marts.customer_ltv"]
        query = run_python_model(engine, spec, lambda a: engine.table(Relation.of(a)))
        assert engine.query(query).num_rows == 3
        print(sorted(name for name in ("polars", "pandas") if name in sys.modules))
    """)
    models.engine.close()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    models.engine = open_engine(load_project(models.root).settings, models.root)


@pytest.mark.parametrize(
    "raised",
    [
        'ConnectionError("connection reset by peer")',
        'TimeoutError("read timed out")',
        'TransientSourceError("the API is busy")',
    ],
)
def test_a_transient_exception_stays_transient_and_names_the_raising_line(
    models: Models, raised: str
) -> None:
    """A dropped connection inside a model is retried by the runner (issue 17 item 5): the error
    keeps the Transient marker and points at the line that raised, not at the decorator."""
    with pytest.raises(TransientModelError) as caught:
        models.build(
            HEADER
            + "from gristmill.errors import TransientSourceError\n"
            + READS
            + textwrap.dedent(f"""
                def customer_ltv(customer, invoice):

                    raise {raised}
            """)
        )
    err = caught.value
    assert isinstance(err, Transient)
    assert err.message.startswith("models/marts/customer_ltv.py:14: customer_ltv() failed: "), err.message
    assert raised.split("(")[1].strip('")') in err.message


def test_a_gristmill_error_from_the_model_names_the_raising_line(models: Models) -> None:
    err = models.error(
        HEADER
        + "from gristmill.errors import SourceError\n"
        + READS
        + "\ndef customer_ltv(customer, invoice):\n\n    raise SourceError('the ledger is closed')\n"
    )
    assert err.message == "models/marts/customer_ltv.py:14: customer_ltv() failed: the ledger is closed"
    assert not isinstance(err, Transient)


def test_a_spark_dataframe_model_on_duckdb_says_it_needs_a_spark_engine(models: Models) -> None:
    """The annotations alone (no JVM is started): a DataFrame or SparkSession parameter asks for
    what only a spark engine has."""
    for signature in (
        "customer: DataFrame, invoice: pa.Table",
        "spark: SparkSession, customer: pa.Table, invoice: pa.Table",
    ):
        error = models.error(
            HEADER
            + "from pyspark.sql import DataFrame, SparkSession\n"
            + READS
            + f"\ndef customer_ltv({signature}):\n    return customer\n"
        )
        assert error.location is not None and error.location.startswith("models/marts/customer_ltv.py:")
        assert "only a spark engine has" in error.message and "duckdb" in error.message
