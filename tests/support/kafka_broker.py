"""librdkafka's mock Kafka cluster in a child process: the real wire protocol (produce, fetch,
consumer groups, offsets) with no Kafka installed and no Java.

The cluster is made through the C API of the librdkafka that confluent-kafka bundles, by ctypes,
because the Python client exposes no mock-cluster object and the mock has no CreateTopics:
``rd_kafka_mock_topic_create`` is the only way to choose a topic's partition count (a producer
auto-creates unknown topics with 4 partitions; a consumer's metadata request does not create
them). The child reads commands on stdin, so the test process can add topics at any time; closing
stdin ends the cluster, so it also dies with the process that started it.

    python tests/streaming/kafka_broker.py [--brokers N]     # prints the bootstrap address
    topic events 4                                           # on stdin; answers "ok"

Mind the mock's ways:
- each partition keeps at most 5 MiB (older messages are dropped without a word): keep test
  volumes small;
- a classic-protocol rebalance waits ``session.timeout.ms`` - 1 s for members to rejoin, so
  group tests should set ``session.timeout.ms`` to about 2000 and ``heartbeat.interval.ms`` to 100;
  the first join of a group is immediate here (the mock's usual 3 s delay is set to 0), and KIP-848
  members (``group.protocol: consumer``) get 100 ms heartbeats;
- transactions work, but read_committed is not faithful (aborted records are visible)."""

from __future__ import annotations

import argparse
import ctypes
import select
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

READY_TIMEOUT = 20.0


class MockKafka:
    """A running mock cluster: ``bootstrap`` to connect, ``create_topic`` to add topics."""

    def __init__(self, process: subprocess.Popen[str], bootstrap: str) -> None:
        self.process = process
        self.bootstrap = bootstrap

    def create_topic(self, name: str, partitions: int = 1) -> None:
        """Create ``name`` with ``partitions`` partitions (replication factor 1)."""
        assert self.process.stdin is not None
        self.process.stdin.write(f"topic {name} {partitions}\n")
        self.process.stdin.flush()
        answer = _line(self.process, READY_TIMEOUT)
        if answer != "ok":
            raise RuntimeError(f"mock Kafka could not create topic {name}: {answer}")

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_broker(brokers: int = 1) -> MockKafka:
    """Start a mock cluster of ``brokers`` brokers on loopback; returns once it listens."""
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--brokers", str(brokers)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        bootstrap = _line(process, READY_TIMEOUT)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return MockKafka(process, bootstrap)


@contextmanager
def running_broker(brokers: int = 1) -> Iterator[MockKafka]:
    broker = start_broker(brokers)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[MockKafka]:
    """One mock cluster for the whole session; tests use topics and groups of their own."""
    with running_broker() as broker:
        yield broker


def _line(process: subprocess.Popen[str], timeout: float) -> str:
    """The child's next line, or an error if it died or stayed silent (never a hang)."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    line = process.stdout.readline() if ready else ""
    if not line:
        raise RuntimeError(f"mock Kafka did not answer (exit code {process.poll()})")
    return line.strip()


# -- the child process ----------------------------------------------------------------------------


def _librdkafka() -> ctypes.CDLL:
    """The librdkafka that confluent-kafka loaded (its wheel bundles one with the mock)."""
    import confluent_kafka  # loads the bundled library into this process

    libs = Path(confluent_kafka.__file__).parent.parent / "confluent_kafka.libs"
    found = sorted(libs.glob("librdkafka*.so*")) or [Path("librdkafka.so.1")]  # else the system's
    lib = ctypes.CDLL(str(found[0]))
    pointer, text, number = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    lib.rd_kafka_conf_new.restype = pointer
    lib.rd_kafka_conf_set.argtypes = [pointer, text, text, text, ctypes.c_size_t]
    lib.rd_kafka_new.restype = pointer
    lib.rd_kafka_new.argtypes = [number, pointer, text, ctypes.c_size_t]
    lib.rd_kafka_mock_cluster_new.restype = pointer
    lib.rd_kafka_mock_cluster_new.argtypes = [pointer, number]
    lib.rd_kafka_mock_cluster_bootstraps.restype = text
    lib.rd_kafka_mock_cluster_bootstraps.argtypes = [pointer]
    lib.rd_kafka_mock_topic_create.restype = number
    lib.rd_kafka_mock_topic_create.argtypes = [pointer, text, number, number]
    lib.rd_kafka_mock_group_initial_rebalance_delay_ms.argtypes = [pointer, number]
    lib.rd_kafka_mock_set_group_consumer_heartbeat_interval_ms.argtypes = [pointer, number]
    lib.rd_kafka_err2str.restype = text
    lib.rd_kafka_err2str.argtypes = [number]
    lib.rd_kafka_mock_cluster_destroy.argtypes = [pointer]
    lib.rd_kafka_destroy.argtypes = [pointer]
    return lib


def _serve(brokers: int) -> None:
    lib = _librdkafka()
    error = ctypes.create_string_buffer(512)
    conf = lib.rd_kafka_conf_new()
    # The handle only hosts the cluster; it connects nowhere, so silence its config warning.
    lib.rd_kafka_conf_set(conf, b"log_level", b"3", error, len(error))
    handle = lib.rd_kafka_new(0, conf, error, len(error))  # 0: RD_KAFKA_PRODUCER
    if not handle:
        raise SystemExit(f"rd_kafka_new: {error.value.decode()}")
    cluster = lib.rd_kafka_mock_cluster_new(handle, brokers)
    # A new group would otherwise wait 3 s for more members before its first assignment.
    lib.rd_kafka_mock_group_initial_rebalance_delay_ms(cluster, 0)
    # KIP-848 members (group.protocol: consumer) learn of new assignments by heartbeat, 3 s apart.
    lib.rd_kafka_mock_set_group_consumer_heartbeat_interval_ms(cluster, 100)
    print(lib.rd_kafka_mock_cluster_bootstraps(cluster).decode(), flush=True)
    for command in sys.stdin:
        match command.split():
            case ["topic", name, partitions]:
                code = lib.rd_kafka_mock_topic_create(cluster, name.encode(), int(partitions), 1)
                print("ok" if code == 0 else lib.rd_kafka_err2str(code).decode(), flush=True)
            case _:
                print(f"unknown command: {command.strip()}", flush=True)
    lib.rd_kafka_mock_cluster_destroy(cluster)
    lib.rd_kafka_destroy(handle)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="librdkafka's mock Kafka cluster on loopback")
    parser.add_argument("--brokers", type=int, default=1)
    _serve(parser.parse_args().brokers)
