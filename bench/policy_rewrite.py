"""Time the access-policy rewrite of typical data-API queries against parsing them alone: the
rewrite (policy applied to every table read, masks and row filters) must add at most 1 ms p50
per request (issue #23). Figures in docs/benchmarks.md, "Access policies".

    .venv/bin/python -m bench.policy_rewrite [--runs 2000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import sqlglot

from gristmill.project.access_specs import AccessPolicy
from gristmill.sql.policy import Principal, rewrite

CATALOG = {
    "marts.dim_customer": ["customer_key", "full_name", "email", "phone", "country", "region"],
    "marts.fct_invoice_line": [
        "invoice_line_key",
        "customer_key",
        "track_key",
        "amount",
        "invoiced_at",
        "region",
    ],
    "marts.dim_track": ["track_key", "track_name", "genre", "unit_price"],
}
CLASSES = {"marts.dim_customer": {"email": frozenset({"email"}), "full_name": frozenset({"name"})}}
POLICY = AccessPolicy.model_validate(
    {
        "roles": {
            "analyst": {
                "grants": [{"resource": "marts.*", "privileges": ["read"]}],
                "masks": [
                    {"class": "pii.email", "policy": "hash", "allow_aggregates": ["count_distinct"]},
                    {"class": "name", "policy": "redact"},
                    {"column": "phone", "policy": "partial", "keep_last": 4},
                ],
                "row_filters": [
                    {"asset": "marts.fct_invoice_line", "where": "region = {{ principal.region }}"},
                    {"asset": "marts.dim_customer", "where": "region = {{ principal.region }}"},
                ],
            }
        }
    }
)
PRINCIPAL = Principal("alice", ("analyst",), {"region": "eu"})
QUERIES = {
    "one table, page": "SELECT track_key, track_name FROM marts.dim_track WHERE track_key > 100 "
    "ORDER BY track_key LIMIT 100",
    "join + aggregate": "SELECT c.country, sum(f.amount) AS revenue, count(DISTINCT c.email) AS buyers "
    "FROM marts.fct_invoice_line f JOIN marts.dim_customer c USING (customer_key) GROUP BY 1 ORDER BY 2 DESC",
    "CTE + window": "WITH t AS (SELECT customer_key, sum(amount) AS spent "
    "FROM marts.fct_invoice_line GROUP BY 1) "
    "SELECT c.email, t.spent, rank() OVER (ORDER BY t.spent DESC) FROM t JOIN marts.dim_customer c "
    "USING (customer_key) LIMIT 20",
}


def _p50_ms(work: Callable[[], object], runs: int) -> float:
    for _ in range(50):
        work()
    took = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        took.append((time.perf_counter() - started) * 1000)
    return statistics.median(took)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    runs = parser.parse_args().runs
    print("| query | parse p50 | parse + rewrite + render p50 | added by the policy |")
    print("|---|---:|---:|---:|")
    for label, sql in QUERIES.items():
        parse = _p50_ms(lambda sql=sql: sqlglot.parse_one(sql, read="duckdb").sql("duckdb"), runs)
        policed = _p50_ms(
            lambda sql=sql: rewrite(
                sqlglot.parse_one(sql, read="duckdb"),
                catalog=CATALOG,
                principal=PRINCIPAL,
                policy=POLICY,
                classes=CLASSES,
            ).sql("duckdb"),
            runs,
        )
        print(f"| {label} | {parse:.3f} ms | {policed:.3f} ms | {policed - parse:.3f} ms |")


if __name__ == "__main__":
    main()
