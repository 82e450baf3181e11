"""The MQTT source against a real Mosquitto broker (started for the session on a free port).

Each test uses topics and client ids of its own, so tests share the broker but no session."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gristmill.connectors import open_source
from gristmill.connectors.mqtt.feed import MqttFeed
from gristmill.connectors.mqtt.source import Source
from gristmill.connectors.streams.decode import decode
from gristmill.connectors.streams.feed import Delivery
from gristmill.errors import ConfigError, SourceError
from gristmill.project import load_project
from gristmill.project.specs import SourceTable

pytest_plugins = ["tests.support.servers"]

COLUMNS = "{sensor: string, celsius: double}"


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


@pytest.fixture
def publish(mosquitto_server: tuple[str, int]) -> Iterator[Callable[[str, bytes], None]]:
    """Publish with QoS 1, waiting for the broker's PUBACK."""
    host, port = mosquitto_server
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect(host, port)
    client.loop_start()

    def send(topic: str, payload: bytes) -> None:
        client.publish(topic, payload, qos=1).wait_for_publish(5)

    yield send
    client.disconnect()
    client.loop_stop()


def _reading(sensor: str, celsius: float) -> bytes:
    return f'{{"sensor": "{sensor}", "celsius": {celsius}}}'.encode()


def _open(
    make_project: Callable[..., Path], server: tuple[str, int], table: str, *, extra: str = ""
) -> tuple[Source, SourceTable]:
    host, port = server
    text = f"kind: mqtt\nhost: {host}\nport: {port}\n{extra}tables:\n  readings: {table}\n"
    root = make_project({"sources/plant.yml": text})
    spec = load_project(root).sources["plant"]
    source = open_source(spec, root)
    assert isinstance(source, Source)
    return source, spec.tables["readings"]


def _feed(
    make_project: Callable[..., Path],
    server: tuple[str, int],
    prefix: str,
    *,
    extra: str = "",
    client_id: str | None = None,
) -> tuple[Source, MqttFeed]:
    """A feed on ``<prefix>/+/temp``, in a session of its own (client id ``prefix``)."""
    table = f"{{topic: '{prefix}/+/temp', client_id: {client_id or prefix}, columns: {COLUMNS}}}"
    source, table_spec = _open(make_project, server, table, extra=extra)
    return source, source.feed(table_spec)


def _collect(feed: MqttFeed, expected: int, *, processed: bool = True, timeout: float = 5.0) -> Delivery:
    """Poll until ``expected`` messages came or the time is up, as one delivery; with
    ``processed``, tell the feed after each poll, as the streaming loop does after a commit."""
    total = Delivery()
    deadline = time.monotonic() + timeout
    while len(total) < expected and time.monotonic() < deadline:
        batch = feed.poll(expected - len(total), 0.5)
        columns = (batch.values, batch.keys, batch.topics, batch.partitions, batch.offsets, batch.timestamps)
        for row in zip(*columns, strict=True):
            total.add(*row)
        if processed:
            feed.processed(batch.last_offsets())
    return total


def test_qos1_messages_arrive(
    mosquitto_server: tuple[str, int],
    make_project: Callable[..., Path],
    publish: Callable[[str, bytes], None],
    prefix: str,
) -> None:
    source, table = _open(make_project, mosquitto_server, f"{{topic: '{prefix}/+/temp', columns: {COLUMNS}}}")
    feed = source.feed(table)
    assert feed.exactly_once is False
    assert feed.client_id == "gristmill-plant-readings"  # stable: from the source and table names
    feed.open(lambda positions: {(f"{prefix}/+/temp", 0): 41})  # offsets go on from the lake's
    try:
        assert feed.assigned() == {(f"{prefix}/+/temp", 0)}
        for i in range(5):
            publish(f"{prefix}/s{i}/temp", _reading(f"s{i}", 20 + i))
        publish(f"{prefix}/s9/humidity", b"{}")  # outside the filter
        delivery = _collect(feed, 5, processed=False)
        assert delivery.offsets == [42, 43, 44, 45, 46]
        assert delivery.topics == [f"{prefix}/+/temp"] * 5
        assert delivery.keys == [f"{prefix}/s{i}/temp".encode() for i in range(5)]
        rows, rejected = decode(delivery, source.tables["readings"])
        assert rows.column("celsius").to_pylist() == [20.0, 21.0, 22.0, 23.0, 24.0]
        assert rejected.num_rows == 0
        feed.processed(delivery.last_offsets())
        assert feed.take_revoked() == set()
    finally:
        feed.close()


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_unprocessed_messages_are_redelivered_processed_ones_not(
    mosquitto_server: tuple[str, int],
    make_project: Callable[..., Path],
    publish: Callable[[str, bytes], None],
    prefix: str,
    protocol: str,
) -> None:
    extra = f"protocol: '{protocol}'\n"
    _, feed = _feed(make_project, mosquitto_server, prefix, extra=extra)
    feed.open(lambda positions: {})
    try:
        for i in range(6):
            publish(f"{prefix}/a/temp", _reading("a", i))
        first = _collect(feed, 6, processed=False)
        assert len(first) == 6
        # The lake committed the first three only, then the process stopped.
        feed.processed({(f"{prefix}/+/temp", 0): first.offsets[2]})
    finally:
        feed.close()

    _, again = _feed(make_project, mosquitto_server, prefix, extra=extra)
    again.open(lambda positions: {})
    try:
        assert _collect(again, 3).values == first.values[3:]
        assert again.poll(10, 0.3).values == []
    finally:
        again.close()

    _, third = _feed(make_project, mosquitto_server, prefix, extra=extra)
    third.open(lambda positions: {})
    try:
        assert third.poll(10, 0.5).values == []  # all processed: nothing comes back
    finally:
        third.close()


