"""The 300-model transformation project on PostgreSQL: raw statements, Gristmill, dbt-postgres.

    .venv/bin/python -m bench.engines.transform [--models 300] [--rows 100000] [--repeat 1]
        [--skip-dbt] [--threads 4] [--url postgresql://postgres@127.0.0.1:5432/postgres]

The project is ``bench/transform``'s (same spec, same SELECTs, same tests; see that package), built
on one PostgreSQL server by:

- **raw**: ``bench/engines/pg_raw.py``, the statements rendered for PostgreSQL sent over one psycopg
  connection in dependency order (sources by binary COPY, each model a CTAS, its test right after);
- **Gristmill**: the project with ``[engine] kind = "postgres"`` (it lands the Parquet sources
  itself, builds, runs its checks, switches its views);
- **dbt-postgres** (``bench/.venv-dbt-postgres``, installed on first use): ``dbt run`` + ``dbt
  test``, sources loaded beforehand, untimed, as ``bench/transform`` does for dbt-duckdb.

Each tool gets a database of its own, made and dropped here. Steps: the full build with its tests,
a run with nothing changed, and a run after one column of one staging model changed (Gristmill
should rebuild only the models that read it; dbt rebuilds ``state:modified+``; the raw floor
rebuilds exactly the readers). Every step is a process timed by wall clock and by user+sys CPU of
its process tree (the server's own CPU is not counted: it is the same SQL for everyone).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import sqlglot

from bench.engines.pg_raw import land
from bench.transform import peers
from bench.transform.emit import generate, model_sql, test_sql, write_model
from bench.transform.measure import Outcome, Row, run
from bench.transform.spec import SOURCES, Spec, build_spec

REPO = Path(__file__).parents[2]
VENV = REPO / ".venv" / "bin"
RAW = Path(__file__).with_name("pg_raw.py")

# dbt-core 1.11 is the last line installable from the package registry alone (bench/transform/peers.py).
DBT_POSTGRES = peers.Peer(
    "dbt-postgres",
    "dbt",
    peers.BENCH / ".venv-dbt-postgres",
    ("dbt-core>=1.11,<1.12", "dbt-postgres>=1.9"),
    ("dbt-core", "dbt-postgres", "psycopg2-binary"),
)

LABELS = {
    "raw_build": "raw: COPY sources, CTAS + test per model",
    "gm_build": "gristmill run (first: land, build, checks)",
    "gm_noop": "gristmill run (nothing changed)",
    "gm_change": "gristmill run after the one-column change",
    "raw_change": "raw: rebuild exactly the column's readers",
    "dbt_run": "dbt run (first)",
    "dbt_test": "dbt test",
    "dbt_noop": "dbt run (nothing changed)",
    "dbt_change": "dbt run -s state:modified+ after the change",
}


@contextmanager
def database(admin: str, tag: str) -> Iterator[str]:
    name = f"gristmill_bench_{tag}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(admin, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"'.encode())
    try:
        yield admin.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def postgres_sql(sql: str) -> str:
    return sqlglot.transpile(sql, read="duckdb", write="postgres")[0]


def write_raw(path: Path, spec: Spec, *, changed: bool = False) -> None:
    def ref(name: str) -> str:
        return f"raw.{name}" if name.startswith("src__") else spec.by_name[name].asset

    models = [
        {
            "name": m.asset,
            "schema": m.layer,
            "sql": postgres_sql(model_sql(m, ref, changed=changed and m.name == spec.target)),
            "test": test_sql(m.asset, m.test),
        }
        for m in spec.models
    ]
    path.write_text(json.dumps({"sources": list(SOURCES), "models": models}, indent=1))


def write_dbt_profile(project: Path, url: str, threads: int) -> None:
    info = psycopg.conninfo.conninfo_to_dict(url)
    (project / "profiles.yml").write_text(
        "transform_bench:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n"
        f"      host: {info.get('host', '127.0.0.1')}\n      port: {info.get('port', 5432)}\n"
        f"      user: {info.get('user', 'postgres')}\n      password: '{info.get('password', '')}'\n"
        f"      dbname: {info['dbname']}\n      schema: analytics\n      threads: {threads}\n"
    )


def load_sources(url: str, data: Path) -> None:
    """dbt's source tables, landed by the raw script's own COPY (setup, untimed)."""
    with psycopg.connect(url, autocommit=True) as con:
        con.execute(b"CREATE SCHEMA raw")
        for source in SOURCES:
            land(con, source, data / f"{source}.parquet")


def built_by_gristmill(project: Path) -> set[str]:
    db = sqlite3.connect(project / ".gristmill" / "state.sqlite")
    try:
        rows = db.execute(
            "SELECT asset FROM steps WHERE run_id = (SELECT max(run_id) FROM runs)"
            " AND action = 'build' AND kind != 'source' AND status = 'success'"
        ).fetchall()
    finally:
        db.close()
    return {r[0] for r in rows}


class Results:
    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}

    def add(self, key: str, outcome: Outcome, note: str = "") -> Outcome:
        outcome.note = outcome.note or note
        self.rows.setdefault(key, Row(key, LABELS[key], [])).outcomes.append(outcome)
        status = "ok" if outcome.ok else "FAILED: " + outcome.failure()
        built = f", {outcome.models} models" if outcome.models is not None else ""
        print(f"  {LABELS[key]:<48} {outcome.wall:7.2f} s wall {outcome.cpu:7.2f} s cpu {status}{built}")
        return outcome

    def get(self, key: str) -> Row | None:
        row = self.rows.get(key)
        return row if row is not None and row.ok else None


def raw_steps(work: Path, spec: Spec, url: str, results: Results, env: dict[str, str | None]) -> None:
    command: list[str | Path] = [VENV / "python", RAW]
    results.add("raw_build", run([*command, "raw.json", "data", url], work, env))
    readers = sorted(spec.by_name[n].asset for n in spec.readers(spec.target, spec.column))
    write_raw(work / "raw-changed.json", spec, changed=True)
    change = run([*command, "raw-changed.json", "data", url, "--only", ",".join(readers)], work, env)
    change.models = len(readers)
    results.add("raw_change", change)


def gristmill_steps(
    project: Path, spec: Spec, url: str, results: Results, env: dict[str, str | None]
) -> None:
    toml = project / "gristmill.toml"
    toml.write_text(toml.read_text() + f'\n[engine]\nkind = "postgres"\nurl = "{url}"\n')
    gristmill = VENV / "gristmill"
    first = run([gristmill, "run"], project, env)
    first.models = len(built_by_gristmill(project)) if first.ok else None
    results.add("gm_build", first)
    noop = run([gristmill, "run"], project, env)
    noop.models = len(built_by_gristmill(project)) if noop.ok else None
    results.add("gm_noop", noop)
    write_model("gristmill", project, spec, spec.by_name[spec.target], changed=True)
    change = run([gristmill, "run"], project, env)
    if change.ok:
        built = built_by_gristmill(project)
        readers = {spec.by_name[n].asset for n in spec.readers(spec.target, spec.column)}
        change.models = len(built)
        change.note = f"{len(built & readers)} of {len(readers)} readers; {len(built - readers)} others"
    results.add("gm_change", change)


def dbt(project: Path, *args: str) -> Outcome:
    command: list[str | Path] = [DBT_POSTGRES.exe("dbt"), *args, "--project-dir", ".", "--profiles-dir", "."]
    outcome = run(command, project, env=peers.DBT_ENV)
    found = project / "target" / "run_results.json"
    if found.exists() and args[0] in ("run", "test"):
        results = json.loads(found.read_text())["results"]
        outcome.models = sum(1 for r in results if r["status"] in ("success", "pass"))
    return outcome


def dbt_steps(project: Path, spec: Spec, url: str, data: Path, results: Results, threads: int) -> None:
    write_dbt_profile(project, url, threads)
    load_sources(url, data)
    results.add("dbt_run", dbt(project, "run"))
    test = dbt(project, "test")
    results.add("dbt_test", test, f"{test.models} tests passed")
    test.models = None
    peers.save_state(project)
    results.add("dbt_noop", dbt(project, "run"))
    write_model("dbt", project, spec, spec.by_name[spec.target], changed=True)
    results.add("dbt_change", dbt(project, "run", "-s", "state:modified+", "--state", "state"))


def _ratio(a: Row | None, b: Row | None, attr: str) -> float | None:
    if a is None or b is None:
        return None
    value = getattr(b, attr)
    return getattr(a, attr) / value if value > 0 else None


def _sum(*rows: Row | None) -> Row | None:
    if any(r is None for r in rows):
        return None
    outcomes = [
        Outcome(sum(o.wall for o in group), sum(o.cpu for o in group), True)
        for group in zip(*(r.outcomes for r in rows if r is not None), strict=True)
    ]
    return Row("sum", "", outcomes)


def report(spec: Spec, results: Results, meta: dict[str, str]) -> None:
    readers = spec.readers(spec.target, spec.column)
    print(
        f"\n{len(spec.models)} models ({spec.edges} edges, depth {spec.depth}), {len(spec.models)} tests,"
        f" 4 sources x {spec.rows:,} rows; change: {spec.target}.{spec.column}"
        f" ({len(readers)} models read it)"
    )
    for name, value in meta.items():
        print(f"{name}: {value}")
    print(f"\n{'step':<50}{'wall s':>9}{'cpu s':>9}{'models':>8}  note")
    for key, label in LABELS.items():
        row = results.rows.get(key)
        if row is not None:
            models = "" if row.models is None else str(row.models)
            print(f"{label:<50}{row.wall:>9.2f}{row.cpu:>9.2f}{models:>8}  {row.note}")
    g = results.get
    dbt_build = _sum(g("dbt_run"), g("dbt_test"))
    lines: list[tuple[str, float | None, float | None]] = [
        ("full build + tests / raw, wall", _ratio(g("gm_build"), g("raw_build"), "wall"), 1.15),
        ("full build + tests / raw, cpu", _ratio(g("gm_build"), g("raw_build"), "cpu"), None),
        ("full build + tests / dbt-postgres, cpu", _ratio(g("gm_build"), dbt_build, "cpu"), 0.5),
        ("full build + tests / dbt-postgres, wall", _ratio(g("gm_build"), dbt_build, "wall"), None),
        ("nothing changed / dbt-postgres, cpu", _ratio(g("gm_noop"), g("dbt_noop"), "cpu"), None),
        ("one-column change / raw readers, wall", _ratio(g("gm_change"), g("raw_change"), "wall"), None),
        ("one-column change / dbt-postgres, cpu", _ratio(g("gm_change"), g("dbt_change"), "cpu"), None),
        ("one-column change / dbt-postgres, wall", _ratio(g("gm_change"), g("dbt_change"), "wall"), None),
    ]
    print(f"\n{'ratio (measured in this run)':<44}{'measured':>10}  target")
    for label, ratio, goal in lines:
        verdict = ""
        if goal is not None and ratio is not None:
            verdict = f"<= {goal}x " + ("met" if ratio <= goal else "MISSED")
        print(f"{label:<44}{'n/a' if ratio is None else f'{ratio:.2f}x':>10}  {verdict}")
    change = g("gm_change")
    if change is not None and change.models is not None:
        verdict = "met" if change.models <= len(readers) else "MISSED"
        print(f"{'rebuilt after the one-column change':<44}{change.models:>10}  <= {len(readers)} {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=300)
    parser.add_argument("--rows", type=int, default=100_000, help="rows per source table")
    parser.add_argument("--threads", type=int, default=4, help="dbt threads")
    parser.add_argument("--skip-dbt", action="store_true")
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres", help="an admin URL")
    parser.add_argument("--workdir", type=Path, help="keep the projects here (default: a temp folder)")
    args = parser.parse_args()

    spec = build_spec(args.models, args.rows)
    results = Results()
    with psycopg.connect(args.url, autocommit=True) as con:
        server = con.execute(b"SHOW server_version").fetchone()
    meta = {"server": f"PostgreSQL {server[0] if server else '?'} at {args.url.rsplit('@', 1)[-1]}"}
    use_dbt = not args.skip_dbt
    if use_dbt:
        problem = peers.ensure(DBT_POSTGRES)
        if problem:
            print(f"[setup] dbt-postgres cannot run: {problem}")
            use_dbt = False
        else:
            meta["dbt"] = peers.versions(DBT_POSTGRES) + f", threads {args.threads}"
    meta["cpu"] = f"{os.cpu_count()} cores"
    work = args.workdir or Path(tempfile.mkdtemp(prefix="gristmill-pg-transform-"))
    work.mkdir(parents=True, exist_ok=True)
    env: dict[str, str | None] = {
        "PYTHONDONTWRITEBYTECODE": None,
        "PYTHONPYCACHEPREFIX": str(work / "pycache"),
    }
    # Every step runs the code as it was at the start, whatever others edit meanwhile.
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO / "gristmill", work / "src" / "gristmill", ignore=ignore)
    env["PYTHONPATH"] = str(work / "src")
    meta["gristmill"] = f"source snapshot of {REPO / 'gristmill'} at {time.strftime('%Y-%m-%d %H:%M')}"
    generate(work, spec, threads=args.threads)
    write_raw(work / "raw.json", spec)
    loads = [os.getloadavg()[0]]
    try:
        print("\nraw statements over one psycopg connection")
        with database(args.url, "raw") as url:
            raw_steps(work, spec, url, results, env)
        loads.append(os.getloadavg()[0])
        print("gristmill, postgres engine")
        with database(args.url, "gm") as url:
            gristmill_steps(work / "gristmill", spec, url, results, env)
        loads.append(os.getloadavg()[0])
        if use_dbt:
            print("dbt-postgres")
            with database(args.url, "dbt") as url:
                dbt_steps(work / "dbt", spec, url, work / "data", results, args.threads)
            loads.append(os.getloadavg()[0])
        meta["load average (1 min)"] = f"{min(loads):.1f}-{max(loads):.1f}"
        report(spec, results, meta)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
