"""Write ``orders.parquet`` and ``customers.parquet`` with DuckDB SQL: arithmetic on the row
number, no random numbers, so every run plants the same defects in the same rows.

Each kind of defect sits in its own residue class modulo 64, spread evenly over the table, so no
row carries two defects and a sample query has to read far to find five bad rows. The duplicated
rows are exact copies of clean rows, appended at the end. ``created_at`` counts back one second
per row from the moment of generation, so the freshness check passes.
"""

from __future__ import annotations

from pathlib import Path

from bench.quality.spec import CATEGORIES, CUSTOMERS, STATUSES, Scale

CLASSES = 64
_ORDER = (
    "duplicated_rows",
    "null_customer_id",
    "orphan_customer_id",
    "bad_category",
    "bad_status",
    "null_amount",
    "negative_amount",
    "zero_quantity",
    "null_email",
    "bad_email",
)


def _where(scale: Scale, base: int, defect: str) -> str:
    """The rows of ``range(base)`` that carry ``defect``: every ``step``-th row of its class."""
    count = scale.defects(defect)
    step = max(CLASSES, base // count // CLASSES * CLASSES)
    return f"(i % {step} = {_ORDER.index(defect)} AND i < {count * step})"


def _list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


def orders_query(scale: Scale) -> str:
    base = scale.rows - scale.defects("duplicated_rows")
    w = {d: _where(scale, base, d) for d in _ORDER}
    return f"""
WITH base AS (
    SELECT range AS i, date_trunc('second', now()::TIMESTAMP) AS t0 FROM range({base})
), orders AS (
    SELECT
        i AS id,
        CAST(CASE WHEN {w["null_customer_id"]} THEN NULL
             WHEN {w["orphan_customer_id"]} THEN {CUSTOMERS + 1} + i % 1000
             ELSE 1 + (i * 48271) % {CUSTOMERS} END AS INTEGER) AS customer_id,
        CASE WHEN {w["bad_category"]} THEN 'unknown'
             ELSE {_list(CATEGORIES)}[1 + i % {len(CATEGORIES)}] END AS category,
        CASE WHEN {w["bad_status"]} THEN 'lost'
             WHEN {w["null_amount"]} THEN 'paid'
             ELSE {_list(STATUSES)}[1 + (i // 3) % {len(STATUSES)}] END AS status,
        CASE WHEN {w["null_amount"]} THEN NULL
             WHEN {w["negative_amount"]} THEN -1 - ((i * 7919) % 100000) / 100.0
             ELSE ((i * 7919) % 100000) / 100.0 END::DOUBLE AS amount,
        CAST(CASE WHEN {w["zero_quantity"]} THEN 0 ELSE 1 + (i // 7) % 20 END AS INTEGER) AS quantity,
        t0 - to_seconds(i) AS created_at,
        CASE WHEN {w["null_email"]} THEN NULL
             WHEN {w["bad_email"]} THEN 'user' || i || '.example.com'
             ELSE 'user' || i || '@example.com' END AS email,
        {w["duplicated_rows"]} AS copied
    FROM base
)
SELECT * EXCLUDE (copied) FROM orders
UNION ALL
SELECT * EXCLUDE (copied) FROM orders WHERE copied
"""


def customers_query() -> str:
    countries = _list(("DE", "FR", "GB", "NL", "US"))
    return (
        "SELECT CAST(range + 1 AS INTEGER) AS id, 'customer ' || (range + 1) AS name,"
        f" {countries}[1 + range % 5] AS country FROM range({CUSTOMERS})"
    )


def write(folder: Path, scale: Scale) -> dict[str, Path]:
    import duckdb

    folder.mkdir(parents=True, exist_ok=True)
    paths = {"orders": folder / "orders.parquet", "customers": folder / "customers.parquet"}
    con = duckdb.connect()
    try:
        for name, query in (("orders", orders_query(scale)), ("customers", customers_query())):
            con.execute(f"COPY ({query}) TO '{paths[name]}' (FORMAT parquet)")
    finally:
        con.close()
    return paths
