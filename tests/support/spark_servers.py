"""Spark servers on loopback for tests: a standalone master with workers, and a Spark Connect server.

They are the classes pyspark's own package ships (``SPARK_HOME`` is pyspark's folder), launched
through ``bin/spark-class`` / ``bin/spark-submit`` (which exec the JVM, so the pid we hold is the
JVM's) each in its own process group: tearing down kills the group, executors included. Every
server gets free ports and its own log, pid, work and warehouse folders under the test's tmp path.
Readiness is polled (the master's JSON lists ALIVE workers; the Connect server's port accepts).

A server that cannot start is :class:`ServerUnavailable`; :func:`require` turns it into a failure
under CI (``CI=true``) and a skip with the reason elsewhere.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest

MASTER = "org.apache.spark.deploy.master.Master"
WORKER = "org.apache.spark.deploy.worker.Worker"
START_SECONDS = 180.0
"""A JVM takes 5 s on an idle machine, 30 s or more on a loaded CI runner."""


class ServerUnavailable(RuntimeError):
    """A Spark server did not start (no Java, no pyspark, or it died or never became ready)."""


def spark_home() -> Path:
    try:
        import pyspark
    except ImportError as err:
        raise ServerUnavailable("pyspark is not installed (the spark extra)") from err
    return Path(pyspark.__file__).parent


def _spark_class() -> str:
    return str(spark_home() / "bin" / "spark-class")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@dataclass
class _Process:
    """One server JVM in its own process group, its output in ``log``."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    web_port: int = 0

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL everything in the server's session, as a machine that dies: the JVM, a
        worker's executors, and their Python daemons (which take a process group of their own)."""
        for pid in _session_members(self.popen.pid):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.popen.wait(timeout=30)

    def tail(self, lines: int = 25) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _session_members(sid: int) -> list[int]:
    """Pids of the processes in session ``sid`` (from /proc)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()  # state, ppid, pgrp, session, ...
            if int(fields[3]) == sid:
                members.append(int(entry.name))
    return members


def _env(folder: Path) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("SPARK_LOG_DIR", "SPARK_PID_DIR", "SPARK_WORKER_DIR"):
        path = folder / name.removeprefix("SPARK_").removesuffix("_DIR").lower()
        path.mkdir(parents=True, exist_ok=True)
        env[name] = str(path)
    env |= {"SPARK_HOME": str(spark_home()), "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_CONNECT_MODE": "0"}
    env["SPARK_NO_DAEMONIZE"] = "1"
    # The master and workers' own heaps (not executors'); a Connect server takes it as its
    # driver's memory, too little for Spark (which needs 450 MB), so it is left out there.
    env.pop("SPARK_DAEMON_MEMORY", None)
    env.pop("PYSPARK_GATEWAY_PORT", None)
    return env


def _launch(name: str, command: list[str], folder: Path, **env: str) -> _Process:
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise ServerUnavailable("Java is not installed (scripts/setup-spark installs Java 17)")
    log = folder / "log" / f"{name}.out"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        popen = subprocess.Popen(
            command,
            env=_env(folder) | env,
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own session: kill() takes its descendants too
        )
    return _Process(name, popen, log)


def _wait(ready: Callable[[], bool], processes: list[_Process], what: str) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        for process in processes:
            if not process.alive():
                raise ServerUnavailable(f"{process.name} exited while starting:\n{process.tail()}")
        if ready():
            return
        time.sleep(0.5)
    tails = "\n".join(f"--- {p.name}\n{p.tail()}" for p in processes)
    raise ServerUnavailable(f"{what} not ready after {START_SECONDS:.0f} s:\n{tails}")


@dataclass
class StandaloneCluster:
    """A standalone master and its workers on loopback."""

    url: str
    """``spark://127.0.0.1:<port>``, a target's ``master``."""
    web_port: int
    master: _Process
    folder: Path
    memory: str
    size: int
    """How many workers it should have: :meth:`heal` restores that many after a kill."""
    workers: list[_Process] = field(default_factory=list)

    def state(self) -> dict[str, object]:
        """The master's JSON (``/json``): workers, applications, their cores."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/json", timeout=5) as response:
            state: dict[str, object] = json.load(response)
            return state

    def alive_workers(self) -> list[dict[str, object]]:
        try:
            workers = self.state().get("workers", [])
        except OSError:
            return []
        assert isinstance(workers, list)
        return [worker for worker in workers if worker.get("state") == "ALIVE"]

    def start_worker(self) -> _Process:
        """One more worker of 1 core (not waited for)."""
        number = len(self.workers) + 1
        work = self.folder / f"worker-{number}"
        work.mkdir(parents=True, exist_ok=True)
        options = ["--cores", "1", "--memory", self.memory, "--work-dir", str(work), self.url]
        web_port = free_port()
        worker = _launch(
            f"worker-{number}",
            [_spark_class(), WORKER, "--host", "127.0.0.1", "--webui-port", str(web_port), *options],
            self.folder,
            SPARK_DAEMON_MEMORY="256m",
        )
        worker.web_port = web_port
        self.workers.append(worker)
        return worker

    def cores_used(self, worker: _Process) -> int:
        """Cores of ``worker`` the master has given to executors."""
        for listed in self.alive_workers():
            if str(listed.get("webuiaddress", "")).endswith(f":{worker.web_port}"):
                return int(str(listed["coresused"]))
        return 0

    def live(self) -> list[_Process]:
        return [worker for worker in self.workers if worker.alive()]

    def heal(self) -> None:
        """Start workers until as many live as at the start, and the master lists them ALIVE
        (it drops a killed worker as soon as its connection closes)."""
        wanted = self.size
        while len(self.live()) < wanted:
            self.start_worker()
        _wait(
            lambda: len(self.alive_workers()) == wanted,
            [self.master, *self.live()],
            f"the standalone master with {wanted} workers",
        )


@contextmanager
def standalone_cluster(folder: Path, workers: int = 2, memory: str = "640m") -> Iterator[StandaloneCluster]:
    """A master and ``workers`` workers of 1 core and ``memory`` each (an application's
    ``spark.executor.memory`` must fit), ready when the master lists them ALIVE."""
    port, web_port = free_port(), free_port()
    master = _launch(
        "master",
        [_spark_class(), MASTER, "--host", "127.0.0.1", "--port", str(port), "--webui-port", str(web_port)],
        folder,
        SPARK_DAEMON_MEMORY="256m",
    )
    cluster = StandaloneCluster(f"spark://127.0.0.1:{port}", web_port, master, folder, memory, workers)
    try:
        cluster.heal()
        yield cluster
    finally:
        for process in [*cluster.workers, master]:
            process.kill()


@dataclass(frozen=True)
class ConnectServer:
    url: str
    """``sc://127.0.0.1:<port>``, a target's ``remote``."""
    warehouse: Path
    process: _Process


