"""Serving benchmark: filtered 100-row pages of a 1M-row table under 16 concurrent clients, and
the whole table as Arrow, on loopback, everything measured in one invocation.

    .venv/bin/python -m bench.serving [--rows 1000000] [--clients 16] [--seconds 15]
                                      [--skip-datasette] [--skip-gristmill]

Cases (each its own server process, all started first; the load generator is this process). The
cases take turns, ``--rounds`` times, so a noisy neighbour on the machine weighs on each alike:

* **floor**: a hand-written FastAPI + DuckDB endpoint (bench/serving/floor.py);
* **ceiling**: the same server answering a ready page without a query: what this load generator
  and FastAPI reach on this machine, so a case near it is bounded by the client, not the server;
* **datasette**: Datasette 0.65.5 over a SQLite copy with an index on (country, status), its
  table view as shipped and with ``_nocount=1`` (no filtered count per page);
* **gristmill**: ``gristmill serve`` with an API key, ``GET /api/v1/tables/bench/events?country=eq.DE
  &status=eq.paid&limit=100&order=id`` following ``next``; skipped with the reason when the
  endpoint is not there (404) or the server does not start.

Targets (issue #21): Gristmill at least 4x Datasette's requests/s, at most 1.2x the floor's p99, its Arrow
download of the whole table within 1.5x DuckDB's own Arrow export time."""

from __future__ import annotations

import argparse
import socket
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import duckdb
import httpx
import pyarrow as pa

from bench.serving import servers
from bench.serving.data import make_duckdb, make_sqlite
from bench.serving.load import Case, Figures, NextOf, Refused, combine, next_in_body, wrk_available, wrk_turn

ARROW = "application/vnd.apache.arrow.stream"


def _rows(body: dict[str, Any]) -> int:
    for key in ("rows", "data", "items"):
        if isinstance(body.get(key), list):
            return len(body[key])
    return -1


def _gristmill_next(body: dict[str, Any], response: httpx.Response) -> str | None:
    """``next`` as a URL, or as a cursor token for the ``cursor`` parameter (the contract leaves
    either open until the endpoint lands)."""
    following = body.get("next")
    if isinstance(following, dict):
        following = following.get("url") or following.get("cursor")
    if not following:
        return None
    if following.startswith(("/", "http", "?")):
        return urljoin(str(response.url), following)
    parts = urlsplit(str(response.url))
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "cursor"] + [("cursor", following)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def duckdb_arrow_seconds(duck: Path, repeat: int = 3) -> float:
    """DuckDB's own export: the whole table as Arrow record batches, written as an IPC stream
    (what a download must also do), in this process; best of ``repeat``."""
    best = float("inf")
    with duckdb.connect(str(duck), read_only=True) as con:
        for _ in range(repeat):
            started = time.perf_counter()
            reader = con.execute("SELECT * FROM events").fetch_record_batch(122_880)
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, reader.schema) as writer:
                for batch in reader:
                    writer.write_batch(batch)
            best = min(best, time.perf_counter() - started)
    return best


def lake_arrow_seconds(project: Path, repeat: int = 3) -> float | str:
    """DuckDB's own export of the table ``gristmill serve`` serves: the same lake files (Parquet
    under a DuckLake catalog, not the DuckDB file above), read in this process through the
    server's reader (DuckDB's record batches, no HTTP) and written as an IPC stream; best of
    ``repeat``. Decoding Parquet costs DuckDB more than scanning its own file format."""
    from sqlglot import exp

    from gristmill.workspace import Workspace

    reader = Workspace(project).reader("prod")
    best = float("inf")
    try:
        for _ in range(repeat):
            started = time.perf_counter()
            with reader.pin() as pinned:
                batches = pinned.read(exp.select(exp.Star()).from_(exp.table_("events", db="bench")))
                sink = pa.BufferOutputStream()
                with pa.ipc.new_stream(sink, batches.schema) as writer:
                    for batch in batches:
                        writer.write_batch(batch)
            best = min(best, time.perf_counter() - started)
    except Exception as err:  # the bench reports, it does not stop
        return f"{type(err).__name__}: {err}"
    finally:
        reader.close()
    return best


