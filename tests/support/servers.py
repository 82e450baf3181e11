"""Session-wide NATS (JetStream) and Mosquitto servers for streaming tests, on free loopback ports.

Each session starts its own processes (system services may hold the default ports) with their data
in a temporary folder, and stops them at the end. A missing binary skips the tests with the
command that installs it, except under CI (``CI`` set), where it fails them: CI must run them.

Use them from a test module with ``pytest_plugins = ["tests.support.servers"]``."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

HOST = "127.0.0.1"
START_TIMEOUT = 10.0


def free_port() -> int:
    """A loopback port nothing listens on now (bound, then released)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


def _binary(name: str, package: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if found is None:
        message = f"{name} is not installed: apt-get install -y --no-install-recommends {package}"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return found


def _start(command: list[str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """Start a server and wait until its port accepts connections."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{command[0]} exited with {process.returncode}:\n{log.read_text()}", pytrace=False)
        try:
            socket.create_connection((HOST, port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.02)
    _stop(process)
    pytest.fail(f"{command[0]} did not listen on {HOST}:{port} in {START_TIMEOUT:g} s", pytrace=False)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def closed_port() -> int:
    """A loopback port with no server behind it, for connection-error tests."""
    return free_port()


class NatsServer:
    """A JetStream-enabled nats-server storing in ``folder``, on a port it keeps across restarts.
    ``options`` are extra command-line options (``--user``, ``--pass``, ...)."""

    def __init__(self, folder: Path, *options: str) -> None:
        self.port = free_port()
        self.url = f"nats://{HOST}:{self.port}"
        self.command = [_binary("nats-server", "nats-server"), "-js", "-a", HOST, "-p", str(self.port)]
        self.command += ["-sd", str(folder / "store"), *options]
        self.log = folder / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = _start(self.command, self.port, self.log)

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
            self.process = None


@contextmanager
def running_nats(folder: Path, *options: str) -> Iterator[NatsServer]:
    server = NatsServer(folder, *options)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def running_mosquitto(folder: Path, *conf: str) -> Iterator[tuple[str, int]]:
    """A Mosquitto broker with persistence in ``folder`` (sessions outlive clients); yields
    (host, port). ``conf`` lines replace ``allow_anonymous true``."""
    binary = _binary("mosquitto", "mosquitto")
    port = free_port()
    # Run as whoever runs the tests: started as root, mosquitto switches to user "mosquitto",
    # who cannot read or write a private temporary folder.
    user = pwd.getpwuid(os.geteuid()).pw_name
    lines = [f"listener {port} {HOST}", f"user {user}", *(conf or ["allow_anonymous true"])]
    lines += ["persistence true", f"persistence_location {folder}/"]
    (folder / "mosquitto.conf").write_text("\n".join(lines) + "\n")
    process = _start([binary, "-c", str(folder / "mosquitto.conf")], port, folder / "broker.log")
    try:
        yield HOST, port
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The session's nats-server URL."""
    with running_nats(tmp_path_factory.mktemp("nats")) as server:
        yield server.url


@pytest.fixture
def nats_private(tmp_path: Path) -> Iterator[NatsServer]:
    """A nats-server of the test's own, which the test may stop and start again."""
    with running_nats(tmp_path) as server:
        yield server


@pytest.fixture(scope="session")
def mosquitto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """The session's Mosquitto broker, as (host, port)."""
    with running_mosquitto(tmp_path_factory.mktemp("mosquitto")) as server:
        yield server


Credentials = tuple[str, str]
"""(user, password) a secured server accepts."""
SECURED: Credentials = ("app", "gm-Secret:pw")


@pytest.fixture(scope="session")
def nats_secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Credentials]]:
    """A nats-server accepting only the user and password yielded with its URL."""
    user, password = SECURED
    with running_nats(tmp_path_factory.mktemp("nats-secured"), "--user", user, "--pass", password) as server:
        yield server.url, SECURED


@pytest.fixture(scope="session")
def mosquitto_secured(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[tuple[str, int], Credentials]]:
    """A Mosquitto broker accepting only the user and password yielded with (host, port)."""
    folder = tmp_path_factory.mktemp("mosquitto-secured")
    user, password = SECURED
    tool = shutil.which("mosquitto_passwd") or _binary("mosquitto_passwd", "mosquitto")
    subprocess.run([tool, "-c", "-b", str(folder / "passwords"), user, password], check=True)
    conf = ("allow_anonymous false", f"password_file {folder / 'passwords'}")
    with running_mosquitto(folder, *conf) as server:
        yield server, SECURED
