"""The same project on one DuckDB database file instead of DuckLake (storage.format = "duckdb")."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Cli


def test_the_demo_runs_on_a_duckdb_file(demo: Path, cli: Cli) -> None:
    toml = demo / "gristmill.toml"
    toml.write_text(toml.read_text().replace("[storage]\n", '[storage]\nformat = "duckdb"\n'))
    code, out = cli("run", project=demo)
    assert code == 0, out
    assert "19 built" in out and "37/37 checks passed" in out
    assert (demo / ".gristmill" / "warehouse.duckdb").exists()
    assert not (demo / ".gristmill" / "catalog.sqlite").exists()

    code, out = cli("run", project=demo)
    assert code == 0 and "0 built, 19 skipped" in out, out

    model = demo / "models" / "marts" / "dim_track.sql"
    model.write_text(model.read_text().replace("    composer,\n", "    upper(composer) as composer,\n"))
    code, out = cli("run", "--env", "dev", project=demo)
    assert code == 0 and "1 built" in out, out
    code, out = cli("promote", "dev", project=demo)
    assert code == 0, out
    code, out = cli(
        "query", "select count(*) as n from marts.fct_invoice_line", "--format", "json", project=demo
    )
    assert code == 0 and json.loads(out) == [{"n": 2240}], out
    code, out = cli("gc", project=demo)
    assert code == 0 and "1 unused table dropped" in out, out
    code, out = cli("run", project=demo)
    assert code == 0 and "0 built" in out, out
