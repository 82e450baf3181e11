"""`gristmill serve` as a real process on loopback, driven by httpx: the tables data API.

Proven against a project WITHOUT schedules (which serves): the catalog; the filter grammar,
select and order; an injection corpus that never succeeds (a 400 or zero rows, never a 500, and
the table intact); decimals and 64-bit integers exactly; CSV, Parquet and Arrow equal to the JSON
pages; ETag/304 and a new ETag once a run publishes; keyset pages that neither skip nor repeat a
row while a run publishes mid-way, the new version visible to a fresh request without a restart;
``as_of`` reading an older snapshot.
"""

from __future__ import annotations

import io
import os
import re
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from tests.conftest import write_files

GRISTMILL = str(Path(sys.executable).parent / "gristmill")
ROWS = 250

FEED = """
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

from gristmill.sources import source

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = pa.schema(
    [("id", pa.int64()), ("amount", pa.decimal128(18, 2)), ("big", pa.int64()),
     ("country", pa.string()), ("name", pa.string()), ("note", pa.string())]
)


@source(schema=SCHEMA)
def items():
    generation = int((ROOT / "generation.txt").read_text())
    countries = ["DE", "FR", "US", "JP"]
    yield [
        {
            "id": i,
            "amount": Decimal(f"{i * 1000 + generation}.{i % 100:02d}"),
            "big": 9007199254740993 + i,
            "country": countries[i % 4],
            "name": f"rock {i}" if i % 10 == 0 else f"song {i}",
            "note": None if i % 7 == 0 else "x",
        }
        for i in range(ROWS + generation)
    ]
"""

FILES = {
    "gristmill.toml": 'name = "shop"\n',
    "sources/feed.yml": "kind: python\nmodule: pipelines/feed.py\ntables:\n  items: {}\n",
    "pipelines/feed.py": FEED.replace("ROWS", str(ROWS)),
    "models/marts/items.sql": "-- description: Items for sale\nselect * from raw.feed__items\n",
    "models/marts/constants.sql": "select 42 as answer\n",
    "generation.txt": "0",
}


def _run(root: Path) -> None:
    done = subprocess.run(
        [GRISTMILL, "run", "--project", str(root)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr


class Server:
    def __init__(
        self,
        root: Path,
        pattern: str = r"Serving (http://127\.0\.0\.1:\d+)",
        args: tuple[str, ...] = ("--no-auth",),
        log: str = "serve.log",
    ) -> None:
        self.log = root / log
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [GRISTMILL, "serve", "--project", str(root), "--port", "0", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + 60
        while True:
            found = re.search(pattern, self.log.read_text(errors="replace"))
            if found:
                self.url = found.group(1)
                break
            assert self.process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.1)
        self.client = httpx.Client(base_url=self.url, timeout=60)

    def stop(self) -> None:
        self.client.close()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Server]]:
    root = write_files(tmp_path_factory.mktemp("serve"), FILES)
    _run(root)
    server = Server(root)
    try:
        yield root, server
    finally:
        server.stop()


