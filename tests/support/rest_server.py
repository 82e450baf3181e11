"""A small REST API over the Chinook export, on 127.0.0.1, for the REST source's tests.

Routes are ``/<auth>/<style>/<Table>``:

- auth: ``open``, ``bearer`` (``Authorization: Bearer <TOKEN>``), ``apikey`` (``X-API-Key``
  header), ``query`` (``api_key`` parameter), ``basic`` (``USER``/``PASSWORD``), ``oauth`` (a token
  from ``POST /oauth/token`` with ``CLIENT_ID``/``CLIENT_SECRET``).
- style: ``all`` (the body is the whole list), ``cursor``, ``offset``, ``page``, ``link`` (Link
  header) or ``next`` (next URL in the body); pages hold ``limit``/``per_page`` records (100).
- ``updated_since=<iso>`` keeps rows whose ``InvoiceDate`` is at or past it.

Also ``/bad/html`` and ``/bad/json`` (status 200, not JSON), ``/echo/400`` (a 400 whose body
echoes the request's credentials) and ``/canned/<name>?page=N`` (pages a test sets). Faults can be
injected per path; every call is recorded with its time.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

CHINOOK_JSON = Path(__file__).parents[2] / "gristmill" / "project" / "demo" / "data" / "chinook_export.json"

TOKEN = "tok-9f8e7d6c5b4a"
API_KEY = "key-1a2b3c4d5e6f"
USER, PASSWORD = "reader", "pw-0a9b8c7d"
CLIENT_ID, CLIENT_SECRET = "gristmill-app", "cs-5e4d3c2b1a"
PAGE_SIZE = 100


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    at: float


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(body).encode(), headers or {})


class ApiServer:
    def __init__(self) -> None:
        self.data: dict[str, list[dict[str, Any]]] = json.loads(CHINOOK_JSON.read_text())
        self.calls: list[Call] = []
        self.faults: dict[str, list[Reply]] = {}
        self.canned: dict[str, list[Any]] = {}
        self.tokens: set[str] = set()
        self.tokens_issued = 0
        self.lock = threading.Lock()
        server = self
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
        self.http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)

    def start(self) -> ApiServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.http.shutdown()
        self.http.server_close()
        self.thread.join()

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.faults.clear()
            self.canned.clear()
            self.tokens.clear()
            self.tokens_issued = 0

    def inject(self, path: str, *replies: Reply) -> None:
        """The next calls to ``path`` get these replies, in order, before it works normally."""
        with self.lock:
            self.faults.setdefault(path, []).extend(replies)

    def calls_to(self, path: str) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.path == path]

    # -- routes ----------------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        parts = urlsplit(target)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        with self.lock:
            self.calls.append(Call(method, parts.path, query, headers, time.monotonic()))
            pending = self.faults.get(parts.path)
            if pending:
                return pending.pop(0)
        if method == "POST" and parts.path == "/oauth/token":
            return self._token(headers, dict(parse_qsl(body.decode())))
        segments = parts.path.strip("/").split("/")
        if segments[0] == "bad":
            return self._bad(segments[1])
        if segments[0] == "echo":
            return _json(400, {"error": f"rejected {headers.get('authorization')}", "query": query})
        if segments[0] == "canned":
            pages = self.canned[segments[1]]
            number = int(query.get("page", "1"))
            return _json(200, pages[number - 1] if number <= len(pages) else {"items": []})
        if len(segments) != 3 or segments[2] not in self.data:
            return _json(404, {"error": f"no route {parts.path}"})
        auth, style, table = segments
        if not self._authorised(auth, headers, query):
            return _json(401, {"error": "unauthorized"})
        rows = self.data[table]
        if "updated_since" in query:
            rows = [r for r in rows if r["InvoiceDate"] >= query["updated_since"]]
        return self._page(style, rows, parts.path, query)

    def _authorised(self, auth: str, headers: dict[str, str], query: dict[str, str]) -> bool:
        given = headers.get("authorization", "")
        if auth == "bearer":
            return given == f"Bearer {TOKEN}"
        if auth == "apikey":
            return headers.get("x-api-key") == API_KEY
        if auth == "query":
            return query.get("api_key") == API_KEY
        if auth == "basic":
            return given == "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if auth == "oauth":
            with self.lock:
                return given.removeprefix("Bearer ") in self.tokens
        return auth == "open"

    def _token(self, headers: dict[str, str], form: dict[str, str]) -> Reply:
        if form.get("grant_type") != "client_credentials":
            return _json(400, {"error": "unsupported_grant_type"})
        basic = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        by_form = form.get("client_id") == CLIENT_ID and form.get("client_secret") == CLIENT_SECRET
        if not (by_form or headers.get("authorization") == basic):
            return _json(401, {"error": "invalid_client"})
        with self.lock:
            self.tokens_issued += 1
            token = f"access-{self.tokens_issued}-{time.monotonic_ns()}"
            self.tokens.add(token)
        return _json(200, {"access_token": token, "token_type": "bearer", "expires_in": 3600})

    def revoke_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def _bad(self, what: str) -> Reply:
        if what == "html":
            page = (
                "<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Please log in</body></html>"
            )
            return Reply(200, page.encode(), content_type="text/html; charset=utf-8")
        return Reply(200, b'{"items": [{"InvoiceId": 1, "Total": 1.98},', content_type="application/json")

    def _page(self, style: str, rows: list[dict[str, Any]], path: str, query: dict[str, str]) -> Reply:
        size = int(query.get("limit") or query.get("per_page") or PAGE_SIZE)
        if style == "all":
            return _json(200, rows)
        if style == "cursor":
            start = int(base64.urlsafe_b64decode(query["cursor"]).decode()) if query.get("cursor") else 0
            more = start + size < len(rows)
            cursor = base64.urlsafe_b64encode(str(start + size).encode()).decode() if more else None
            return _json(200, {"data": {"items": rows[start : start + size]}, "meta": {"next": cursor}})
        if style == "offset":
            start = int(query.get("offset", "0"))
            return _json(200, {"items": rows[start : start + size], "total": len(rows)})
        number = int(query.get("page", "1"))
        chunk = rows[(number - 1) * size : number * size]
        following = f"{path}?{urlencode({**query, 'page': number + 1})}"
        if style == "page":
            return _json(200, {"results": chunk, "page": number})
        last = number * size >= len(rows)
        if style == "link":
            links = (
                {}
                if last
                else {"Link": f'<{self.url}{following}>; rel="next", <{self.url}{path}>; rel="first"'}
            )
            return _json(200, chunk, links)
        if style == "next":
            this = f"{path}?{urlencode(query)}"
            return _json(
                200, {"records": chunk, "links": {"next": None if last else following, "self": this}}
            )
        return _json(404, {"error": f"no pagination style {style}"})


def _handler(server: ApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out as two writes; do not wait between

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            reply = server.handle(self.command, self.path, headers, body)
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)

        do_GET = _serve
        do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output quiet

    return Handler