def test_messages_published_while_no_process_runs_are_kept(
    mosquitto_server: tuple[str, int],
    make_project: Callable[..., Path],
    publish: Callable[[str, bytes], None],
    prefix: str,
) -> None:
    _, feed = _feed(make_project, mosquitto_server, prefix)
    feed.open(lambda positions: {})  # creates the persistent session
    feed.close()
    publish(f"{prefix}/b/temp", _reading("b", 1.5))
    _, again = _feed(make_project, mosquitto_server, prefix)
    again.open(lambda positions: {})
    try:
        assert _collect(again, 1).values == [_reading("b", 1.5)]
    finally:
        again.close()


def test_the_queue_is_bounded(
    mosquitto_server: tuple[str, int],
    make_project: Callable[..., Path],
    publish: Callable[[str, bytes], None],
    prefix: str,
) -> None:
    _, feed = _feed(make_project, mosquitto_server, prefix, extra="queue_size: 3\n")
    feed.open(lambda positions: {})
    try:
        for i in range(12):
            publish(f"{prefix}/c/temp", _reading("c", i))
        time.sleep(0.3)
        assert feed.lag()[(f"{prefix}/+/temp", 0)] <= 3  # the rest waits at the broker
        got = _collect(feed, 12)
        assert got.values == [_reading("c", i) for i in range(12)]  # none lost, in order
    finally:
        feed.close()


def test_broker_down_is_a_clear_error(make_project: Callable[..., Path], closed_port: int) -> None:
    source, table = _open(make_project, ("127.0.0.1", closed_port), "{topic: a/b, format: raw}")
    feed = source.feed(table)
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        feed.open(lambda positions: {})
    assert time.monotonic() - started < 3
    assert f"cannot reach the MQTT broker at mqtt://127.0.0.1:{closed_port}" in str(caught.value)
    assert "host and port" in (caught.value.hint or "")


def test_a_batch_run_cannot_read_mqtt(make_project: Callable[..., Path], closed_port: int) -> None:
    source, table = _open(make_project, ("127.0.0.1", closed_port), f"{{topic: a/#, columns: {COLUMNS}}}")
    assert source.schema(table).names[:2] == ["sensor", "celsius"]
    with pytest.raises(SourceError) as caught:
        source.read(table)
    assert "no history" in str(caught.value)
    assert "gristmill stream" in (caught.value.hint or "")


def test_options_are_checked_with_file_and_line(make_project: Callable[..., Path]) -> None:
    server = ("127.0.0.1", 1883)
    with pytest.raises(ConfigError) as caught:
        _open(make_project, server, "{topic: 'a/#/b', format: raw}")
    assert (
        str(caught.value) == 'sources/plant.yml:5: topic: "#" must be a whole level and the last one: a/#/b'
    )
    with pytest.raises(ConfigError) as caught:
        _open(make_project, server, "{topic: a, qos: 2}")
    assert "qos" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        _open(make_project, server, "{topic: a}", extra="usernme: x\n")
    assert caught.value.hint == 'did you mean "username"?'


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_refused_credentials_are_named(
    mosquitto_secured: tuple[tuple[str, int], tuple[str, str]],
    make_project: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    prefix: str,
    protocol: str,
) -> None:
    server, (user, password) = mosquitto_secured
    secrets = f"username: {user}\npassword: ${{env:GM_TEST_MQTT_PASSWORD}}\nprotocol: '{protocol}'\n"
    monkeypatch.setenv("GM_TEST_MQTT_PASSWORD", "wrong-" + password)
    _, feed = _feed(make_project, server, prefix, extra=secrets)
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        feed.open(lambda positions: {})
    assert time.monotonic() - started < 2
    assert f"the MQTT broker at mqtt://{server[0]}:{server[1]} refused the connection" in str(caught.value)
    assert caught.value.hint == "check the username and password options"

    monkeypatch.setenv("GM_TEST_MQTT_PASSWORD", password)
    _, feed = _feed(make_project, server, prefix, extra=secrets)
    feed.open(lambda positions: {})
    feed.close()
