"""Serve an ASGI app from a background thread, so the scheduler keeps the main thread.

The listening socket is bound here, in the caller's thread, before uvicorn starts: a port in
use then surfaces as a ``ConfigError`` naming the setting to change, instead of uvicorn
logging the error and exiting its thread, and port 0 resolves to the real port at once.
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

from gristmill.errors import ConfigError, GristmillError

log = logging.getLogger(__name__)

_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 10.0


class BackgroundServer:
    """One uvicorn server on its own thread; ``start`` returns once it accepts connections."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 8765) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def port(self) -> int:
        """The port listened on; before ``start`` the one asked for (0 means any free port)."""
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("server already started")
        sock = _bind(self._host, self._port)
        self._socket = sock
        self._port = sock.getsockname()[1]
        # log_config=None leaves the process's logging setup alone; uvicorn only sets its loggers'
        # levels. uvicorn installs signal handlers only on the main thread, so the caller keeps its own.
        config = uvicorn.Config(
            self._app,
            host=self._host,
            port=self._port,
            log_level="warning",
            log_config=None,
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=self._run, args=(server, sock), name=f"gristmill-http-{self._port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise GristmillError(
                    f"the HTTP server on {self.url} did not start",
                    hint="see the log above for the reason",
                ) from self._error
            time.sleep(0.01)

    def _run(self, server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as err:  # SystemExit included: uvicorn exits on startup failure
            self._error = err
            log.error("the HTTP server stopped unexpectedly", exc_info=True)

    def stop(self) -> None:
        """Stop serving and release the port; open connections get a short grace period."""
        server, thread, sock = self._server, self._thread, self._socket
        if server is not None and thread is not None:
            server.should_exit = True
            thread.join(_STOP_TIMEOUT)
            if thread.is_alive():
                server.force_exit = True
                thread.join(_STOP_TIMEOUT)
        if sock is not None:
            sock.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> BackgroundServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        # create_server sets SO_REUSEADDR on POSIX, so a restart does not wait out TIME_WAIT.
        sock = socket.create_server((host, port), family=family)
    except OSError as err:
        raise _bind_error(host, port, err) from err
    # Connections accepted on a socket handed to uvicorn do not get TCP_NODELAY (uvicorn's own
    # bind path sets it); without it a kept-alive client waits out the peer's delayed ACK on every
    # response: 44 ms per request instead of ~1 ms, measured. Linux passes it on to accepted sockets.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _bind_error(host: str, port: int, err: OSError) -> ConfigError:
    if err.errno == errno.EADDRINUSE:
        reason = f"port {port} is already in use"
        hint = "stop the other process, or set another port under [server] in gristmill.toml"
    else:
        reason = err.strerror or str(err)
        hint = "check host and port under [server] in gristmill.toml"
    return ConfigError(f"cannot listen on {host}:{port}: {reason}", hint=hint)
