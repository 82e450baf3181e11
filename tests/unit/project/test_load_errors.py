"""Mistakes found when the project loads, before anything runs: unparseable SQL, a model that reads
itself, and misspelt keys anywhere, each at its file and line with the nearest valid key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gristmill.errors import ConfigError, CycleError, GristmillError, SQLError
from gristmill.workspace import Workspace

SOURCE = "kind: files\npath: data/orders.csv\ntables:\n  orders: {}\n"
FILES = {"sources/shop.yml": SOURCE, "data/orders.csv": "order_id,amount\n1,5.5\n2,7.25\n"}


def error_of(root: Path) -> GristmillError:
    with pytest.raises(GristmillError) as caught:
        Workspace(root).plan()
    return caught.value


def test_a_misspelt_keyword_fails_to_load_at_its_own_line_and_column(
    make_project: Callable[..., Path],
) -> None:
    model = "-- kind: table\n-- description: x\nselec order_id as x\nfrom raw.shop__orders\n"
    root = make_project({**FILES, "models/staging/bad.sql": model})
    err = error_of(root)
    assert isinstance(err, SQLError)
    # Line 3 of the file (the two header lines count), column 1: where "selec" is, not where the
    # parser gave up ("as").
    assert str(err).startswith('models/staging/bad.sql:3:1: cannot parse the SQL: "selec"')
    assert err.hint == 'did you mean "select"?'


def test_unparseable_sql_is_an_error_at_the_parsers_stop(make_project: Callable[..., Path]) -> None:
    model = "-- kind: view\nselect (order_id\n  from raw.shop__orders\n"
    root = make_project({**FILES, "models/staging/bad.sql": model})
    err = error_of(root)
    assert isinstance(err, SQLError)
    assert str(err).startswith('models/staging/bad.sql:3:3: cannot parse the SQL near "from"')
    assert "-- passthrough: true" in (err.hint or "")


def test_passthrough_runs_what_the_parser_cannot_read(make_project: Callable[..., Path]) -> None:
    # DuckDB's lambda syntax, which the postgres dialect's parser does not read.
    sql = "select order_id, list_transform([amount], lambda x: x + 1) as bumped\nfrom raw.shop__orders\n"
    root = make_project({**FILES, "models/staging/bumped.sql": "-- dialect: postgres\n" + sql})
    assert isinstance(error_of(root), SQLError)
    model = root / "models/staging/bumped.sql"
    model.write_text("-- dialect: postgres\n-- passthrough: true\n" + sql)
    workspace = Workspace(root)
    [warning] = workspace.graph.warnings
    assert warning.startswith("models/staging/bumped.sql:3:") and "runs as written" in warning
    assert workspace.graph.upstream("staging.bumped") == ("raw.shop__orders",)
    assert workspace.run().ok


def test_a_model_reading_itself_is_a_cycle_at_the_line(make_project: Callable[..., Path]) -> None:
    model = "-- kind: table\nselect o.order_id\nfrom raw.shop__orders o\n"
    model += "  join staging.orders s using (order_id)\n"
    root = make_project({**FILES, "models/staging/orders.sql": model})
    err = error_of(root)
    assert isinstance(err, CycleError)
    assert str(err).startswith("models/staging/orders.sql:4:8: staging.orders reads itself")
    assert "`this`" in (err.hint or "") and "{{ this }}" in (err.hint or "")


@pytest.mark.parametrize(
    ("table", "where", "suggestion"),
    [
        ("    incremntal: {cursor: order_id}\n", "sources/shop.yml:5", '"incremental"'),
        ("    wirte: append\n", "sources/shop.yml:5", '"write"'),
        ("    chekcs: [{not_null: order_id}]\n", "sources/shop.yml:5", '"checks"'),
        ("    recrods: x\n", "sources/shop.yml:5", '"records"'),
    ],
)
def test_a_misspelt_table_option_suggests_every_valid_key(
    make_project: Callable[..., Path], table: str, where: str, suggestion: str
) -> None:
    source = "kind: files\npath: data/orders.csv\ntables:\n  orders:\n" + table
    root = make_project({**FILES, "sources/shop.yml": source})
    err = error_of(root)
    assert isinstance(err, ConfigError)
    assert str(err).startswith(where + ": unknown option"), str(err)
    assert err.hint == f"did you mean {suggestion}?"


def test_a_misspelt_required_option_is_named_not_reported_missing(make_project: Callable[..., Path]) -> None:
    source = "kind: postgres\n# the server\nconection: postgresql://u@localhost/db\ntables: [a]\n"
    root = make_project({"sources/db.yml": source})
    err = error_of(root)
    assert str(err).splitlines()[0] == 'sources/db.yml:3: unknown option "conection"'
    assert err.hint == 'did you mean "connection"?'


def test_a_misspelt_source_key_is_named_not_reported_missing(make_project: Callable[..., Path]) -> None:
    source = "kind: files\npath: data/orders.csv\ntalbes: [orders]\n"
    root = make_project({**FILES, "sources/shop.yml": source})
    err = error_of(root)
    assert str(err).splitlines()[0] == 'sources/shop.yml:3: unknown key "talbes"'
    assert err.hint == 'did you mean "tables"?'


@pytest.mark.parametrize(
    ("toml", "start", "hint"),
    [
        # A key under a nested table, after comments and blank lines.
        (
            '# project\nname = "t"\n\n[run]\nthreads = 2\n\n# retries\n[run.retries]\nattemps = 3\n',
            'gristmill.toml:9: unknown key "run.retries.attemps"',
            'did you mean "attempts"?',
        ),
        (
            'name = "t"\n[schedules.nightly]\ncron = "0 * * * *"\nselct = ["x"]\n',
            'gristmill.toml:4: unknown key "schedules.nightly.selct"',
            'did you mean "select"?',
        ),
        ('name = "t"\nengine.thraeds = 2\n', 'gristmill.toml:2: unknown key "engine.thraeds"', None),
        ('name = "t"\n\n[modles.staging]\nkind = "view"\n', 'gristmill.toml:3: unknown key "modles"', None),
        (
            'name = "t"\n\n[models.marts]\nkind = "view"\n\n[models.mart]\nkind = "view"\n',
            "gristmill.toml:6: [models.mart] sets defaults for models/mart/",
            'did you mean "marts"?',
        ),
    ],
)
def test_toml_mistakes_name_their_line(
    make_project: Callable[..., Path], toml: str, start: str, hint: str | None
) -> None:
    root = make_project({**FILES, "models/marts/x.sql": "select 1 as x\n"}, toml=toml)
    err = error_of(root)
    assert isinstance(err, ConfigError)
    assert str(err).startswith(start), str(err)
    if hint:
        assert err.hint == hint
    else:
        assert err.hint and err.hint.startswith("did you mean")


def test_a_misspelt_nested_key_is_named_as_written(make_project: Callable[..., Path]) -> None:
    # `incremental` is a mapping or a column name: the error names the key, not pydantic's union
    # members, and counts the one mistake once.
    table = "    write: merge\n    key: order_id\n    incremental: {cursr: order_id}\n"
    source = "kind: files\npath: data/orders.csv\ntables:\n  orders:\n" + table
    root = make_project({**FILES, "sources/shop.yml": source})
    err = error_of(root)
    assert str(err).splitlines()[0] == 'sources/shop.yml:7: unknown key "incremental.cursr"'
    assert err.hint == 'did you mean "cursor"?'


def test_an_unclosed_string_is_named_where_it_opens(make_project: Callable[..., Path]) -> None:
    model = "-- kind: view\nselect order_id\nfrom raw.shop__orders\nwhere note = 'late\n"
    root = make_project({**FILES, "models/staging/bad.sql": model})
    err = error_of(root)
    assert isinstance(err, SQLError)
    assert str(err).splitlines()[0] == "models/staging/bad.sql:4:14: a string opened here is never closed"
