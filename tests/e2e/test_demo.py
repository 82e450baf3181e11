"""The demo project end to end through the CLI, checked against answers computed straight from
the Chinook SQLite file with the standard library, not with Gristmill."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import CHINOOK_SQLITE, Cli


def chinook(sql: str) -> list[tuple]:  # type: ignore[type-arg]
    with sqlite3.connect(CHINOOK_SQLITE) as db:
        return db.execute(sql).fetchall()


def query_json(cli: Cli, project: Path, sql: str) -> list[dict]:  # type: ignore[type-arg]
    code, out = cli("query", sql, "--format", "json", project=project)
    assert code == 0, out
    return json.loads(out)


@pytest.fixture
def built(demo: Path, cli: Cli) -> Path:
    code, out = cli("run", project=demo)
    assert code == 0, out
    return demo


def test_first_run_builds_everything_and_prints_a_summary(demo: Path, cli: Cli) -> None:
    code, out = cli("run", project=demo)
    assert code == 0, out
    assert "OK  19 built, 0 skipped" in out
    assert "checks passed" in out
    assert "0 failed" not in out  # failures are only mentioned when there are some


def test_invoice_lines_and_revenue_match_the_source(built: Path, cli: Cli) -> None:
    [row] = query_json(
        cli, built, "select count(*) as n, sum(revenue) as revenue from marts.fct_invoice_line"
    )
    [(lines,)] = chinook("select count(*) from InvoiceLine")
    [(invoice_total,)] = chinook("select round(sum(Total), 2) from Invoice")
    assert row["n"] == lines == 2240
    assert Decimal(str(row["revenue"])) == Decimal(str(invoice_total)) == Decimal("2328.60")


def test_revenue_by_genre_country_month_matches_an_independent_computation(built: Path, cli: Cli) -> None:
    expected = {
        (month, genre, country): Decimal(str(revenue))
        for month, genre, country, revenue in chinook(
            """select strftime('%Y-%m', i.InvoiceDate), g.Name, i.BillingCountry,
                      round(sum(l.UnitPrice * l.Quantity), 2)
               from InvoiceLine l join Invoice i using (InvoiceId)
               join Track t using (TrackId) join Genre g using (GenreId)
               group by 1, 2, 3"""
        )
    }
    rows = query_json(cli, built, "select * from marts.revenue_by_genre_country_month")
    actual = {(r["month"][:7], r["genre"], r["country"]): Decimal(str(r["revenue"])) for r in rows}
    assert actual == expected
    assert len(actual) == 674


def test_dimensions_cover_their_sources(built: Path, cli: Cli) -> None:
    counts = query_json(
        cli,
        built,
        "select (select count(*) from marts.dim_customer) as customers,"
        " (select count(*) from marts.dim_track) as tracks,"
        " (select count(*) from marts.dim_date) as days,"
        " (select min(date) from marts.dim_date) as first_day",
    )[0]
    [(customers,)] = chinook("select count(*) from Customer")
    [(tracks,)] = chinook("select count(*) from Track")
    [(first, last)] = chinook("select min(date(InvoiceDate)), max(date(InvoiceDate)) from Invoice")
    assert counts["customers"] == customers
    assert counts["tracks"] == tracks
    assert counts["first_day"] == first
    from datetime import date

    assert counts["days"] == (date.fromisoformat(last) - date.fromisoformat(first)).days + 1


def test_second_run_skips_everything_and_says_why(built: Path, cli: Cli) -> None:
    before = query_json(cli, built, "select * from marts.revenue_by_genre_country_month order by all")
    code, out = cli("run", project=built)
    assert code == 0, out
    assert "0 built, 19 skipped" in out
    assert "unchanged since run 1" in out
    after = query_json(cli, built, "select * from marts.revenue_by_genre_country_month order by all")
    assert after == before


def test_a_changed_column_rebuilds_only_the_models_that_read_it(built: Path, cli: Cli) -> None:
    model = built / "models" / "marts" / "dim_track.sql"
    # Nothing downstream reads composer: only the dimension itself is rebuilt.
    model.write_text(model.read_text().replace("    composer,\n", "    upper(composer) as composer,\n"))
    code, out = cli("run", project=built)
    assert code == 0, out
    assert "1 built, 18 skipped" in out
    assert "SQL changed (breaking: composer)" in out
    # The revenue mart groups by genre_name: it is rebuilt with the dimension.
    model.write_text(model.read_text().replace("    genre_name,\n", "    upper(genre_name) as genre_name,\n"))
    code, out = cli("run", project=built)
    assert code == 0, out
    assert "2 built, 17 skipped" in out
    assert "reads changed marts.dim_track.genre_name" in out
    rows = query_json(cli, built, "select distinct genre from marts.revenue_by_genre_country_month")
    assert {"ROCK", "JAZZ"} <= {r["genre"] for r in rows}


def test_whitespace_and_comments_do_not_count_as_changes(built: Path, cli: Cli) -> None:
    model = built / "models" / "staging" / "stg_invoice.sql"
    model.write_text("-- reformatted\n" + model.read_text().replace("\n", "\n\n").upper().replace("AS", "as"))
    code, out = cli("plan", project=built)
    assert code == 0, out
    assert "0 to build, 19 unchanged" in out


def test_selection_runs_only_the_chosen_assets(built: Path, cli: Cli) -> None:
    code, out = cli("run", "-s", "+dim_customer", "--full-refresh", project=built)
    assert code == 0, out
    assert "5 built, 0 skipped" in out  # customer + employee sources, two staging views, the dimension
    assert "fct_invoice_line" not in out


def test_ls_and_history_show_what_happened(built: Path, cli: Cli) -> None:
    code, out = cli("ls", project=built)
    assert code == 0
    assert "marts.fct_invoice_line" in out and "2,240" in out and "#1 success" in out
    cli("run", project=built)
    code, out = cli("history", project=built)
    assert code == 0
    lines = [line for line in out.splitlines() if "success" in line]
    assert len(lines) == 2 and lines[0].split()[0] == "2"
    code, out = cli("history", "1", project=built)
    assert "raw.chinook_export__invoice_line" in out and "new: never built" in out


def test_query_formats(built: Path, cli: Cli) -> None:
    code, out = cli(
        "query",
        "select genre_id, name from raw.chinook_db__genre order by 1 limit 2",
        "--format",
        "csv",
        project=built,
    )
    assert code == 0
    assert out.splitlines() == ["genre_id,name", "1,Rock", "2,Jazz"]
    code, out = cli(
        "query", "select name from raw.chinook_db__genre order by genre_id limit 3", project=built
    )
    assert "Rock" in out and "Metal" in out


def test_query_is_read_only(built: Path, cli: Cli) -> None:
    code, out = cli("query", "drop table marts.dim_date", project=built)
    assert code == 1
    assert "read-only" in out.lower() or "read only" in out.lower()


def test_a_failing_model_fails_the_run_skips_descendants_and_keeps_the_old_table(
    built: Path, cli: Cli
) -> None:
    before = query_json(cli, built, "select * from marts.dim_customer order by customer_key")
    model = built / "models" / "marts" / "dim_customer.sql"
    model.write_text(model.read_text().replace("    c.city,", "    cast(c.city as integer) as city,"))
    code, out = cli("run", project=built)
    assert code == 1
    assert "models/marts/dim_customer.sql: the engine rejected the model" in out
    assert "Could not convert string" in out
    assert "not run: upstream marts.dim_customer failed" in out
    assert "FAILED  0 built, 16 skipped, 1 failed, 2 not run" in out
    assert query_json(cli, built, "select * from marts.dim_customer order by customer_key") == before


def test_the_console_script_runs_the_demo_from_a_fresh_folder(tmp_path: Path) -> None:
    gristmill = Path(sys.executable).with_name("gristmill")
    subprocess.run([gristmill, "init", "myshop"], cwd=tmp_path, check=True, capture_output=True)
    run = subprocess.run([gristmill, "run"], cwd=tmp_path / "myshop", capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "19 built" in run.stdout
    assert 'name = "myshop"' in (tmp_path / "myshop" / "gristmill.toml").read_text()
