"""A recorded-response stand-in for HashiCorp Vault's KV version 2 API, served by a real HTTP
server on loopback (no `vault` binary can be installed here: Debian has no package and PyPI
has only clients). hvac talks to it over real HTTP; the responses replay the shapes a Vault
1.x dev server returns for ``GET /v1/<mount>/data/<path>``: the secret, 404 ``{"errors":[]}``
for a missing path, 403 ``{"errors":["permission denied"]}`` for a wrong token."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class FakeVault:
    url: str
    token: str
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)  # "mount/path" -> fields
    reads: list[str] = field(default_factory=list)  # request paths, to count lookups


def _recorded(fields: dict[str, str]) -> dict[str, object]:
    return {
        "request_id": "b7c3f1a2-0d4e-4c55-9d1e-3f1e2a7c9b10",
        "lease_id": "",
        "renewable": False,
        "lease_duration": 0,
        "data": {
            "data": fields,
            "metadata": {
                "created_time": "2026-01-05T10:12:31.118420183Z",
                "custom_metadata": None,
                "deletion_time": "",
                "destroyed": False,
                "version": 1,
            },
        },
        "wrap_info": None,
        "warnings": None,
        "auth": None,
        "mount_type": "kv",
    }


@contextmanager
def fake_vault(token: str = "dev-root-token") -> Iterator[FakeVault]:
    vault = FakeVault(url="", token=token)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            vault.reads.append(self.path)
            if self.headers.get("X-Vault-Token") != vault.token:
                return self._reply(403, {"errors": ["permission denied"]})
            mount, _, rest = self.path.removeprefix("/v1/").partition("/data/")
            fields = vault.secrets.get(f"{mount}/{rest.split('?')[0]}")
            if fields is None:
                return self._reply(404, {"errors": []})
            return self._reply(200, _recorded(fields))

        def _reply(self, status: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    vault.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield vault
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
