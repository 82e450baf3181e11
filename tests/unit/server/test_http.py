"""The background server's listening socket: what its accepted connections inherit."""

from __future__ import annotations

import socket

from gristmill.server.http import _bind


def test_connections_are_not_held_back_by_nagle() -> None:
    """Without TCP_NODELAY on the socket handed to uvicorn, every response on a kept-alive
    connection waited out the client's delayed ACK: 44 ms a request where ~1 ms is due
    (bench/serving measures the rate; this pins the cause)."""
    sock = _bind("127.0.0.1", 0)
    try:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        client = socket.create_connection(sock.getsockname())
        accepted, _ = sock.accept()
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        accepted.close()
        client.close()
    finally:
        sock.close()
