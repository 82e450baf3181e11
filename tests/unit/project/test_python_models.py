"""Loading Python models: the spec a ``@model`` file becomes, its errors (file:line, no traceback),
and the fingerprint that ignores comments and formatting."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from gristmill import model
from gristmill.authoring.models import marked
from gristmill.errors import ConfigError, ProjectError
from gristmill.project import load_project
from gristmill.project.python_models import check_reads, load_function, python_model_fingerprint

LTV = '''
import pyarrow as pa

from gristmill import model


@model(
    reads=["staging.customer", "staging.invoice"],
    tags=["finance"],
    key="customer_id",
    checks=[{"not_null": "customer_id"}, {"unique": "customer_id"}],
)
def customer_ltv(customer, invoice: pa.Table):
    """Lifetime value per customer.

    More prose."""
    return customer
'''


def error_of(root: Path) -> ProjectError:
    with pytest.raises(ProjectError) as caught:
        load_project(root)
    assert "Traceback" not in str(caught.value)
    return caught.value


def test_the_decorator_only_records_options() -> None:
    def f(a: object) -> object:
        return a

    assert model(reads="staging.a", kind="table")(f) is f
    mark = marked(f)
    assert mark is not None and mark.reads == ("staging.a",) and dict(mark.options) == {"kind": "table"}
    assert marked(model(lambda: None)) is not None
    assert marked(print) is None


def test_a_decorated_function_becomes_a_model_spec(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {"models/marts/customer_ltv.py": LTV},
        toml='name = "t"\n[models.marts]\nkind = "view"\ntags = ["marts"]\n',
    )
    project = load_project(root)
    spec = project.models["marts.customer_ltv"]
    assert spec.language == "python"
    assert spec.function == "customer_ltv"
    assert spec.reads == ("staging.customer", "staging.invoice")
    assert spec.sql == ""
    assert spec.file == "models/marts/customer_ltv.py" and spec.sql_line == 6
    assert spec.kind == "table"  # the folder's default is view, which a Python model cannot be
    assert spec.tags == ("marts", "finance")
    assert spec.key == ("customer_id",)
    assert spec.description == "Lifetime value per customer."
    assert [(c.name, c.location) for c in project.checks] == [
        ("not_null(customer_id)", "models/marts/customer_ltv.py:10"),
        ("unique(customer_id)", "models/marts/customer_ltv.py:10"),
    ]


def test_sql_and_python_models_load_side_by_side(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "models/staging/customer.sql": "select 1 as customer_id\n",
            "models/staging/invoice.sql": "select 1 as customer_id, 2.0 as total\n",
            "models/marts/customer_ltv.py": LTV,
            "models/marts/_shared.py": "X = 1\n",  # a helper, not a model
        }
    )
    project = load_project(root)
    assert set(project.models) == {"staging.customer", "staging.invoice", "marts.customer_ltv"}
    assert project.models["staging.customer"].language == "sql"


def test_a_python_and_a_sql_model_of_one_name_collide(make_project: Callable[..., Path]) -> None:
    root = make_project({"models/marts/customer_ltv.py": LTV, "models/marts/customer_ltv.sql": "select 1\n"})
    assert "two models are both named marts.customer_ltv" in str(error_of(root))


def test_a_syntax_error_names_file_and_line(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {"models/marts/x.py": "from gristmill import model\n\n@model()\ndef x(:\n    return 1\n"}
    )
    err = error_of(root)
    assert str(err).startswith("models/marts/x.py:4: invalid Python: ")


def test_an_import_error_names_the_import_line(make_project: Callable[..., Path]) -> None:
    root = make_project({"models/marts/x.py": "from gristmill import model\nimport no_such_module_here\n"})
    err = error_of(root)
    assert str(err) == (
        "models/marts/x.py:2: importing the model failed: ModuleNotFoundError: "
        "No module named 'no_such_module_here'"
    )


def test_project_modules_import_while_loading_only(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "lib/__init__.py": "",
            "lib/money.py": "RATE = 2\n",
            "lib/broken.py": "VALUE = 1\nraise RuntimeError('bad helper')\n",
            "models/marts/x.py": """
                from gristmill import model
                from lib.money import RATE

                @model(reads=["staging.a"])
                def x(a):
                    return a
            """,
        }
    )
    before = list(sys.path)
    assert load_project(root).models["marts.x"].reads == ("staging.a",)
    assert sys.path == before
    (root / "models/marts/x.py").write_text("from gristmill import model\nimport lib.broken\n")
    err = error_of(root)
    assert str(err) == "lib/broken.py:2: importing the model failed: RuntimeError: bad helper"
    assert sys.path == before


def test_a_file_without_a_decorated_function_is_an_error(make_project: Callable[..., Path]) -> None:
    root = make_project({"models/marts/x.py": "def x(a):\n    return a\n"})
    err = error_of(root)
    assert err.message == "models/marts/x.py: no @model function in this file"
    assert "from gristmill import model" in (err.hint or "")


def test_two_decorated_functions_are_an_error(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "models/marts/x.py": """
                from gristmill import model

                @model()
                def first():
                    return None

                @model()
                def second():
                    return None
            """
        }
    )
    err = error_of(root)
    assert str(err).startswith("models/marts/x.py:7: one Python model per file, but 2 functions")
    assert "first() (line 3)" in str(err) and "second() (line 7)" in str(err)


def test_a_read_without_a_schema_says_how_to_name_it(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "models/marts/x.py": 'from gristmill import model\n\n@model(\n    reads=["customer"],\n)\n'
            "def x(c):\n    return c\n"
        }
    )
    err = error_of(root)
    assert isinstance(err, ConfigError)
    assert str(err).startswith('models/marts/x.py:4: reads: "customer" needs its schema')
    assert '"staging.customer"' in (err.hint or "")


def test_options_are_validated_like_a_sql_header(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "models/marts/x.py": 'from gristmill import model\n\n@model(\n    kindd="table",\n)\ndef x():\n'
            "    return None\n"
        }
    )
    err = error_of(root)
    assert str(err) == 'models/marts/x.py:4: unknown key "kindd"\n  hint: did you mean "kind"?'

    python = make_project(
        {"models/marts/x.py": 'from gristmill import model\n@model(kind="tabel")\ndef x(): ...\n'}
    )
    from_python = str(error_of(python)).split(": ", 1)[1]
    (root / "models/marts/x.py").unlink()
    sql = make_project({"models/marts/y.sql": "-- kind: tabel\nselect 1\n"})
    from_sql = str(error_of(sql)).split(": ", 1)[1]
    assert from_python == from_sql
    assert from_python.startswith("kind: ")


def test_kind_options_are_checked_against_the_kind(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {"models/marts/x.py": 'from gristmill import model\n@model(\n    kind="snapshot",\n)\ndef x(): ...\n'}
    )
    assert str(error_of(root)).startswith("models/marts/x.py:3: kind: snapshot needs key")
    (root / "models/marts/x.py").write_text(
        'from gristmill import model\n@model(kind="view")\ndef x(): ...\n'
    )
    assert "a Python model cannot be a view" in str(error_of(root))


def test_parameters_must_match_reads(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "models/marts/x.py": 'from gristmill import model\n@model(reads=["s.a", "s.b"])\n'
            "def x(a):\n    ...\n"
        }
    )
    err = error_of(root)
    assert str(err).startswith("models/marts/x.py:2: x() takes 1 parameter but reads 2 assets")
    assert "def x(a, b)" in (err.hint or "")
    (root / "models/marts/x.py").write_text(
        'from gristmill import model\n@model(reads=["s.a", "s.b"])\ndef x(b, c):\n    ...\n'
    )
    assert 'parameter "b" would receive s.a, not s.b' in str(error_of(root))
    (root / "models/marts/x.py").write_text(
        'from gristmill import model\n@model(reads=["s.a"])\ndef x(a: int):\n    ...\n'
    )
    err = error_of(root)
    assert 'parameter "a" is annotated builtins.int' in str(err)
    assert "pyarrow.Table" in (err.hint or "")


def test_parameters_bind_by_name_else_in_order(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "models/marts/x.py": """
                from __future__ import annotations

                import polars as pl
                from gristmill import model

                @model(reads=["s.a", "s.b", "t.b"])
                def x(t__b: pl.LazyFrame, s__b: pd.DataFrame, a: pa.Table):
                    ...
            """,
            "models/marts/y.py": """
                import duckdb
                from gristmill import model

                @model(reads=["s.a", "s.b"])
                def y(first: duckdb.DuckDBPyRelation, second, /):
                    ...
            """,
        }
    )
    project = load_project(root)
    x = load_function(project.models["marts.x"]).parameters(project.models["marts.x"].reads)
    assert [(p.name, p.asset, p.form) for p in x] == [
        ("t__b", "t.b", "polars_lazy"),
        ("s__b", "s.b", "pandas"),  # an annotation that is not importable is read as written
        ("a", "s.a", "arrow"),
    ]
    y = load_function(project.models["marts.y"]).parameters(project.models["marts.y"].reads)
    assert [(p.name, p.asset, p.form, p.positional) for p in y] == [
        ("first", "s.a", "relation", True),
        ("second", "s.b", "relation", True),
    ]


def test_an_unknown_read_names_the_reads_line(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "models/marts/x.py": 'from gristmill import model\n\n@model(\n    reads=["staging.custmer"],\n)\n'
            "def x(c):\n    return c\n"
        }
    )
    spec = load_project(root).models["marts.x"]
    check_reads(spec, {"staging.custmer", "marts.x"})  # only what is missing fails
    with pytest.raises(ProjectError) as caught:
        check_reads(spec, {"staging.customer"})
    assert str(caught.value).startswith(
        'models/marts/x.py:4: x() reads "staging.custmer", which is neither a model nor a source table'
    )
    assert caught.value.hint == 'did you mean "staging.customer"?'


def test_fingerprint_ignores_comments_and_formatting(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "lib/__init__.py": "",
            "lib/rates.py": "RATE = 2\n",
            "models/marts/x.py": """
        from gristmill import model
        from lib.rates import RATE

        @model(reads=["s.a"])
        def x(a):
            return a.project(f"v * {RATE} as v")
    """,
        }
    )
    path = root / "models/marts/x.py"

    def fingerprint() -> str:
        return python_model_fingerprint(load_project(root).models["marts.x"])

    first = fingerprint()
    assert len(first) == 64 and fingerprint() == first
    path.write_text(
        "# the model\n"
        + path.read_text().replace("def x(a):", "def x(a):  # one table\n\n").replace("(", "( ")
    )
    assert fingerprint() == first
    path.write_text(path.read_text().replace("v * ", "v + "))
    changed = fingerprint()
    assert changed != first
    (root / "lib/rates.py").write_text("RATE = 3\n")  # a project module the model uses
    assert fingerprint() != changed


def test_a_spark_session_parameter_takes_no_read(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "models/marts/m.py": """
            from pyspark.sql import DataFrame, SparkSession
            from gristmill import model

            @model(reads=["staging.a", "staging.b"])
            def m(b: DataFrame, spark: SparkSession, a: DataFrame) -> DataFrame:
                return a
            """,
            "models/staging/a.sql": "select 1 as x",
            "models/staging/b.sql": "select 2 as x",
        }
    )
    spec = load_project(root).models["marts.m"]
    found = load_function(spec).parameters(spec.reads)
    assert [(p.name, p.asset, p.form) for p in found] == [
        ("b", "staging.b", "spark"),
        ("spark", "", "spark_session"),
        ("a", "staging.a", "spark"),
    ]
