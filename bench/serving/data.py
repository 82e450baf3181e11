"""The served table: ``events(id, ts, customer_id, country, status, amount)``, 1M rows by default,
made by one deterministic query so the DuckDB file, the SQLite copy and the Gristmill model all
hold the same rows. About 5% match ``country = 'DE' AND status = 'paid'`` (10% DE, 50% paid)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import duckdb


def events_sql(rows: int) -> str:
    return f"""
SELECT
    i AS id,
    TIMESTAMP '2024-01-01' + to_seconds(i * 30) AS ts,
    (hash(i) % 50000)::BIGINT AS customer_id,
    ['DE', 'FR', 'US', 'GB', 'ES', 'IT', 'NL', 'PL', 'SE', 'BR'][1 + (hash(i * 7) % 10)::INTEGER] AS country,
    ['paid', 'paid', 'paid', 'paid', 'paid', 'pending', 'pending', 'pending', 'refunded', 'failed']
        [1 + (hash(i * 11) % 10)::INTEGER] AS status,
    ((hash(i * 13) % 100000) / 100)::DECIMAL(12, 2) AS amount
FROM range(1, {rows + 1}) AS t(i)
ORDER BY id
"""


def make_duckdb(path: Path, rows: int) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute(f"CREATE TABLE events AS {events_sql(rows)}")


def make_sqlite(duck: Path, path: Path) -> None:
    """Datasette's copy: ``id INTEGER PRIMARY KEY`` and an index on (country, status), as a
    Datasette user would set it up for this filter. Setup, untimed."""
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE events (id INTEGER PRIMARY KEY, ts TEXT, customer_id INTEGER, country TEXT,"
        " status TEXT, amount TEXT)"
    )
    with duckdb.connect(str(duck), read_only=True) as con:
        con.execute("SET enable_progress_bar = false")
        reader = con.execute(
            "SELECT id, strftime(ts, '%Y-%m-%dT%H:%M:%S'), customer_id, country, status, amount::VARCHAR"
            " FROM events ORDER BY id"
        ).fetch_record_batch(100_000)
        for batch in reader:
            db.executemany(
                "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)", zip(*batch.to_pydict().values(), strict=True)
            )
    db.execute("CREATE INDEX events_country_status ON events(country, status)")
    db.commit()
    db.close()
