"""`gristmill serve` over a PostgreSQL engine: the same API, read live (no snapshots, so ``as_of``
is a clear 400), filters rendered for PostgreSQL, decimals and big integers exact."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import write_files
from tests.e2e.test_serve_tables import FILES, ROWS, Server, _run
from tests.support.pg_engine import postgres_database


@pytest.mark.services
def test_the_api_over_postgresql(tmp_path: Path) -> None:
    with postgres_database("gristmill_serve") as url:
        toml = f'name = "shop"\n\n[engine]\nkind = "postgres"\nurl = "{url}"\n'
        root = write_files(tmp_path, {**FILES, "gristmill.toml": toml})
        _run(root)
        server = Server(root)
        try:
            path = "/api/v1/tables/marts/items"
            page = server.client.get(path, params={"country": "in.(DE,FR)", "id": "lt.8", "order": "id.desc"})
            assert page.status_code == 200, page.text
            assert [r["id"] for r in page.json()["rows"]] == ["5", "4", "1", "0"]
            row = server.client.get(path, params={"id": "eq.123"}).json()["rows"][0]
            assert row["amount"] == "123000.23" and row["big"] == str(9007199254740993 + 123)
            walked, body = [], server.client.get(path, params={"limit": "60"}).json()
            walked += [r["id"] for r in body["rows"]]
            while body["next"]:
                body = server.client.get(body["next"]).json()
                walked += [r["id"] for r in body["rows"]]
            assert sorted(walked, key=int) == [str(i) for i in range(ROWS)]
            bad = server.client.get(path, params={"as_of": "1"})
            assert bad.status_code == 400 and "snapshots" in bad.json()["error"]
        finally:
            server.stop()
