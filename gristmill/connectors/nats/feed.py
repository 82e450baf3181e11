"""A JetStream stream as a ``Feed``: an ephemeral pull consumer that starts right after the last
sequence the lake holds.

Exactness comes from the stored stream sequence, never from acks: the consumer acknowledges
nothing (``AckPolicy.NONE``), and every run creates a fresh consumer at the stored sequence + 1.
A consumer numbers what it delivers 1, 2, 3, ...; a hole in that numbering (messages lost in a
reconnect) or a consumer the server dropped (inactive too long) makes the feed recreate it at the
next sequence it has not handed out, so the loop never sees a gap.

nats-py is asyncio while the Feed protocol is synchronous: one event loop runs in a daemon thread
per feed and every call crosses over with ``asyncio.run_coroutine_threadsafe``, bounded by a
timeout, so a dead server is an error within seconds, never a hang."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import math
import re
import threading
from collections import deque
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamInfo
from nats.js.client import JetStreamContext

from gristmill._util.suggest import did_you_mean
from gristmill.config.secrets import redact
from gristmill.connectors.streams.feed import Delivery, Position, Resume
from gristmill.errors import SourceError, TransientSourceError

T = TypeVar("T")

FETCH_CHUNK = 1_000
"""Messages asked for per pull request; a poll for more makes several."""
FOLLOW_UP = 0.02
"""Seconds a poll that already holds messages waits for more: it returns what is there."""
INACTIVE = 300.0
"""Seconds without a pull after which the server deletes our consumer (a crashed process leaves
none behind for long); a slower caller only costs a recreated consumer."""
API_GRACE = 5.0
"""Seconds allowed beyond a call's own timeout before the feed calls the server unresponsive."""
RECONNECTS = 30
"""Reconnect attempts, a second apart, once connected; then calls fail with a clear error."""

_USERINFO = re.compile(r"^([a-z]+://)([^@/]*)@", re.IGNORECASE)


@dataclass(frozen=True)
class Connection:
    """Where and how to connect, with secret references already resolved."""

    servers: list[str]
    user: str | None = None
    password: str | None = None
    token: str | None = None
    creds: str | None = None
    connect_timeout: float = 5.0

    def shown(self) -> str:
        """The server URLs fit for a message: passwords and tokens in them blanked out."""
        return ", ".join(redact(_USERINFO.sub(_blank_userinfo, url)) for url in self.servers)


def _blank_userinfo(match: re.Match[str]) -> str:
    user, _, secret = match.group(2).partition(":")
    return f"{match.group(1)}{user}:***@" if secret else f"{match.group(1)}***@"