def loopback_seconds(size: int, repeat: int = 3) -> float:
    """The socket's ceiling: ``size`` bytes (the Arrow stream's size) from one Python thread to
    another over one loopback TCP connection, received into a buffer; best of ``repeat``."""
    payload = b"\x00" * size
    best = float("inf")
    for _ in range(repeat):
        with socket.create_server(("127.0.0.1", 0)) as server:
            sender = threading.Thread(target=_send_once, args=(server, payload))
            sender.start()
            started = time.perf_counter()
            with socket.create_connection(server.getsockname()) as sock:
                view, done = memoryview(bytearray(size)), 0
                while done < size:
                    got = sock.recv_into(view[done:], min(1 << 20, size - done))
                    if not got:
                        break
                    done += got
            best = min(best, time.perf_counter() - started)
            sender.join()
    return best


def _send_once(server: socket.socket, payload: bytes) -> None:
    connection, _ = server.accept()
    with connection:
        connection.sendall(payload)


def download_seconds(
    url: str, rows: int, headers: dict[str, str], repeat: int = 3, compress: str | None = None
) -> float | str:
    """The whole table over HTTP as an Arrow stream, read to the end and decoded; best of
    ``repeat``; or why not. The client is httpx as a Python program would use it (its reads are
    64 KiB), the body joined once and decoded in place (``pa.py_buffer``: no second copy)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        asked = {"gristmill-arrow-compression": compress} if compress else {}
        with httpx.stream("GET", url, headers={"accept": ARROW, **asked, **headers}, timeout=300) as response:
            if response.status_code != 200:
                return f"HTTP {response.status_code}: {response.read()[:200]!r}"
            data = b"".join(response.iter_bytes())
        table = pa.ipc.open_stream(pa.py_buffer(data)).read_all()
        best = min(best, time.perf_counter() - started)
        if table.num_rows != rows:
            return f"{table.num_rows} rows, not {rows}"
    return best


def _line(name: str, figures: Figures | str) -> None:
    if isinstance(figures, str):
        print(f"  {name:<40} skipped: {figures}", flush=True)
        return
    print(
        f"  {name:<40} {figures.per_second:7.1f} req/s   p50 {figures.p50_ms:6.1f} ms   "
        f"p99 {figures.p99_ms:7.1f} ms   ({figures.requests} requests, {figures.errors} errors)",
        flush=True,
    )


LABELS = {
    "floor": "floor: FastAPI + DuckDB",
    "ceiling": "ceiling: FastAPI, a ready page, no query",
    "datasette": "datasette: table view (defaults)",
    "datasette_nocount": "datasette: table view, _nocount=1",
    "gristmill": "gristmill serve (with a key)",
    "gristmill_uncached": "gristmill serve, page cache off",
}


def _case(
    cases: dict[str, Case | str], name: str, base: str | None, first: str, next_of: NextOf, **kw: Any
) -> None:
    """Walk the case's first pages; a server that did not start or refuses is left out, saying why."""
    if base is None:
        cases[name] = "the server did not start"
        return
    case = Case(base, first, next_of, _rows, **kw)
    try:
        case.prepare()
        cases[name] = case
    except Refused as why:
        said = str(why)
        cases[name] = (
            f"the data API is not in this build ({said}); measure it once it lands"
            if said.startswith("404")
            else said
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.serving")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=15.0, help="per case, split over the rounds")
    parser.add_argument("--rounds", type=int, default=3, help="the cases take turns this many times")
    parser.add_argument(
        "--client",
        choices=("wrk", "python"),
        default="wrk" if wrk_available() else "python",
        help="wrk (Debian package; the default when installed) or the asyncio httpx client",
    )
    parser.add_argument("--skip-datasette", action="store_true")
    parser.add_argument("--skip-gristmill", action="store_true")
    parser.add_argument(
        "--skip-uncached", action="store_true", help="no second gristmill server with its page cache off"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    duck, sqlite = work / "events.duckdb", work / "events.db"
    print(f"[setup] {args.rows:,} rows into {work} ...", flush=True)
    make_duckdb(duck, args.rows)
    cases: dict[str, Case | str] = {}
    arrow: dict[str, float | str] = {"duckdb": duckdb_arrow_seconds(duck)}
    with ExitStack() as stack:
        base = stack.enter_context(servers.running(servers.floor_command(duck), "/docs"))
        _case(cases, "floor", base, "/events?country=DE&status=paid&limit=100", next_in_body("next"))
        _case(cases, "ceiling", base, "/ceiling?page=0", next_in_body("next"))
        if base:
            arrow["floor"] = download_seconds(base + "/events.arrow", args.rows, {})
        if not args.skip_datasette:
            why = servers.ensure_datasette()
            if why is None:
                make_sqlite(duck, sqlite)
                base = stack.enter_context(
                    servers.running(servers.datasette_command(sqlite), "/-/versions.json")
                )
                first = "/events/events.json?country=DE&status=paid&_size=100"
                _case(cases, "datasette", base, first, next_in_body("next_url"))
                _case(cases, "datasette_nocount", base, first + "&_nocount=1", next_in_body("next_url"))
            else:
                cases["datasette"] = why
        if not args.skip_gristmill:
            project, key = servers.gristmill_project(work / "project", args.rows)
            headers = {"authorization": f"Bearer {key}"} if key else {}
            base = stack.enter_context(
                servers.running(servers.gristmill_command(project), "/healthz", cwd=project)
            )
            first = "/api/v1/tables/bench/events?country=eq.DE&status=eq.paid&limit=100&order=id"
            _case(cases, "gristmill", base, first, _gristmill_next, headers=headers)
            if isinstance(cases["gristmill"], Case) and base:
                arrow["gristmill"] = download_seconds(
                    base + "/api/v1/tables/bench/events", args.rows, headers
                )
                arrow["gristmill, lz4 IPC bodies"] = download_seconds(
                    base + "/api/v1/tables/bench/events", args.rows, headers, compress="lz4"
                )
                arrow["duckdb, the lake's table"] = lake_arrow_seconds(project)
            if not args.skip_uncached:  # the same server with its page cache off: the cache's share
                base = stack.enter_context(
                    servers.running(
                        servers.gristmill_command(project),
                        "/healthz",
                        cwd=project,
                        env={"GRISTMILL_PAGE_CACHE_MB": "0"},
                    )
                )
                _case(cases, "gristmill_uncached", base, first, _gristmill_next, headers=headers)
        live = {name: case for name, case in cases.items() if isinstance(case, Case)}
        print(
            f"[paging] {args.client}, {args.clients} clients, {args.seconds:g} s per case in "
            f"{args.rounds} turns, country=DE & status=paid, 100-row pages",
            flush=True,
        )
        for _ in range(args.rounds):
            for case in live.values():
                if args.client == "wrk":
                    case.turns.append(wrk_turn(case, args.clients, args.seconds / args.rounds, work))
                else:
                    case.load(args.clients, args.seconds / args.rounds)
    results = {name: _figures(case) for name, case in cases.items()}
    for name, figures in results.items():
        _line(LABELS.get(name, name), figures)
    print(f"[arrow] the whole table ({args.rows:,} rows) as an Arrow IPC stream, best of 3", flush=True)
    if isinstance(arrow.get("gristmill"), float):
        arrow["loopback socket, the same bytes"] = loopback_seconds(55_508_680 * args.rows // 1_000_000)
    lake = arrow.get("duckdb, the lake's table")
    for name, seconds in arrow.items():
        shown = f"{seconds:.3f} s" if isinstance(seconds, float) else f"skipped: {seconds}"
        ratio = f"  {seconds / arrow['duckdb']:.2f}x DuckDB's own" if isinstance(seconds, float) else ""  # type: ignore[operator]
        if isinstance(seconds, float) and isinstance(lake, float):
            ratio += f", {seconds / lake:.2f}x DuckDB's own of the lake's table"
        print(f"  {name:<40} {shown}{ratio}", flush=True)
    _ratios(results)


def _figures(case: Case | str) -> Figures | str:
    if isinstance(case, str):
        return case
    return combine(case.turns) if case.turns else case.tally.figures()


def _ratios(results: dict[str, Figures | str]) -> None:
    figures = {k: v for k, v in results.items() if isinstance(v, Figures)}
    print("[ratios] same run", flush=True)
    floor = figures.get("floor")
    for name, other in figures.items():
        if name in ("floor", "ceiling") or floor is None:
            continue
        print(
            f"  {name:<44} req/s {other.per_second / floor.per_second:.2f}x the floor, "
            f"p99 {other.p99_ms / floor.p99_ms:.2f}x the floor's",
            flush=True,
        )
    gristmill, datasette = figures.get("gristmill"), figures.get("datasette")
    if gristmill and datasette:
        print(
            f"  gristmill / datasette req/s: {gristmill.per_second / datasette.per_second:.2f}x (target: 4x)"
        )
    uncached = figures.get("gristmill_uncached")
    if uncached and datasette:
        ratio = uncached.per_second / datasette.per_second
        print(f"  gristmill, page cache off / datasette req/s: {ratio:.2f}x")
    if uncached and gristmill:
        share = 1 - uncached.per_second / gristmill.per_second
        print(f"  the page cache's share of gristmill's req/s: {share:.0%}")
    if gristmill is None:
        print("  gristmill: not measured (see above); targets: 4x Datasette's req/s, 1.2x the floor's p99")
