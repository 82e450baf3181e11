"""Run a hand-written check plan against a DuckDB file and print the failure counts as JSON.

    python execute.py PLAN.json [--samples]

A standalone script: it imports only duckdb (the version of the interpreter running it), so the
measured process pays what any client of the database pays. The plan (``handplan.write``) lists
the statements, the check each result column belongs to, and per check a query for a few of its
failing rows, run with ``--samples`` only for the checks that failed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import duckdb


def main() -> None:
    plan = json.loads(Path(sys.argv[1]).read_text())
    with_samples = "--samples" in sys.argv[2:]
    con = duckdb.connect(plan["database"], read_only=True)
    failures: dict[str, int] = {}
    statements = sampled = 0
    for statement in plan["statements"]:
        row = con.execute(statement["sql"]).fetchone()
        statements += 1
        assert row is not None
        failures.update(zip(statement["checks"], (int(v) for v in row), strict=True))
    if with_samples:
        for key, sql in plan["samples"].items():
            if failures.get(key):
                sampled += len(con.execute(sql).fetchall())
                statements += 1
    con.close()
    print(json.dumps({"failures": failures, "statements": statements, "sampled": sampled}))


if __name__ == "__main__":
    main()
