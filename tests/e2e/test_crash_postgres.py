"""Kill -9 a run on the postgres engine at many points; a rerun must end where a clean run does.

The project lands a source, builds table and view models with checks, and serves them in two
environments (prod, then dev). A first state is built once and kept as a template database; then
the source changes and one mart is edited. Each case clones the template, starts the prod + dev runs
in a child process and kills it (SIGKILL, no cleanup) after a seeded random delay spread over the
whole of a clean run. Right after the kill:

- every environment serves a whole run: all of its views show the old results or all the new;
- every view an environment serves reads a physical table that exists and whose build completed
  (it has its version row).

Then a rerun must leave every managed table (prod's and dev's views, the landed source) equal, row
for row, to a clean run's, and after ``gristmill gc`` no versioned table may be left that no
environment serves.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pytest

from tests.support.pg_engine import ADMIN_URL, postgres_database

pytestmark = [pytest.mark.services, pytest.mark.slow]

# 25 kill points by default (the floor); GRISTMILL_CRASH_KILLS raises it for a longer soak.
KILLS = max(25, int(os.environ.get("GRISTMILL_CRASH_KILLS", "25")))
PREFIX = "crash_"
ROWS = 20_000

MODELS = {
    "models/staging/orders.sql": (
        "select id, customer, amount, status from raw.src__orders where amount > 1\n"
    ),
    "models/marts/by_customer_v.sql": (
        "-- kind: view\nselect customer, count(*) as n from staging.orders group by customer\n"
    ),
    "models/marts/revenue.sql": (
        "select customer, sum(amount) as total, count(*) as n from staging.orders group by customer\n"
    ),
    "models/marts/by_status.sql": (
        "select o.status, sum(r.total) as total, count(*) as n\n"
        "from marts.revenue as r join staging.orders as o on o.customer = r.customer\n"
        "group by o.status\n"
    ),
    "models/marts/big_customers.sql": "select customer, total from marts.revenue where total > 100000\n",
    "checks/checks.yml": (
        "staging.orders:\n  - unique: id\n  - not_null: id\n"
        "marts.revenue:\n  - unique: customer\n  - not_null: customer\n"
    ),
    "sources/src.yml": "kind: files\ntables:\n  orders: {path: data/orders.ndjson}\n",
}
EDITED = (
    "select customer, sum(amount) as total, count(*) as n, max(amount) as top\n"
    "from staging.orders group by customer\n"
)


def orders(version: int) -> str:
    """Integer amounts: sums are exact whatever order the server adds them in."""
    count = ROWS + (ROWS // 5 if version == 2 else 0)
    lines = []
    for i in range(count):
        changed = version == 2 and i % 4 == 0
        amount = (i * 37) % 100_000 + (500 if changed else 0)
        status = ("new", "paid", "sent")[(i + changed) % 3]
        lines.append(json.dumps({"id": i, "customer": i % 700, "amount": amount, "status": status}))
    return "\n".join(lines) + "\n"


# -- children --------------------------------------------------------------------------------------

# Runs happen in children of a fork server that never ran DuckDB (see tests/e2e/test_crash.py).
_CONTEXT = multiprocessing.get_context("forkserver")
# Preloading what a postgres run imports keeps each child's start short, so the kills spread over
# the run itself.
_CONTEXT.set_forkserver_preload(
    [
        "gristmill.workspace",
        "gristmill.runtime.launch",
        "gristmill.runtime.planning",
        "gristmill.engines.postgres.open",
    ]
)


def _entry(results: Any, action: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        results.put({"ok": action(*args)})
    except BaseException as err:  # report anything, the parent asserts
        results.put({"error": repr(err)})


def in_child(action: Callable[..., Any], *args: Any) -> Any:
    results = _CONTEXT.Queue()
    child = _CONTEXT.Process(target=_entry, args=(results, action, args))
    child.start()
    result = results.get(timeout=300)
    child.join()
    assert "error" not in result, result.get("error")
    return result["ok"]


def both_environments(root: Path) -> bool:
    from gristmill.workspace import Workspace

    prod = Workspace(root).run().ok
    return Workspace(root).run(env="dev").ok and prod


def collect(root: Path) -> list[str]:
    from gristmill.workspace import Workspace

    return Workspace(root).gc()


def rerun_and_collect(root: Path) -> bool:
    ran = both_environments(root)
    collect(root)
    return ran


# -- the database, seen from outside ---------------------------------------------------------------


def _connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True)


def served(url: str) -> list[str]:
    """The tables and views a user reads: every managed schema but the bookkeeping ones."""
    with _connect(url) as con:
        rows = con.execute(
            "select table_schema, table_name from information_schema.tables"
            " where table_schema like %s and table_schema not like %s and table_schema not like %s",
            [PREFIX + "%", PREFIX + "\\_gm\\_%", PREFIX + "\\_gristmill%"],
        ).fetchall()
    return sorted(f"{schema[len(PREFIX) :]}.{name}" for schema, name in rows)


def snapshot(url: str, relations: list[str]) -> dict[str, pa.Table]:
    """Each relation's rows as an Arrow table sorted by every column."""
    out = {}
    with _connect(url) as con:
        for relation in relations:
            schema, name = relation.split(".", 1)
            cursor = con.execute(f'select * from "{PREFIX}{schema}"."{name}"'.encode())
            names = [d.name for d in cursor.description or ()]
            table = pa.Table.from_pylist([dict(zip(names, r, strict=True)) for r in cursor.fetchall()])
            out[relation] = table.sort_by([(n, "ascending") for n in names]) if names else table
    return out