@contextmanager
def connect_server(
    folder: Path, master: str = "local[2]", conf: dict[str, str] | None = None
) -> Iterator[ConnectServer]:
    """A Spark Connect server running ``master``, with its own warehouse and embedded Derby
    metastore in ``folder`` (one server per metastore)."""
    home = spark_home()
    port = free_port()
    warehouse = folder / "warehouse"
    metastore = f"jdbc:derby:;databaseName={folder / 'metastore'};create=true"
    conf = {
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
        "spark.ui.enabled": "false",
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": str(warehouse),
        "spark.hadoop.javax.jdo.option.ConnectionURL": metastore,
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={folder}",
        "spark.sql.session.timeZone": "UTC",
    } | (conf or {})
    command = [str(home / "bin" / "spark-submit"), "--master", master]
    command += [
        "--class",
        "org.apache.spark.sql.connect.service.SparkConnectServer",
        "--name",
        "gristmill-test-connect",
    ]
    for key, value in conf.items():
        command += ["--conf", f"{key}={value}"]
    command.append("spark-internal")
    server = _launch("connect", command, folder)
    try:
        _wait(lambda: listening(port), [server], "the Spark Connect server")
        yield ConnectServer(f"sc://127.0.0.1:{port}", warehouse, server)
    finally:
        server.kill()


T = TypeVar("T")


@contextmanager
def started(server: AbstractContextManager[T]) -> Iterator[T]:
    """``server`` (one of the context managers above) entered, or: under CI a failure, elsewhere
    a skip naming why it could not start."""
    try:
        value = server.__enter__()
    except ServerUnavailable as err:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"a Spark server did not start (CI needs it): {err}", pytrace=False)
        pytest.skip(f"a Spark server did not start: {err}")
    try:
        yield value
    finally:
        server.__exit__(None, None, None)
