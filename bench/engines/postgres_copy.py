"""Arrow into and out of PostgreSQL, 1,000,000 rows x 5 columns (bigint, float8, text, timestamp,
bool): the ways the postgres engine could move record batches, timed against a hand-written binary
COPY of the same Arrow data (a numpy encoder of COPY's binary format, fed to psycopg's COPY).

    .venv/bin/python -m bench.engines.postgres_copy [postgresql://postgres@127.0.0.1:5432/postgres]

In: pgpq's encoder (Arrow -> COPY binary, in Rust) through psycopg's ``COPY … FROM STDIN (FORMAT
BINARY)``, the engine's path; ADBC's ``adbc_ingest`` (its own libpq connection). Out: psycopg
rows turned into Arrow columns, the engine's path; ADBC's ``fetch_arrow_table``. Each figure is the
best of three rounds. The database is created and dropped here."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable

import numpy as np
import psycopg
import pyarrow as pa

ROWS = 1_000_000
CREATE = "CREATE TABLE t (id bigint, amount float8, name text, at timestamp, flag bool)"
_EPOCH_2000_US = 946_684_800_000_000


def data(rows: int = ROWS) -> pa.Table:
    ids = np.arange(rows, dtype=np.int64)
    return pa.table(
        {
            "id": ids,
            "amount": ids * 0.5,
            "name": pa.array([f"name_{i}" for i in range(rows)]),
            "at": pa.array(ids * 1_000_000 + 1_600_000_000_000_000, pa.timestamp("us")),
            "flag": pa.array(ids % 2 == 0),
        }
    )


def handwritten(batch: pa.RecordBatch) -> bytes:
    """Rows of ``batch`` (no NULLs) in COPY's binary tuple format, built with numpy: a fixed
    prefix (field count, id, amount, name's length), the name's bytes, a fixed suffix (at, flag)."""
    n = batch.num_rows
    name = batch.column("name")
    offsets = np.frombuffer(name.buffers()[1], np.int32, n + 1, name.offset * 4)
    lengths = np.diff(offsets)
    prefix = np.zeros(n, np.dtype([("c", ">i2"), ("l1", ">i4"), ("id", ">i8"), ("l2", ">i4"),
                                   ("amount", ">f8"), ("l3", ">i4")]))  # fmt: skip
    prefix["c"], prefix["l1"], prefix["l2"], prefix["l3"] = 5, 8, 8, lengths
    prefix["id"] = batch.column("id").to_numpy()
    prefix["amount"] = batch.column("amount").to_numpy()
    suffix = np.zeros(n, np.dtype([("l4", ">i4"), ("at", ">i8"), ("l5", ">i4"), ("flag", "u1")]))
    suffix["l4"], suffix["l5"] = 8, 1
    suffix["at"] = batch.column("at").cast(pa.int64()).to_numpy() - _EPOCH_2000_US
    suffix["flag"] = batch.column("flag").to_numpy(zero_copy_only=False)
    fixed = prefix.itemsize + suffix.itemsize
    starts = np.zeros(n + 1, np.int64)
    np.cumsum(lengths + fixed, out=starts[1:])
    out = np.empty(starts[-1], np.uint8)
    out[(starts[:-1, None] + np.arange(prefix.itemsize)).ravel()] = prefix.view(np.uint8)
    text = np.frombuffer(name.buffers()[2], np.uint8, offsets[-1] - offsets[0], offsets[0])
    out[
        np.repeat(starts[:-1] + prefix.itemsize - offsets[:-1], lengths) + np.arange(offsets[0], offsets[-1])
    ] = text
    tail = starts[:-1] + prefix.itemsize + lengths
    out[(tail[:, None] + np.arange(suffix.itemsize)).ravel()] = suffix.view(np.uint8)
    return out.tobytes()


def copy_in(url: str, table: pa.Table, encode: Callable[[pa.RecordBatch], bytes], header: bytes) -> None:
    with psycopg.connect(url) as con:
        con.execute("DROP TABLE IF EXISTS t")
        con.execute(CREATE)
        with con.cursor().copy("COPY t FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(header)
            for batch in table.to_batches(max_chunksize=65_536):
                copy.write(encode(batch))
            copy.write(b"\xff\xff")


def pgpq_in(url: str, table: pa.Table) -> None:
    from pgpq import ArrowToPostgresBinaryEncoder

    encoder = ArrowToPostgresBinaryEncoder(table.schema)
    with psycopg.connect(url) as con:
        con.execute("DROP TABLE IF EXISTS t")
        con.execute(CREATE)
        with con.cursor().copy("COPY t FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(encoder.write_header())
            for batch in table.to_batches(max_chunksize=65_536):
                copy.write(encoder.write_batch(batch))
            copy.write(encoder.finish())


def adbc_in(url: str, table: pa.Table) -> None:
    import adbc_driver_postgresql.dbapi as adbc

    with adbc.connect(url) as con, con.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS t")
        cur.execute(CREATE)
        cur.adbc_ingest("t", table, mode="append")
        con.commit()


def psycopg_out(url: str) -> pa.Table:
    with psycopg.connect(url, autocommit=True) as con:
        cur = con.cursor(binary=True)
        cur.execute("SELECT * FROM t")
        names = [d.name for d in cur.description or ()]
        columns = list(zip(*cur.fetchall(), strict=True))
        return pa.table({n: pa.array(c) for n, c in zip(names, columns, strict=True)})


def adbc_out(url: str) -> pa.Table:
    import adbc_driver_postgresql.dbapi as adbc

    with adbc.connect(url) as con, con.cursor() as cur:
        cur.execute("SELECT * FROM t")
        return cur.fetch_arrow_table()


def best(run: Callable[[], object]) -> float:
    times = []
    for _ in range(3):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main(admin_url: str) -> None:
    database = f"gristmill_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {database}")
    url = admin_url.rsplit("/", 1)[0] + f"/{database}"
    try:
        table = data()
        header = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
        base = best(lambda: copy_in(url, table, handwritten, header))
        print(f"in   hand-written binary COPY     {base:6.2f} s  1.00x")
        for name, run in (("pgpq + psycopg COPY (engine)", pgpq_in), ("ADBC adbc_ingest", adbc_in)):
            took = best(lambda run=run: run(url, table))  # type: ignore[misc]
            print(f"in   {name:<28} {took:6.2f} s  {took / base:.2f}x")
        adbc = best(lambda: adbc_out(url))
        print(f"out  ADBC fetch_arrow_table       {adbc:6.2f} s  1.00x")
        took = best(lambda: psycopg_out(url))
        print(f"out  psycopg rows -> Arrow        {took:6.2f} s  {took / adbc:.2f}x")
    finally:
        with psycopg.connect(admin_url, autocommit=True) as con:
            con.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:5432/postgres")