def same(a: dict[str, pa.Table], b: dict[str, pa.Table]) -> bool:
    return a.keys() == b.keys() and all(a[k].equals(b[k]) for k in a)


def pointers(con: psycopg.Connection) -> list[tuple[str, str, str]]:
    return con.execute(f'select env, asset, physical from "{PREFIX}_gristmill".environments').fetchall()


def physical_relations(con: psycopg.Connection) -> set[str]:
    rows = con.execute(
        "select table_schema, table_name from information_schema.tables where table_schema like %s",
        [PREFIX + "\\_gm\\_%"],
    ).fetchall()
    return {f"{schema[len(PREFIX) :]}.{name}" for schema, name in rows}


def assert_whole_versions(url: str, where: str) -> None:
    """Every environment's view reads the physical table its pointer names, which exists and
    whose build completed (its version row was committed with it)."""
    with _connect(url) as con:
        existing = physical_relations(con)
        versions = {r[0] for r in con.execute(f'select physical from "{PREFIX}_gristmill".table_versions')}
        for env, asset, physical in pointers(con):
            schema, name = asset.split(".", 1)
            view_schema = PREFIX + (schema if env == "prod" else f"{schema}__{env}")
            assert physical in existing, f"{where}: {env} serves {asset} from {physical}, which is gone"
            assert physical in versions, f"{where}: {env} serves {asset} from an unfinished build {physical}"
            read = con.execute(
                "select table_schema, table_name from information_schema.view_table_usage"
                " where view_schema = %s and view_name = %s",
                [view_schema, name],
            ).fetchall()
            target_schema, target_name = physical.split(".", 1)
            assert read == [(PREFIX + target_schema, target_name)], f"{where}: {env}'s {asset} reads {read}"


def assert_nothing_orphaned(url: str, where: str) -> None:
    """After gc, every versioned table is served by an environment or read by a served view."""
    with _connect(url) as con:
        keep = {p for _, _, p in pointers(con)}
        stack = list(keep)
        while stack:
            schema, name = stack.pop().split(".", 1)
            for s, n in con.execute(
                "select table_schema, table_name from information_schema.view_table_usage"
                " where view_schema = %s and view_name = %s",
                [PREFIX + schema, name],
            ).fetchall():
                found = f"{s[len(PREFIX) :]}.{n}"
                if found not in keep:
                    keep.add(found)
                    stack.append(found)
        orphans = physical_relations(con) - keep
    assert not orphans, f"{where}: versioned tables no environment serves survived gc: {sorted(orphans)}"


# -- the test --------------------------------------------------------------------------------------


@pytest.fixture
def template() -> Iterator[str]:
    """A database of the test's own on the loopback server (its name): the first state, cloned
    for every case."""
    with postgres_database("gristmill_crash") as url:
        yield url.rsplit("/", 1)[1]


def _url(database: str) -> str:
    return ADMIN_URL.rsplit("/", 1)[0] + f"/{database}"


def _admin(*statements: str) -> None:
    with _connect(ADMIN_URL) as con:
        for statement in statements:
            con.execute(statement.encode())