def _rows(server: Server, path: str, **params: str) -> list[dict[str, object]]:
    answer = server.client.get(path, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()["rows"]  # type: ignore[no-any-return]


def test_a_project_without_schedules_serves_its_catalog(served: tuple[Path, Server]) -> None:
    _, server = served
    assert server.client.get("/healthz").json()["status"] == "ok"
    tables = {f"{t['schema']}.{t['name']}": t for t in server.client.get("/api/v1/tables").json()["tables"]}
    assert {"raw.feed__items", "marts.items"} <= set(tables)
    items = tables["marts.items"]
    assert items["description"] == "Items for sale"
    assert items["rows"] == ROWS and items["built_at"]
    types = {c["name"]: c["type"] for c in items["columns"]}
    assert types["amount"] == "DECIMAL(18,2)" and types["big"] == "BIGINT"
    assert server.client.get("/docs").status_code == 200
    paths = server.client.get("/openapi.json").json()["paths"]
    params = {p["name"] for p in paths["/api/v1/tables/marts/items"]["get"]["parameters"]}
    assert {"amount", "country", "select", "order", "cursor"} <= params
    metrics = server.client.get("/metrics")
    # no schedules, no scheduler: its gauge is left out rather than claiming one runs
    assert metrics.status_code == 200 and "gristmill_runs_total" in metrics.text
    assert "gristmill_scheduler_up" not in metrics.text


def test_a_cursor_outlives_its_server(served: tuple[Path, Server]) -> None:
    """Cursors are signed with the project's secret (state folder, 0600), not the process's: a
    second server of the project, or the same one restarted, carries on a walk."""
    root, server = served
    first = server.client.get("/api/v1/tables/marts/items", params={"limit": "10", "order": "id"}).json()
    other = Server(root, log="serve-other.log")
    try:
        following = other.client.get(first["next"].replace(server.url, other.url))
        assert following.status_code == 200, following.text
        assert [r["id"] for r in following.json()["rows"]] == [str(i) for i in range(10, 20)]
    finally:
        other.stop()
    secret = root / ".gristmill" / "cursor.secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert secret.read_text().strip() not in (root / "serve-other.log").read_text()


def test_filters_select_and_order(served: tuple[Path, Server]) -> None:
    _, server = served
    path = "/api/v1/tables/marts/items"
    rows = _rows(server, path, id="lt.20", country="in.(DE,FR)", select="id,country", order="id.desc")
    assert [r["id"] for r in rows] == [str(i) for i in range(19, -1, -1) if i % 4 in (0, 1)]
    assert set(rows[0]) == {"id", "country"}
    assert [r["id"] for r in _rows(server, path, name="ilike.*ROCK 1*", select="id", order="id")] == [
        "10",
        "100",
        "110",
        "120",
        "130",
        "140",
        "150",
        "160",
        "170",
        "180",
        "190",
    ]
    both = _rows(
        server, path, **{"or": "(id.eq.1,and(id.gt.247,note.not.is.null))", "select": "id", "order": "id"}
    )
    assert [r["id"] for r in both] == ["1", "248", "249"]
    assert len(_rows(server, path, note="is.null", limit="1000")) == len(range(0, ROWS, 7))
    assert len(_rows(server, path, id="not.gte.5")) == 5
    assert _rows(server, path, amount="gte.249000.49", select="id") == [{"id": "249"}]
    for params, named in [
        ({"nope": "eq.1"}, "nope"),
        ({"id": "gt.one"}, "id"),
        ({"amount": "eq.1e999x"}, "amount"),
        ({"select": "id,nope"}, "select"),
        ({"order": "id.sideways"}, "order"),
        ({"id": "between.1"}, "id"),
        ({"limit": "-1"}, "limit"),
        ({"cursor": "forged.cursor"}, "cursor"),
    ]:
        answer = server.client.get(path, params=params)
        assert answer.status_code == 400, (params, answer.text)
        assert answer.json()["parameter"] == named


INJECTIONS = [
    "1; DROP TABLE marts.items",
    "1 OR 1=1",
    "1) OR (1=1",
    "'; DELETE FROM marts.items; --",
    "DE' OR '1'='1",
    'x" OR "1"="1',
    "(SELECT 1)",
    "1 UNION SELECT * FROM _gristmill.versions",
    "read_csv('/etc/passwd')",
    "$1",
    "?",
    "%' --",
    "\x00",
    "1/0",
]


def test_injection_corpus_never_succeeds(served: tuple[Path, Server]) -> None:
    _, server = served
    path = "/api/v1/tables/marts/items"
    successes = []
    for payload in INJECTIONS:
        for params in (
            {"id": f"eq.{payload}"},
            {"country": f"eq.{payload}"},
            {"country": f"in.({payload})"},
            {"name": f"like.{payload}"},
            {"or": f"(id.eq.{payload})"},
            {"select": payload},
            {"order": payload},
            {payload: "eq.1"},
            {"as_of": payload},
        ):
            answer = server.client.get(path, params=params)
            assert answer.status_code != 500, (params, answer.text)
            if answer.status_code == 200 and answer.json()["rows"]:
                successes.append(params)
    assert successes == []
    assert len(_rows(server, path, limit="1000")) == ROWS  # nothing was dropped or deleted


def test_decimals_and_big_integers_round_trip_exactly(served: tuple[Path, Server]) -> None:
    _, server = served
    page = server.client.get("/api/v1/tables/marts/items", params={"id": "eq.123"}).json()
    assert (
        page["schema"]["amount"]["type"] == ["string", "null"]
        and page["schema"]["amount"]["format"] == "decimal"
    )
    assert page["schema"]["big"]["format"] == "int64"
    row = page["rows"][0]
    assert Decimal(row["amount"]) == Decimal("123000.23") and row["amount"] == "123000.23"
    assert int(row["big"]) == 9007199254740993 + 123  # above 2**53: a double would round it


def test_csv_parquet_and_arrow_hold_the_json_rows(served: tuple[Path, Server]) -> None:
    _, server = served
    path = "/api/v1/tables/marts/items"
    expected = _rows(server, path, order="id", limit="1000", select="id,amount,big")
    parquet = pq.read_table(
        io.BytesIO(
            server.client.get(path + ".parquet", params={"order": "id", "select": "id,amount,big"}).content
        )
    )
    arrow = ipc.open_stream(
        server.client.get(
            path,
            params={"order": "id", "select": "id,amount,big"},
            headers={"Accept": "application/vnd.apache.arrow.stream"},
        ).content
    ).read_all()
    csv = pacsv.read_csv(
        io.BytesIO(
            server.client.get(path + ".csv", params={"order": "id", "select": "id,amount,big"}).content
        ),
        convert_options=pacsv.ConvertOptions(column_types={"amount": pa.string()}),
    )
    for table in (parquet, arrow):
        assert table.schema.field("amount").type == pa.decimal128(18, 2)
        assert [str(v) for v in table.column("amount").to_pylist()] == [r["amount"] for r in expected]
        assert [str(v) for v in table.column("big").to_pylist()] == [r["big"] for r in expected]
    assert csv.column("amount").to_pylist() == [r["amount"] for r in expected]
    page = server.client.get(path + ".csv", params={"limit": "10", "order": "id"})
    assert page.headers["gristmill-truncated"] == "true" and "cursor=" in page.headers["gristmill-next"]


def test_count_is_capped_and_only_on_request(served: tuple[Path, Server]) -> None:
    _, server = served
    path = "/api/v1/tables/marts/items"
    assert "count" not in server.client.get(path).json()
    assert server.client.get(path, params={"count": "exact", "country": "eq.DE"}).json()[
        "count"
    ] == ROWS // 4 + 1 - (ROWS % 4 == 0)
    assert server.client.get(path, params={"count": "estimated"}).json()["count"] == ROWS


def test_sixteen_clients_at_once_get_their_own_answers(served: tuple[Path, Server]) -> None:
    _, server = served

    def ask(i: int) -> tuple[int, list[str]]:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            fmt = ".arrow" if i % 4 == 3 else ""
            answer = client.get(f"/api/v1/tables/marts/items{fmt}", params={"id": f"lt.{i}", "order": "id"})
            if fmt:
                return answer.status_code, [
                    str(v) for v in ipc.open_stream(answer.content).read_all()["id"].to_pylist()
                ]
            return answer.status_code, [r["id"] for r in answer.json()["rows"]]

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(ask, range(64)))
    assert answers == [(200, [str(n) for n in range(i)]) for i in range(64)]