class _Loop:
    """An asyncio event loop in a daemon thread, for a synchronous caller."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise _Stalled() from None

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()


class _Stalled(Exception):
    """A call did not finish within its time: the server or the connection is not answering."""


class _Session:
    """The nats-py side, run on the feed's event loop: the connection, the stream and the
    consumer, and the bookkeeping that keeps delivery gap-free."""

    def __init__(self, connection: Connection, stream: str, subject: str | None) -> None:
        self.connection = connection
        self.stream = stream
        self.subject = subject
        self.client = Client()
        self.errors: deque[BaseException] = deque(maxlen=10)
        """The client's latest asynchronous errors (refusals, lost connections), for messages."""
        self.js: JetStreamContext | None = None
        self.sub: JetStreamContext.PullSubscription | None = None
        self.consumer: str | None = None
        self.next_seq = 1
        """The stream sequence after the last one handed out: where a new consumer starts."""
        self.consumer_seq = 0
        """The consumer's number of the last message handed out (1, 2, 3, ... per consumer)."""
        self.pending = 0
        """Messages the consumer still holds for us, as of the last message or consumer info."""

    async def connect(self) -> None:
        """Connect within the timeout; refused credentials end the attempt at once (the client
        would retry them until the timeout)."""
        refused = asyncio.Event()

        async def on_error(err: Exception) -> None:
            self.errors.append(err)  # kept for the message; nats-py would log a traceback
            if _refusal(err):
                refused.set()

        c = self.connection
        options: dict[str, Any] = {"user": c.user, "password": c.password, "token": c.token}
        if c.creds is not None:
            options["user_credentials"] = c.creds
        connecting = asyncio.ensure_future(
            self.client.connect(
                c.servers,
                name="gristmill",
                connect_timeout=math.ceil(c.connect_timeout),
                reconnect_time_wait=1,
                max_reconnect_attempts=RECONNECTS,
                error_cb=on_error,
                **{k: v for k, v in options.items() if v is not None},
            )
        )
        waiting = asyncio.ensure_future(refused.wait())
        try:
            await asyncio.wait(
                {connecting, waiting}, timeout=c.connect_timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if not connecting.done():
                connecting.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await connecting
                raise nats.errors.AuthorizationError() if refused.is_set() else TimeoutError()
            connecting.result()
        except BaseException:
            await self.close()
            raise
        finally:
            waiting.cancel()
        self.js = self.client.jetstream(timeout=c.connect_timeout)

    async def stream_info(self) -> StreamInfo:
        assert self.js is not None
        return await self.js.stream_info(self.stream)

    async def stream_names(self) -> list[str]:
        assert self.js is not None
        return sorted(info.config.name or "" for info in await self.js.streams_info())

    async def subscribe(self, start: int) -> None:
        """A fresh consumer delivering from stream sequence ``start``, replacing any old one."""
        assert self.js is not None
        await self._drop_consumer()
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=max(start, 1),
            ack_policy=AckPolicy.NONE,
            filter_subject=self.subject,
            inactive_threshold=INACTIVE,
            mem_storage=True,
        )
        info = await self.js.add_consumer(self.stream, config)
        self.consumer = info.name
        self.sub = await self.js.pull_subscribe_bind(stream=self.stream, name=info.name)
        self.next_seq = max(start, 1)
        self.consumer_seq = 0
        self.pending = info.num_pending or 0

    async def fetch(self, max_messages: int, timeout: float) -> list[Msg]:
        """Up to ``max_messages`` in stream order with no sequence skipped, waiting at most
        ``timeout`` for the first; an empty answer is no error."""
        assert self.sub is not None
        if self.client.is_closed:  # the client gave up reconnecting
            raise nats.errors.ConnectionClosedError()
        if self.client.is_reconnecting:  # it reconnects on its own: nothing to fetch meanwhile
            await asyncio.sleep(timeout)
            return []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        messages: list[Msg] = []
        while len(messages) < max_messages:
            wait = deadline - loop.time()
            if messages:
                wait = min(wait, FOLLOW_UP)
            if wait < 0.005:
                break
            want = min(max_messages - len(messages), FETCH_CHUNK)
            try:
                got = await self.sub.fetch(want, timeout=wait)
            except (TimeoutError, nats.js.errors.APIError, nats.errors.ConnectionReconnectingError):
                break
            kept = self._contiguous(got)
            messages += kept
            if len(kept) < len(got):  # a hole: resume from the first sequence not handed out
                await self.subscribe(self.next_seq)
                break
            if len(got) < want:
                break
        if not messages and self.client.is_connected:
            await self._check_consumer()
        return messages

    def _contiguous(self, messages: list[Msg]) -> list[Msg]:
        for index, message in enumerate(messages):
            metadata = message.metadata
            if metadata.sequence.consumer != self.consumer_seq + 1:
                return messages[:index]
            self.consumer_seq = metadata.sequence.consumer
            self.next_seq = metadata.sequence.stream + 1
            self.pending = metadata.num_pending or 0
        return messages

    async def _check_consumer(self) -> None:
        """After an empty fetch: refresh the pending count, and recreate a consumer the server
        dropped (it would otherwise answer no pull, ever)."""
        assert self.js is not None and self.consumer is not None
        try:
            info = await self.js.consumer_info(self.stream, self.consumer)
        except nats.js.errors.NotFoundError:
            await self.subscribe(self.next_seq)
            return
        except (TimeoutError, nats.errors.Error):
            return  # disconnected: the client reconnects; the next poll tries again
        self.pending = info.num_pending or 0

    async def _drop_consumer(self) -> None:
        if self.sub is not None:
            sub, self.sub = self.sub, None
            with contextlib.suppress(nats.errors.Error):
                await sub.unsubscribe()
        if self.consumer is not None and self.js is not None:
            consumer, self.consumer = self.consumer, None
            # On failure the server deletes it after INACTIVE seconds anyway.
            with contextlib.suppress(TimeoutError, nats.errors.Error):
                await asyncio.wait_for(self.js.delete_consumer(self.stream, consumer), 2)

    async def close(self) -> None:
        try:
            if self.client.is_connected:
                await self._drop_consumer()
            await asyncio.wait_for(self.client.close(), 5)
        except (TimeoutError, nats.errors.Error, OSError):
            pass


