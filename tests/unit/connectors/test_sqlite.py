"""The SQLite source on the real Chinook database file."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from gristmill.connectors import open_source
from gristmill.errors import ConfigError
from gristmill.project import load_project
from tests.conftest import CHINOOK_SQLITE


@pytest.fixture
def root(make_project: Callable[..., Path]) -> Path:
    root = make_project(
        {
            "sources/db.yml": """
            kind: sqlite
            path: data/chinook.sqlite
            tables:
              invoice: {table: Invoice}
              genre: {table: genre, columns: [Name]}
              playlist_track: {}
        """,
        }
    )
    (root / "data").mkdir()
    shutil.copy(CHINOOK_SQLITE, root / "data" / "chinook.sqlite")
    return root


def test_reads_tables_as_arrow_with_landed_names(root: Path) -> None:
    project = load_project(root)
    source = open_source(project.sources["db"], root)
    invoices = source.read(project.sources["db"].tables["invoice"]).read_all()
    assert invoices.num_rows == 412
    assert invoices.column_names[:3] == ["invoice_id", "customer_id", "invoice_date"]
    assert round(Decimal(str(sum(invoices.column("total").to_pylist()))), 2) == Decimal("2328.60")
    genres = source.read(project.sources["db"].tables["genre"]).read_all()
    assert genres.column_names == ["name"] and genres.num_rows == 25
    # table names match case-insensitively, as in SQLite itself
    assert source.read(project.sources["db"].tables["playlist_track"]).read_all().num_rows == 8715


def test_unknown_table_suggests_one(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {"sources/db.yml": "kind: sqlite\npath: data/c.sqlite\ntables:\n  x: {table: Invoce}\n"}
    )
    (root / "data").mkdir()
    shutil.copy(CHINOOK_SQLITE, root / "data" / "c.sqlite")
    project = load_project(root)
    with pytest.raises(ConfigError) as caught:
        open_source(project.sources["db"], root).schema(project.sources["db"].tables["x"])
    assert str(caught.value).startswith('sources/db.yml:4: c.sqlite has no table "Invoce"')
    assert caught.value.hint == 'did you mean "Invoice"?'


def test_missing_required_option(make_project: Callable[..., Path]) -> None:
    root = make_project({"sources/db.yml": "kind: sqlite\ntables: [Invoice]\n"})
    project = load_project(root)
    with pytest.raises(ConfigError, match='missing required option "path"'):
        open_source(project.sources["db"], root)