def test_pages_never_skip_or_repeat_while_a_run_publishes(served: tuple[Path, Server]) -> None:
    root, server = served
    path = "/api/v1/tables/marts/items"
    first = server.client.get(path, params={"limit": "40", "order": "country.desc", "select": "id,amount"})
    etag = first.headers["etag"]
    untouched = server.client.get("/api/v1/tables/marts/constants").headers["etag"]
    assert (
        server.client.get(
            path,
            params={"limit": "40", "order": "country.desc", "select": "id,amount"},
            headers={"If-None-Match": etag},
        ).status_code
        == 304
    )
    body = first.json()
    seen = [r["id"] for r in body["rows"]]
    amounts = {r["amount"] for r in body["rows"]}
    (root / "generation.txt").write_text("5")  # the next run publishes 5 more rows, other amounts
    _run(root)
    while body["next"]:
        assert body["truncated"] is True
        body = server.client.get(body["next"]).json()
        seen += [r["id"] for r in body["rows"]]
        amounts |= {r["amount"] for r in body["rows"]}
    assert body["truncated"] is False
    assert sorted(seen, key=int) == [str(i) for i in range(ROWS)]  # every row once, of the old version
    assert all(a.split(".")[0].endswith("000") or a.startswith("0.") for a in amounts)
    fresh = server.client.get(path, params={"limit": "1000"}).json()
    assert len(fresh["rows"]) == ROWS + 5  # the new version, without a restart
    again = server.client.get(
        path,
        params={"limit": "40", "order": "country.desc", "select": "id,amount"},
        headers={"If-None-Match": etag},
    )
    assert again.status_code == 200 and again.headers["etag"] != etag
    # the run did not publish a new version of marts.constants: its cached answer stands
    unchanged = server.client.get("/api/v1/tables/marts/constants", headers={"If-None-Match": untouched})
    assert unchanged.status_code == 304
    old = server.client.get(path, params={"limit": "1000", "as_of": body["snapshot"]}).json()
    assert len(old["rows"]) == ROWS  # time travel to the snapshot the pages read
    bad = server.client.get(path, params={"as_of": "not-a-time"})
    assert bad.status_code == 400 and "as_of" in bad.json()["error"]


@pytest.mark.slow
def test_serve_runs_the_schedules_and_serves_what_they_publish(tmp_path: Path) -> None:
    files = {**FILES, "gristmill.toml": 'name = "shop"\n\n[schedules.hook]\nwebhook = true\n'}
    root = write_files(tmp_path, files)
    _run(root)
    server = Server(root, r"Scheduler running: hook, (http://127\.0\.0\.1:\d+)")
    try:
        path = "/api/v1/tables/marts/items"
        assert server.client.get(path, params={"count": "exact"}).json()["count"] == ROWS
        (root / "generation.txt").write_text("3")
        assert server.client.post("/hooks/hook").status_code == 202
        deadline = time.monotonic() + 120
        while server.client.get(path, params={"count": "exact"}).json()["count"] != ROWS + 3:
            assert time.monotonic() < deadline, server.log.read_text()
            time.sleep(0.5)
    finally:
        server.stop()