class NatsFeed:
    """One JetStream stream (optionally one subject filter) for the streaming loop.

    Position: ``(stream, 0)``; offset: the stream sequence. A message's subject lands in
    ``_gm_key`` (``_gm_topic`` is the stream, so that offsets group by position)."""

    exactly_once = True

    def __init__(self, connection: Connection, stream: str, subject: str | None, what: str) -> None:
        self.connection = connection
        self.stream = stream
        self.subject = subject
        self.what = what
        self.position: Position = (stream, 0)
        self.end = 0
        """The stream's last sequence when the feed opened (a batch read stops there)."""
        self._loop: _Loop | None = None
        self._session: _Session | None = None

    def __repr__(self) -> str:
        return f"NatsFeed({self.stream!r}, {self.subject!r})"

    # -- the Feed protocol ---------------------------------------------------------------------

    def open(self, resume: Resume) -> None:
        self._loop = _Loop(f"gristmill-nats-{self.stream}")
        session = self._session = _Session(self.connection, self.stream, self.subject)
        try:
            self._call(session.connect(), self.connection.connect_timeout + API_GRACE)
            info = self._stream_info(session)
            self.end = info.state.last_seq
            last = resume([self.position]).get(self.position)
            self._call(session.subscribe(1 if last is None else last + 1))
        except BaseException:
            self.close()
            raise

    def poll(self, max_messages: int, timeout: float) -> Delivery:
        return self.poll_until(max_messages, timeout, None)

    def take_revoked(self) -> set[Position]:
        return set()  # one process owns the stream: nothing is ever taken away

    def assigned(self) -> set[Position]:
        return {self.position} if self._session is not None else set()

    def processed(self, offsets: Mapping[Position, int]) -> None:
        """Nothing to tell the server: the consumer acknowledges nothing and the next run
        starts from the sequence stored in the lake."""

    def lag(self) -> dict[Position, int]:
        """Messages the consumer has not delivered yet (its ``num_pending``, as last seen)."""
        return {self.position: self._session.pending} if self._session is not None else {}

    def close(self) -> None:
        if self._loop is not None:
            if self._session is not None:
                with contextlib.suppress(_Stalled):
                    self._loop.run(self._session.close(), 10)
            self._loop.stop()
        self._loop = self._session = None

    # -- for the batch read --------------------------------------------------------------------

    def poll_until(self, max_messages: int, timeout: float, until: int | None) -> Delivery:
        """Like ``poll``; with ``until``, messages past that sequence are left out."""
        session = self._opened()
        messages = self._call(session.fetch(max_messages, timeout), timeout + API_GRACE)
        delivery = Delivery()
        for message in messages:
            metadata = message.metadata
            sequence = metadata.sequence.stream
            if until is not None and sequence > until:
                break
            stamp = metadata.timestamp
            delivery.add(
                message.data,
                message.subject.encode(),
                self.stream,
                0,
                sequence,
                None if stamp is None else int(stamp.timestamp() * 1000),
            )
        return delivery

    def drained(self, until: int) -> bool:
        """Whether everything up to sequence ``until`` was handed out (or nothing is left)."""
        session = self._opened()
        return session.next_seq > until or session.pending == 0

    # -- plumbing ------------------------------------------------------------------------------

    def _opened(self) -> _Session:
        if self._session is None:
            raise SourceError(f"{self.what}: the NATS feed is not open")
        return self._session

    def _stream_info(self, session: _Session) -> StreamInfo:
        try:
            return self._call(session.stream_info())
        except SourceError as err:
            if not isinstance(err.__cause__, nats.js.errors.NotFoundError):
                raise
        names = self._call(session.stream_names())
        raise SourceError(
            f'{self.what}: stream "{self.stream}" does not exist on NATS at {self.connection.shown()}',
            hint=did_you_mean(self.stream, names)
            or (f"streams: {', '.join(names)}" if names else "the server has no streams")
            + f"; create it, e.g. nats stream add {self.stream} --subjects '{self.subject or '...'}'",
        )

    def _call(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run on the feed's loop; every failure becomes a SourceError that names the server."""
        assert self._loop is not None and self._session is not None
        try:
            return self._loop.run(coroutine, timeout or self.connection.connect_timeout + API_GRACE)
        except (_Stalled, TimeoutError, OSError, nats.errors.Error) as err:
            raise self._failure(err) from err

    def _failure(self, err: BaseException) -> SourceError:
        where = f"NATS at {self.connection.shown()}"
        seen = self._session.errors if self._session is not None else []
        if _refusal(err) or any(_refusal(e) for e in seen):
            return SourceError(
                f"{self.what}: {where} refused the credentials",
                hint="check the user/password, token or creds options",
            )
        if isinstance(err, nats.js.errors.NotFoundError):
            return SourceError(f"{self.what}: {where}: {_describe(err)}")
        if isinstance(err, nats.errors.NoRespondersError | nats.js.errors.ServiceUnavailableError):
            return SourceError(
                f"{self.what}: {where} does not answer JetStream requests",
                hint="start the server with JetStream enabled (nats-server -js)",
            )
        if isinstance(err, nats.js.errors.APIError):
            return SourceError(f"{self.what}: {where} refused a JetStream request: {_describe(err)}")
        reason = _describe(seen[-1]) if seen else _describe(err)
        return TransientSourceError(
            f"{self.what}: cannot reach {where} ({reason}) for stream {self.stream}",
            hint="check that nats-server runs (with -js) and the servers option names it",
        )


def _refusal(err: BaseException) -> bool:
    """Whether the server refused the credentials (nats-py raises these as plain errors too)."""
    text = str(err).lower()
    return (
        isinstance(err, nats.errors.AuthorizationError) or "authorization" in text or "authentication" in text
    )


def _describe(err: BaseException) -> str:
    if isinstance(err, nats.js.errors.APIError) and err.description:
        return redact(err.description)
    if isinstance(err, _Stalled | TimeoutError) and not str(err):
        return "no answer in time"
    text = str(err).removeprefix("nats: ") or type(err).__name__
    return redact(text)
