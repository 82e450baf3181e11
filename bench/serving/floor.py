"""The floor: a hand-written FastAPI + DuckDB endpoint, as a user would write it in an afternoon.

    python -m bench.serving.floor EVENTS.duckdb PORT

``GET /ceiling?page=N``: a ready page, no query (the ceiling of the load generator and the
framework); ``GET /events?country=DE&status=paid&limit=100[&cursor=…]``: bound parameters, an opaque keyset
cursor (the last id, base64), ``next`` as a URL; ``GET /events.arrow``: the whole table as an
Arrow IPC stream, record batch by record batch. One uvicorn worker, a DuckDB cursor per thread."""

from __future__ import annotations

import base64
import io
import sys
import threading
from collections.abc import Iterator
from urllib.parse import urlencode

import duckdb
import orjson
import pyarrow as pa
import uvicorn
from fastapi import FastAPI, Response
from fastapi.responses import StreamingResponse

PAGE = (
    "SELECT id, ts, customer_id, country, status, amount FROM events"
    " WHERE country = ? AND status = ? AND id > ? ORDER BY id LIMIT ?"
)


def create(path: str) -> FastAPI:
    app = FastAPI()
    database = duckdb.connect(path, read_only=True)
    local = threading.local()

    def cursor() -> duckdb.DuckDBPyConnection:
        if not hasattr(local, "cursor"):
            local.cursor = database.cursor()
        return local.cursor

    @app.get("/events")
    def events(country: str, status: str, limit: int = 100, cursor_: str | None = None) -> Response:
        limit = max(1, min(limit, 1000))
        after = int(base64.urlsafe_b64decode(cursor_)) if cursor_ else 0
        rows = cursor().execute(PAGE, [country, status, after, limit]).fetchall()
        page = [
            {
                "id": r[0],
                "ts": r[1].isoformat(),
                "customer_id": r[2],
                "country": r[3],
                "status": r[4],
                "amount": str(r[5]),
            }
            for r in rows
        ]
        following = None
        if len(rows) == limit:
            token = base64.urlsafe_b64encode(str(rows[-1][0]).encode()).decode()
            following = "/events?" + urlencode(
                {"country": country, "status": status, "limit": limit, "cursor_": token}
            )
        return Response(orjson.dumps({"rows": page, "next": following}), media_type="application/json")

    ready = orjson.dumps(
        [
            {
                "id": n,
                "ts": "2024-01-01T00:00:30",
                "customer_id": 8352,
                "country": "DE",
                "status": "paid",
                "amount": "871.47",
            }
            for n in range(100)
        ]
    )

    @app.get("/ceiling")
    def ceiling(page: int = 0) -> Response:
        """A ready 100-row page and its next link, no query: what the load generator and the
        framework can do on this machine, the ceiling of every case."""
        body = b'{"rows":' + ready + b',"next":"/ceiling?page=' + str(page + 1).encode() + b'"}'
        return Response(body, media_type="application/json")

    @app.get("/events.arrow")
    def arrow() -> StreamingResponse:
        reader = cursor().execute("SELECT * FROM events").fetch_record_batch(122_880)

        def stream() -> Iterator[bytes]:
            sink = io.BytesIO()
            with pa.ipc.new_stream(sink, reader.schema) as writer:
                for batch in reader:
                    writer.write_batch(batch)
                    yield sink.getvalue()
                    sink.seek(0)
                    sink.truncate()
            yield sink.getvalue()

        return StreamingResponse(stream(), media_type="application/vnd.apache.arrow.stream")

    return app


if __name__ == "__main__":
    uvicorn.run(create(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
