"""The NATS JetStream source against a real nats-server (started for the session on a free port).

Each test publishes to a stream of its own, so tests share the server but never each other's data."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nats
import orjson
import pytest

from gristmill.connectors import open_source
from gristmill.connectors.nats.feed import NatsFeed
from gristmill.connectors.nats.source import Source
from gristmill.connectors.streams.decode import decode
from gristmill.connectors.streams.feed import Delivery
from gristmill.errors import ConfigError, SourceError
from gristmill.project import load_project
from gristmill.project.specs import SourceTable

if TYPE_CHECKING:
    from tests.support.servers import NatsServer

pytest_plugins = ["tests.support.servers"]

COLUMNS = "{user_id: bigint, amount: double, event_time: timestamp}"


def _stream() -> str:
    return f"T{uuid.uuid4().hex[:10].upper()}"


def _publish(url: str, stream: str, messages: list[tuple[str, bytes]], *, create: bool = True) -> None:
    """Publish (subject, payload) pairs with JetStream acks, creating ``<stream>`` on ``<stream>.>``."""

    async def run() -> None:
        client = await nats.connect(url)
        js = client.jetstream()
        if create:
            await js.add_stream(name=stream, subjects=[f"{stream}.>"])
        for subject, payload in messages:
            await js.publish(subject, payload)
        await client.close()

    asyncio.run(run())


def _admin(url: str, action: Callable[[Any], Any]) -> Any:
    """Run ``action(jetstream)`` (a coroutine function) on a fresh connection."""

    async def run() -> Any:
        client = await nats.connect(url)
        try:
            return await action(client.jetstream())
        finally:
            await client.close()

    return asyncio.run(run())


def _event(user: int, amount: float = 1.5) -> bytes:
    return orjson.dumps({"user_id": user, "amount": amount, "event_time": "2024-05-01T10:00:00"})


def _open(
    make_project: Callable[..., Path], servers: str, table: str, *, extra: str = ""
) -> tuple[Source, SourceTable]:
    root = make_project(
        {"sources/events.yml": f"kind: nats\nservers: {servers}\n{extra}tables:\n  clicks: {table}\n"}
    )
    spec = load_project(root).sources["events"]
    source = open_source(spec, root)
    assert isinstance(source, Source)
    return source, spec.tables["clicks"]


def _feed(
    make_project: Callable[..., Path], url: str, stream: str, fmt: str = "json"
) -> tuple[Source, NatsFeed]:
    source, table = _open(make_project, url, f"{{stream: {stream}, format: {fmt}, columns: {COLUMNS}}}")
    return source, source.feed(table)


def _poll_all(feed: NatsFeed, expected: int, timeout: float = 5.0) -> Delivery:
    """Poll until ``expected`` messages came (or the time is up), as one delivery."""
    total = Delivery()
    deadline = time.monotonic() + timeout
    while len(total) < expected and time.monotonic() < deadline:
        batch = feed.poll(expected - len(total), 0.5)
        columns = (batch.values, batch.keys, batch.topics, batch.partitions, batch.offsets, batch.timestamps)
        for row in zip(*columns, strict=True):
            total.add(*row)
    return total


# -- the feed ----------------------------------------------------------------------------------


def test_feed_resumes_after_the_stored_sequence(nats_server: str, make_project: Callable[..., Path]) -> None:
    stream = _stream()
    _publish(nats_server, stream, [(f"{stream}.u{i}", _event(i)) for i in range(10)])
    _, feed = _feed(make_project, nats_server, stream)
    assert feed.exactly_once is True
    asked: list[Any] = []
    feed.open(lambda positions: asked.append(positions) or {})
    try:
        assert asked == [[(stream, 0)]]
        assert feed.assigned() == {(stream, 0)}
        first = feed.poll(6, 2.0)
        assert first.offsets == [1, 2, 3, 4, 5, 6]
        assert first.topics == [stream] * 6 and first.partitions == [0] * 6
        assert first.keys[0] == f"{stream}.u0".encode()
        assert all(isinstance(t, int) and t > 1_600_000_000_000 for t in first.timestamps)
        feed.processed(first.last_offsets())  # nothing to do, but must be harmless
        assert feed.take_revoked() == set()
    finally:
        feed.close()
    stored = first.last_offsets()  # what the lake would hold after committing the batch
    _publish(nats_server, stream, [(f"{stream}.u{i}", _event(i)) for i in range(10, 15)], create=False)

    _, again = _feed(make_project, nats_server, stream)
    again.open(lambda positions: {p: stored[p] for p in positions if p in stored})
    try:
        rest = _poll_all(again, 9)
        assert rest.offsets == list(range(7, 16))
        assert again.poll(10, 0.2).offsets == []  # no more, and an empty poll is no error
    finally:
        again.close()
    users = [orjson.loads(v or b"")["user_id"] for v in first.values + rest.values]
    assert users == list(range(15))  # no duplicate, no loss


def test_empty_poll_waits_at_most_the_timeout(nats_server: str, make_project: Callable[..., Path]) -> None:
    stream = _stream()
    _publish(nats_server, stream, [])
    _, feed = _feed(make_project, nats_server, stream)
    feed.open(lambda positions: {})
    try:
        started = time.monotonic()
        assert len(feed.poll(100, 0.3)) == 0
        assert time.monotonic() - started < 1.5
        assert feed.lag() == {(stream, 0): 0}
    finally:
        feed.close()


def test_bad_messages_come_back_rejected_with_reasons(
    nats_server: str, make_project: Callable[..., Path]
) -> None:
    stream = _stream()
    payloads = [_event(1), b"not json {", b"[1, 2]", b'{"user_id": "abc"}', _event(2)]
    _publish(nats_server, stream, [(f"{stream}.x", p) for p in payloads])
    source, table = _open(make_project, nats_server, f"{{stream: {stream}, columns: {COLUMNS}}}")
    feed = source.feed(table)
    feed.open(lambda positions: {})
    try:
        delivery = _poll_all(feed, 5)
    finally:
        feed.close()
    rows, rejected = decode(delivery, source.tables["clicks"])
    assert rows.column("user_id").to_pylist() == [1, 2]
    assert rows.column("_gm_offset").to_pylist() == [1, 5]
    assert rejected.column("offset").to_pylist() == [2, 3, 4]
    reasons = rejected.column("reason").to_pylist()
    assert reasons[0].startswith("not JSON")
    assert "not an object" in reasons[1]
    assert "declared columns" in reasons[2]


def test_lag_counts_down_to_zero(nats_server: str, make_project: Callable[..., Path]) -> None:
    stream = _stream()
    _publish(nats_server, stream, [(f"{stream}.x", _event(i)) for i in range(20)])
    _, feed = _feed(make_project, nats_server, stream)
    feed.open(lambda positions: {(stream, 0): 4})  # 4 already in the lake
    try:
        assert feed.lag() == {(stream, 0): 16}
        assert len(feed.poll(6, 2.0)) == 6
        assert feed.lag() == {(stream, 0): 10}
        assert len(_poll_all(feed, 10)) == 10
        assert feed.lag() == {(stream, 0): 0}
    finally:
        feed.close()


def test_a_consumer_the_server_dropped_is_recreated_without_loss(
    nats_server: str, make_project: Callable[..., Path]
) -> None:
    stream = _stream()
    _publish(nats_server, stream, [(f"{stream}.x", _event(i)) for i in range(8)])
    _, feed = _feed(make_project, nats_server, stream)
    feed.open(lambda positions: {})
    try:
        assert feed.poll(3, 2.0).offsets == [1, 2, 3]

        async def drop_consumers(js: Any) -> None:
            for info in await js.consumers_info(stream):
                await js.delete_consumer(stream, info.name)

        _admin(nats_server, drop_consumers)
        assert feed.poll(10, 0.3).offsets == []  # notices the loss, recreates at sequence 4
        assert _poll_all(feed, 5).offsets == [4, 5, 6, 7, 8]
    finally:
        feed.close()


# -- the batch read ------------------------------------------------------------------------------


def test_batch_read_lands_the_whole_stream(nats_server: str, make_project: Callable[..., Path]) -> None:
    stream = _stream()
    _publish(
        nats_server,
        stream,
        [(f"{stream}.{'eu' if i % 3 else 'us'}.u{i}", _event(i, amount=i / 2)) for i in range(25)],
    )
    source, table = _open(
        make_project, nats_server, f"{{stream: {stream}, subject: '{stream}.eu.>', columns: {COLUMNS}}}"
    )
    landed = source.read(table).read_all()
    assert landed.schema == source.schema(table) == source.tables["clicks"].landed_schema()
    eu = [i for i in range(25) if i % 3]
    assert landed.column("user_id").to_pylist() == eu
    assert landed.column("_gm_offset").to_pylist() == [i + 1 for i in eu]
    assert landed.column("_gm_topic").to_pylist() == [stream] * len(eu)
    assert landed.column("_gm_key").to_pylist()[0] == f"{stream}.eu.u1".encode()
    assert source.change_marker(table) is None


def test_batch_read_of_an_empty_stream(nats_server: str, make_project: Callable[..., Path]) -> None:
    stream = _stream()
    _publish(nats_server, stream, [])
    source, table = _open(make_project, nats_server, f"{{stream: {stream}, columns: {COLUMNS}}}")
    assert source.read(table).read_all().num_rows == 0


def test_batch_read_names_an_undecodable_message(nats_server: str, make_project: Callable[..., Path]) -> None:
    stream = _stream()
    _publish(nats_server, stream, [(f"{stream}.a", _event(1)), (f"{stream}.b", b"{oops")])
    source, table = _open(make_project, nats_server, f"{{stream: {stream}, columns: {COLUMNS}}}")
    with pytest.raises(SourceError) as caught:
        source.read(table).read_all()
    message = str(caught.value)
    assert f"stream {stream}, sequence 2 (subject {stream}.b): not JSON" in message
    assert "gristmill stream" in (caught.value.hint or "")


# -- errors --------------------------------------------------------------------------------------


def test_unreachable_server_is_a_clear_error_in_seconds(
    make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, closed_port: int
) -> None:
    monkeypatch.setenv("GM_TEST_NATS_PASSWORD", "s3cret-pw")
    port = closed_port
    source, table = _open(
        make_project,
        f"nats://app:${{env:GM_TEST_NATS_PASSWORD}}@127.0.0.1:{port}",
        f"{{stream: CLICKS, columns: {COLUMNS}}}",
        extra="connect_timeout: 1\n",
    )
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        source.read(table)
    assert time.monotonic() - started < 4
    message = str(caught.value)
    assert f"nats://app:***@127.0.0.1:{port}" in message
    assert "CLICKS" in message and "s3cret-pw" not in message
    assert "nats-server" in (caught.value.hint or "")


def test_missing_stream_names_it_and_suggests(nats_server: str, make_project: Callable[..., Path]) -> None:
    stream = _stream()
    _publish(nats_server, stream, [])
    source, table = _open(make_project, nats_server, f"{{stream: {stream}X, columns: {COLUMNS}}}")
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        source.feed(table).open(lambda positions: {})
    assert time.monotonic() - started < 4
    assert f'stream "{stream}X" does not exist on NATS at {nats_server}' in str(caught.value)
    assert caught.value.hint == f'did you mean "{stream}"?'


def test_options_are_checked_with_file_and_line(make_project: Callable[..., Path]) -> None:
    with pytest.raises(ConfigError) as caught:
        _open(make_project, "nats://127.0.0.1:4222", f"{{stream: S, format: avro, columns: {COLUMNS}}}")
    assert str(caught.value).startswith("sources/events.yml:4: format: avro needs a schema registry")
    with pytest.raises(ConfigError) as caught:
        _open(make_project, "nats://127.0.0.1:4222", f"{{stream: S, format: protobuf, columns: {COLUMNS}}}")
    assert str(caught.value).startswith("sources/events.yml:4: format: protobuf needs a schema registry")
    with pytest.raises(ConfigError) as caught:
        _open(make_project, "nats://127.0.0.1:4222", "{stream: S}", extra="pasword: x\n")
    assert 'unknown option "pasword"' in str(caught.value)
    assert caught.value.hint == 'did you mean "password"?'
    with pytest.raises(ConfigError) as caught:
        _open(make_project, "nats://127.0.0.1:4222", "{subject: a.b}")
    assert 'missing required option "stream"' in str(caught.value)


def test_schema_needs_no_server(make_project: Callable[..., Path], closed_port: int) -> None:
    source, table = _open(
        make_project, f"nats://127.0.0.1:{closed_port}", f"{{stream: S, columns: {COLUMNS}}}"
    )
    assert source.schema(table).names == [
        "user_id",
        "amount",
        "event_time",
        "_gm_topic",
        "_gm_partition",
        "_gm_offset",
        "_gm_timestamp",
        "_gm_key",
    ]


def test_refused_credentials_are_named_at_once(
    nats_secured: tuple[str, tuple[str, str]],
    make_project: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, (user, password) = nats_secured
    monkeypatch.setenv("GM_TEST_NATS_PASSWORD", password + "-wrong")
    source, table = _open(
        make_project,
        url,
        "{stream: S, format: raw}",
        extra=f"user: {user}\npassword: ${{env:GM_TEST_NATS_PASSWORD}}\n",
    )
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        source.feed(table).open(lambda positions: {})
    assert time.monotonic() - started < 2  # not retried until the connect timeout
    assert f"NATS at {url} refused the credentials" in str(caught.value)
    assert password not in str(caught.value)

    monkeypatch.setenv("GM_TEST_NATS_PASSWORD", password)
    source, table = _open(
        make_project,
        url,
        "{stream: S, format: raw}",
        extra=f"user: {user}\npassword: ${{env:GM_TEST_NATS_PASSWORD}}\n",
    )
    with pytest.raises(SourceError, match='stream "S" does not exist'):  # in, so the password worked
        source.feed(table).open(lambda positions: {})


def test_a_server_restart_loses_and_repeats_nothing(
    nats_private: NatsServer, make_project: Callable[..., Path]
) -> None:
    """While the server is down, polls come back empty (the client reconnects on its own); the
    consumer died with the server, so the feed recreates it at the next sequence."""
    stream = _stream()
    _publish(nats_private.url, stream, [(f"{stream}.x", b"%d" % i) for i in range(6)])
    _, feed = _feed(make_project, nats_private.url, stream, fmt="raw")
    feed.open(lambda positions: {})
    try:
        first = feed.poll(4, 2.0)
        nats_private.stop()
        assert feed.poll(10, 0.3).values == []
        nats_private.start()
        _publish(nats_private.url, stream, [(f"{stream}.x", b"%d" % i) for i in range(6, 9)], create=False)
        rest = _poll_all(feed, 5, timeout=10)
    finally:
        feed.close()
    assert first.offsets + rest.offsets == list(range(1, 10))
    assert first.values + rest.values == [b"%d" % i for i in range(9)]