class Cases:
    """Each case's database: a fresh clone of the template (cheap, WAL_LOG), dropped in the
    background while the next case runs (a DROP DATABASE waits for a checkpoint)."""

    def __init__(self, template: str, root: Path, state: Path) -> None:
        self.template, self.root, self.state = template, root, state
        self.dropping = ThreadPoolExecutor(1)
        self.made: list[str] = []

    def fresh(self) -> str:
        """A new database cloned from the template, the project pointed at it, its state file
        back to the template's; returns the database's URL."""
        if self.made:
            self.dropping.submit(_admin, f'DROP DATABASE IF EXISTS "{self.made[-1]}" WITH (FORCE)')
        name = f"{self.template}_{len(self.made)}"
        self.made.append(name)
        _admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        write_toml(self.root, _url(name))
        shutil.rmtree(self.root / ".gristmill", ignore_errors=True)
        shutil.copytree(self.state, self.root / ".gristmill")
        return _url(name)

    def close(self) -> None:
        self.dropping.shutdown(wait=True)
        _admin(*(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for name in self.made))


def write_toml(root: Path, url: str) -> None:
    (root / "gristmill.toml").write_text(
        f'name = "crash"\n\n[engine]\nkind = "postgres"\nurl = "{url}"\nschema_prefix = "{PREFIX}"\n'
    )


def served_in(relations: list[str], env: str) -> list[str]:
    return [r for r in relations if not r.startswith("raw.") and ("__dev." in r) == (env == "dev")]


def test_kill_a_postgres_run_anywhere_then_rerun_equals_a_clean_run(template: str, tmp_path: Path) -> None:
    root = tmp_path / "project"
    for name, text in {**MODELS, "data/orders.ndjson": orders(1)}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    write_toml(root, _url(template))
    assert in_child(both_environments, root)
    relations = served(_url(template))
    assert {"raw.src__orders", "marts.revenue", "marts__dev.revenue", "marts__dev.by_customer_v"} <= set(
        relations
    ), relations
    before = snapshot(_url(template), relations)
    state = tmp_path / "state"
    shutil.copytree(root / ".gristmill", state)

    (root / "data" / "orders.ndjson").write_text(orders(2))
    (root / "models" / "marts" / "revenue.sql").write_text(EDITED)
    cases = Cases(template, root, state)
    try:
        url = cases.fresh()
        started = time.perf_counter()
        assert in_child(both_environments, root)
        duration = time.perf_counter() - started
        after = snapshot(url, relations)
        assert not same(after, before)
        assert_whole_versions(url, "clean run")
        assert in_child(collect, root)  # the edited mart's old version goes
        assert_nothing_orphaned(url, "clean run")
        assert same(snapshot(url, relations), after)

        rng = random.Random("postgres-kills")
        delays = sorted({round(rng.uniform(0, duration * 1.1), 3) for _ in range(KILLS)})
        assert len(delays) == KILLS  # distinct points
        outcomes = {"old": 0, "prod switched": 0, "new": 0}
        for point, delay in enumerate(delays):
            where = f"kill point {point} ({delay:.3f} s of {duration:.2f} s)"
            url = cases.fresh()
            child = _CONTEXT.Process(target=both_environments, args=(root,))
            child.start()
            time.sleep(delay)
            child.kill()
            child.join()
            seen = snapshot(url, relations)
            state_of = {}
            for env in ("prod", "dev"):
                mine = served_in(relations, env)
                old = all(seen[r].equals(before[r]) for r in mine)
                new = all(seen[r].equals(after[r]) for r in mine)
                assert old or new, f"{where}: {env} serves models of two different runs"
                state_of[env] = "old" if old else "new"
            assert_whole_versions(url, where)
            outcomes[
                {"old": "old", "new": "prod switched"}[state_of["prod"]]
                if state_of["dev"] == "old"
                else "new"
            ] += 1
            assert in_child(rerun_and_collect, root), where
            assert same(snapshot(url, relations), after), f"{where}: the rerun differs from a clean run"
            assert_nothing_orphaned(url, where)
            assert_whole_versions(url, f"{where}, after gc")
        # The kills really landed inside the runs, before and after the switches.
        assert outcomes["old"] > 0 and outcomes["new"] + outcomes["prod switched"] > 0, outcomes
    finally:
        cases.close()
