"""Loading 1,000,000 rows x 5 columns from Parquet into PostgreSQL: a Gristmill source against a
hand-written binary COPY of the same Arrow data.

    .venv/bin/python -m bench.engines.postgres_load [postgresql://postgres@127.0.0.1:5432/postgres]

The data is ``bench.engines.postgres_copy``'s (bigint, float8, text, timestamp, bool), written
once to a Parquet file. The floor reads that file with pyarrow, creates the table and streams it
through psycopg's ``COPY … FROM STDIN (FORMAT BINARY)`` with the numpy encoder of
``postgres_copy.handwritten``: nothing a loader could skip. Gristmill lands the same file as a
``files`` source of a project whose engine is ``postgres``: ``Workspace(root).run()`` in this
process (project load, plan, contract, load, version and run history included), and then the
whole ``gristmill run`` process (interpreter start and imports included). Each figure is the
best of three rounds, wall clock and this process's (or the child's) CPU; every round writes
into a database of its own, made and dropped here.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pyarrow.parquet as pq

from bench.engines.postgres_copy import CREATE, data, handwritten
from bench.transform.measure import run

REPO = Path(__file__).parents[2]
HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)


@contextmanager
def database(admin: str) -> Iterator[str]:
    name = f"gristmill_bench_load_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"'.encode())
    try:
        yield admin.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def by_hand(url: str, parquet: Path) -> int:
    table = pq.read_table(parquet)
    with psycopg.connect(url) as con:
        con.execute(CREATE.encode())
        with con.cursor().copy(b"COPY t FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(HEADER)
            for batch in table.to_batches(max_chunksize=65_536):
                copy.write(handwritten(batch))
            copy.write(b"\xff\xff")
        row = con.execute(b"SELECT count(*) FROM t").fetchone()
    return int(row[0]) if row else 0


def project(folder: Path, parquet: Path, url: str) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "sources").mkdir(parents=True)
    (folder / "gristmill.toml").write_text(f'name = "load"\n\n[engine]\nkind = "postgres"\nurl = "{url}"\n')
    (folder / "sources" / "src.yml").write_text(f"kind: files\ntables:\n  t: {{path: {parquet}}}\n")
    return folder


def by_gristmill(folder: Path) -> int:
    from gristmill.workspace import Workspace

    result = Workspace(folder).run()
    assert result.ok, result
    return 0


def timed(action: Callable[[], object]) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    action()
    return time.perf_counter() - wall, time.process_time() - cpu


def best(rounds: list[tuple[float, float]]) -> tuple[float, float]:
    return min(w for w, _ in rounds), min(c for _, c in rounds)


def main(admin: str) -> None:
    work = Path(tempfile.mkdtemp(prefix="gristmill-pg-load-"))
    try:
        parquet = work / "t.parquet"
        pq.write_table(data(), parquet)
        import gristmill.workspace  # noqa: F401  (imports are not the in-process figure)

        hand, inproc, process = [], [], []
        for _ in range(3):
            with database(admin) as url:
                hand.append(timed(lambda url=url: by_hand(url, parquet)))  # type: ignore[misc]
            with database(admin) as url:
                folder = project(work / "p", parquet, url)
                inproc.append(timed(lambda folder=folder: by_gristmill(folder)))  # type: ignore[misc]
                with psycopg.connect(url) as con:
                    row = con.execute(b"SELECT count(*) FROM raw.src__t").fetchone()
                    assert row is not None and row[0] == 1_000_000, row
            with database(admin) as url:
                folder = project(work / "p", parquet, url)
                done = run([REPO / ".venv" / "bin" / "gristmill", "run"], folder)
                assert done.ok, done.failure()
                process.append((done.wall, done.cpu))
        base_wall, base_cpu = best(hand)
        print("1,000,000 rows x 5 columns (bigint, float8, text, timestamp, bool) from Parquet, best of 3")
        print(f"{'':<52}{'wall s':>8}{'cpu s':>8}{'wall':>8}{'cpu':>8}")
        rows = (
            ("hand-written binary COPY (pyarrow + numpy encoder)", hand),
            ("gristmill source, Workspace.run() in process", inproc),
            ("gristmill run, whole process", process),
        )
        for label, found in rows:
            wall, cpu = best(found)
            print(f"{label:<52}{wall:>8.2f}{cpu:>8.2f}{wall / base_wall:>7.2f}x{cpu / base_cpu:>7.2f}x")
        wall, _ = best(inproc)
        verdict = "met" if wall / base_wall <= 1.2 else "MISSED"
        print(f"\ntarget: gristmill source <= 1.2x the hand-written COPY (wall, in process): {verdict}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:5432/postgres")
