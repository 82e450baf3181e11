"""Bad project input gets one clear message naming file, line (and column) and what to do."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gristmill.errors import ConfigError, CycleError, GristmillError, ProjectError, SQLError
from gristmill.workspace import Workspace

SOURCE = """
kind: files
path: data/*.csv
tables:
  orders: {}
"""
ORDERS_CSV = "order_id,customer_id,amount\n1,10,5.5\n2,11,7.25\n"


def error_of(root: Path, *, plan: bool = False) -> GristmillError:
    with pytest.raises(GristmillError) as caught:
        workspace = Workspace(root)
        if plan:
            workspace.plan()
    return caught.value


def test_malformed_toml_names_line_and_column(make_project: Callable[..., Path]) -> None:
    root = make_project({}, toml='name = "t"\n[storage\ncatalog = "x"\n')
    err = error_of(root)
    assert isinstance(err, ConfigError)
    assert str(err).startswith("gristmill.toml:2:")
    assert "invalid TOML" in str(err)


def test_unknown_toml_key_suggests_the_right_one(make_project: Callable[..., Path]) -> None:
    root = make_project({}, toml='name = "t"\n\n[engine]\nkind = "duckdb"\nthreds = 2\n')
    err = error_of(root)
    assert str(err).startswith('gristmill.toml:5: unknown key "engine.threds"')
    assert err.hint == 'did you mean "threads"?'


def test_wrong_toml_type_says_what_was_expected(make_project: Callable[..., Path]) -> None:
    root = make_project({}, toml='name = "t"\n[engine]\nthreads = "many"\n')
    err = error_of(root)
    assert str(err).startswith("gristmill.toml:3: engine.threads:")
    assert "'many'" in str(err)


def test_missing_project_file_says_how_to_create_one(tmp_path: Path) -> None:
    err = error_of(tmp_path)
    assert "no gristmill.toml" in str(err)
    assert "gristmill init" in (err.hint or "")


def test_unknown_source_option_names_the_line(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {"sources/shop.yml": "kind: files\npath: data/x.csv\ntables:\n  orders:\n    formt: csv\n"}
    )
    err = error_of(root, plan=True)
    assert str(err).startswith('sources/shop.yml:5: unknown option "formt"')
    assert err.hint == 'did you mean "format"?'


def test_unknown_source_kind(make_project: Callable[..., Path]) -> None:
    root = make_project({"sources/shop.yml": "kind: sqllite\npath: x.db\ntables: [a]\n"})
    err = error_of(root, plan=True)
    assert str(err).startswith('sources/shop.yml:1: unknown source kind "sqllite"')
    assert err.hint == 'did you mean "sqlite"?'


def test_missing_source_file_names_the_source_and_path(make_project: Callable[..., Path]) -> None:
    root = make_project({"sources/shop.yml": SOURCE})
    err = error_of(root, plan=True)
    assert "sources/shop.yml (orders): no file matches data/*.csv" in str(err)


def test_invalid_yaml_points_at_the_line(make_project: Callable[..., Path]) -> None:
    root = make_project({"sources/shop.yml": "kind: files\ntables:\n  orders: {path: [x\n"})
    err = error_of(root)
    assert str(err).startswith("sources/shop.yml:4:")
    assert "invalid YAML" in str(err)


def test_sql_syntax_error_names_file_line_and_column(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "sources/shop.yml": SOURCE,
            "data/orders.csv": ORDERS_CSV,
            "models/staging/orders.sql": "-- kind: view\nselect order_id,\n  amount +* 2\n"
            "from raw.shop__orders\n",
        }
    )
    # SQL the parser cannot read is an error when the project loads, at the line and column in
    # the model file (its header lines counted) ...
    err = error_of(root)
    assert isinstance(err, SQLError)
    assert str(err).startswith("models/staging/orders.sql:3:") and "cannot parse" in str(err)
    assert "passthrough: true" in (err.hint or "")
    # ... unless the model opts into pass-through: then it runs as written, with a warning, and
    # the engine's own error names the file when it rejects it too.
    model = root / "models/staging/orders.sql"
    model.write_text(model.read_text().replace("-- kind: view\n", "-- kind: view\n-- passthrough: true\n"))
    workspace = Workspace(root)
    [warning] = workspace.graph.warnings
    assert warning.startswith("models/staging/orders.sql:4:") and "cannot parse" in warning
    result = workspace.run()
    [failed] = [s for s in result.steps if s.status == "failed"]
    assert failed.asset == "staging.orders"
    assert failed.error is not None and failed.error.startswith("models/staging/orders.sql")
    assert "+*" in failed.error and "could not be parsed" in failed.error


def test_unknown_column_is_caught_before_anything_runs(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "sources/shop.yml": SOURCE,
            "data/orders.csv": ORDERS_CSV,
            "models/staging/orders.sql": "select\n    order_id,\n    o.amout\nfrom raw.shop__orders o\n",
        }
    )
    err = error_of(root, plan=True)
    assert str(err) == (
        'models/staging/orders.sql:3:5: column "amout" does not exist in raw.shop__orders\n'
        '  hint: did you mean "amount"?'
    )
    assert not (root / ".gristmill" / "lake").exists() or not any(
        (root / ".gristmill" / "lake").rglob("*.parquet")
    )


def test_unknown_table_suggests_a_known_one(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "sources/shop.yml": SOURCE,
            "data/orders.csv": ORDERS_CSV,
            "models/staging/orders.sql": "select *\nfrom raw.shop__order\n",
        }
    )
    err = error_of(root)
    assert str(err).startswith('models/staging/orders.sql:2:6: unknown table "raw.shop__order"')
    assert err.hint == 'did you mean "raw.shop__orders"?'


def test_dependency_cycle_names_the_loop_and_files(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "models/marts/a.sql": "select * from marts.b\n",
            "models/marts/b.sql": "select * from marts.c\n",
            "models/marts/c.sql": "select * from marts.a\n",
        }
    )
    err = error_of(root)
    assert isinstance(err, CycleError)
    assert "marts.a -> marts.b -> marts.c -> marts.a" in str(err) or "loop" in str(err)
    assert "models/marts/a.sql" in str(err)


def test_unknown_model_header_key(make_project: Callable[..., Path]) -> None:
    root = make_project({"models/marts/a.sql": "-- kind: table\n-- tagz: [x]\nselect 1 as x\n"})
    err = error_of(root)
    assert str(err).startswith('models/marts/a.sql:2: unknown key "tagz"')
    assert err.hint == 'did you mean "tags"?'


def test_a_prose_comment_is_not_a_header(make_project: Callable[..., Path]) -> None:
    root = make_project({"models/marts/a.sql": "-- Note: this model is simple.\nselect 1 as x\n"})
    assert Workspace(root).project.models["marts.a"].kind == "table"


def test_model_outside_a_schema_folder(make_project: Callable[..., Path]) -> None:
    root = make_project({"models/a.sql": "select 1 as x\n"})
    err = error_of(root)
    assert isinstance(err, ProjectError)
    assert "models/a.sql" in str(err) and "schema folder" in str(err)


def test_check_on_a_missing_column(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "sources/shop.yml": SOURCE,
            "data/orders.csv": ORDERS_CSV,
            "checks/orders.yml": "raw.shop__orders:\n  - not_null: order_id\n  - unique: ordr_id\n",
        }
    )
    err = error_of(root, plan=True)
    assert str(err).startswith('checks/orders.yml:3: unique(ordr_id) on raw.shop__orders: column "ordr_id"')
    assert err.hint == 'did you mean "order_id"?'


def test_unknown_check_type(make_project: Callable[..., Path]) -> None:
    root = make_project({"checks/x.yml": "raw.a:\n  - not_nul: id\n"})
    err = error_of(root)
    assert str(err).startswith('checks/x.yml:2: unknown check "not_nul"')
    assert err.hint == 'did you mean "not_null"?'
