"""An MQTT topic filter as a ``Feed``: at least once, through a persistent session and manual acks.

MQTT keeps no history to replay from, so the lake cannot hold a position the broker understands.
Instead the feed subscribes in a persistent session (a stable client id, ``clean_start`` off and a
session expiry) and acknowledges a QoS 1 message only in ``processed()``, after the lake committed
it. A process that dies before that leaves the message unacknowledged, and the broker sends it
again when the session reconnects: nothing is lost, but a message can land twice (``exactly_once``
is False; give the table a merge key to land each once).

Offsets are an arrival counter, not broker positions: they continue from the last offset the lake
holds, so they grow across restarts, but they identify no message at the broker.

paho-mqtt reads in its own thread (``loop_start``) and hands messages over through a bounded
queue: when the streaming loop falls behind, the queue fills, paho's thread waits and stops reading
the socket, and TCP holds the broker back. (MQTT 5's Receive Maximum, set to the queue size, should
do it earlier, but Mosquitto 2.0 lets a whole new window through on every ack.) Nothing is
buffered without bound."""

from __future__ import annotations

import contextlib
import queue
import ssl
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from gristmill.config.secrets import redact
from gristmill.connectors.mqtt.config import TlsOptions
from gristmill.connectors.streams.feed import Delivery, Position, Resume
from gristmill.errors import SourceError, TransientSourceError

PUT_WAIT = 0.1
"""Seconds paho's thread waits on a full queue before checking whether the feed is closing."""
RECEIVE_MAXIMUM = 65_535
"""MQTT 5's limit on unacknowledged messages a client may announce."""
_TAKEN_OVER = 0x8E
"""MQTT 5 reason code: another client connected with the same client id."""


@dataclass(frozen=True)
class Broker:
    """Where and how to connect, with secret references and file paths already resolved."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: TlsOptions | None = None
    protocol: str = "5"
    keepalive: int = 60
    connect_timeout: float = 5.0
    session_expiry: int = 86_400
    queue_size: int = 10_000

    def shown(self) -> str:
        return redact(f"mqtt{'s' if self.tls else ''}://{self.host}:{self.port}")


@dataclass(frozen=True)
class _Message:
    payload: bytes
    topic: str
    mid: int
    qos: int
    connection: int
    """Which connection brought it: only those of the current connection may be acknowledged."""
    arrived: int
    """Milliseconds since the epoch: MQTT messages carry no timestamp, so arrival time it is."""


@dataclass(frozen=True)
class _Unacked:
    offset: int
    mid: int
    qos: int
    connection: int


class MqttFeed:
    """One topic filter of one broker for the streaming loop. Position: ``(filter, 0)``; offset:
    an arrival counter. A message's own topic lands in ``_gm_key`` (``_gm_topic`` is the filter,
    so that offsets group by position)."""

    exactly_once = False

    def __init__(self, broker: Broker, topic: str, qos: int, client_id: str, what: str) -> None:
        self.broker = broker
        self.topic = topic
        self.qos = qos
        self.client_id = client_id
        self.what = what
        self.position: Position = (topic, 0)
        self._queue: queue.Queue[_Message] = queue.Queue(maxsize=broker.queue_size)
        self._client: mqtt.Client | None = None
        self._counter = -1
        self._unacked: deque[_Unacked] = deque()
        self._lock = threading.Lock()
        self._connection = 0
        self._ready = threading.Event()
        self._problem: SourceError | None = None
        self._closing = threading.Event()
        self._disconnected = threading.Event()
        self._flushed = threading.Event()

    def __repr__(self) -> str:
        return f"MqttFeed({self.topic!r}, client_id={self.client_id!r})"

    # -- the Feed protocol ---------------------------------------------------------------------

    def open(self, resume: Resume) -> None:
        last = resume([self.position]).get(self.position)
        self._counter = -1 if last is None else last
        self._closing.clear()
        self._ready.clear()
        self._problem = None
        client = self._client = self._new_client()
        try:
            if self.broker.protocol == "5":
                properties = Properties(PacketTypes.CONNECT)
                properties.SessionExpiryInterval = self.broker.session_expiry
                properties.ReceiveMaximum = min(self.broker.queue_size, RECEIVE_MAXIMUM)
                client.connect(
                    self.broker.host,
                    self.broker.port,
                    self.broker.keepalive,
                    clean_start=False,
                    properties=properties,
                )
            else:
                client.connect(self.broker.host, self.broker.port, self.broker.keepalive)
        except (OSError, ValueError) as err:
            self.close()
            reason = redact(str(err) or type(err).__name__)
            raise TransientSourceError(
                f"{self.what}: cannot reach the MQTT broker at {self.broker.shown()} ({reason})",
                hint="check that the broker runs and the host and port options name it",
            ) from None
        client.loop_start()
        if not self._ready.wait(self.broker.connect_timeout):
            self.close()
            raise TransientSourceError(
                f"{self.what}: the MQTT broker at {self.broker.shown()} did not accept the connection "
                f"and subscription to {self.topic} within {self.broker.connect_timeout:g} s",
                hint="check the port (TLS or not) and the broker's log",
            )
        if self._problem is not None:
            problem = self._problem
            self.close()
            raise problem

    def poll(self, max_messages: int, timeout: float) -> Delivery:
        delivery = Delivery()
        if self._problem is not None:
            raise self._problem
        try:
            message = self._queue.get(timeout=max(timeout, 0))
        except queue.Empty:
            return delivery
        while True:
            self._counter += 1
            delivery.add(
                message.payload, message.topic.encode(), self.topic, 0, self._counter, message.arrived
            )
            if message.qos:
                self._unacked.append(_Unacked(self._counter, message.mid, message.qos, message.connection))
            if len(delivery) >= max_messages:
                break
            try:
                message = self._queue.get_nowait()
            except queue.Empty:
                break
        return delivery

    def take_revoked(self) -> set[Position]:
        return set()  # one session, one process: nothing is ever taken away

    def assigned(self) -> set[Position]:
        return {self.position} if self._client is not None else set()

    def processed(self, offsets: Mapping[Position, int]) -> None:
        """Acknowledge, in arrival order, every message up to the offset the lake committed.

        A message that came over an earlier connection is not acknowledged: the broker sends it
        again on the new one (same packet id), and acknowledging the old copy could release
        another message that reuses the id."""
        last = offsets.get(self.position)
        if last is None or self._client is None:
            return
        with self._lock:
            while self._unacked and self._unacked[0].offset <= last:
                done = self._unacked.popleft()
                if done.connection == self._connection:
                    self._client.ack(done.mid, done.qos)

    def lag(self) -> dict[Position, int]:
        """Messages received but not yet polled: MQTT cannot tell what waits at the broker."""
        return {self.position: self._queue.qsize()} if self._client is not None else {}

    def close(self) -> None:
        """Disconnect without acknowledging anything more: the session, and every message not
        yet processed, stays at the broker for the next run."""
        client, self._client = self._client, None
        if client is None:
            return
        self._closing.set()
        with contextlib.suppress(queue.Empty):
            while True:  # unblock paho's thread if it waits on a full queue
                self._queue.get_nowait()
        if client.is_connected():
            self._flush(client)
            self._disconnected.clear()
            if client.disconnect() == mqtt.MQTT_ERR_SUCCESS:
                self._disconnected.wait(self.broker.connect_timeout)
        else:
            client.disconnect()  # stops reconnecting
        client.loop_stop()
        self._unacked.clear()

    def _flush(self, client: mqtt.Client) -> None:
        """Make sure the broker has the last acks before the socket closes.

        Closing a socket with unread data in it (messages the broker kept sending) resets the
        connection, and the broker may then drop acks it has not read yet. The broker handles a
        connection's packets in order, so once it answers a request sent after the acks (an
        UNSUBSCRIBE of a topic never subscribed), it has them."""
        self._flushed.clear()
        result, _ = client.unsubscribe(f"gristmill/flush/{self.client_id}")
        if result == mqtt.MQTT_ERR_SUCCESS:
            self._flushed.wait(self.broker.connect_timeout)

    # -- paho ----------------------------------------------------------------------------------

    def _new_client(self) -> mqtt.Client:
        b = self.broker
        v5 = b.protocol == "5"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else False,
        )
        client.manual_ack_set(True)
        client.connect_timeout = b.connect_timeout
        client.reconnect_delay_set(1, 30)
        if b.username is not None:
            client.username_pw_set(b.username, b.password)
        if b.tls is not None:
            client.tls_set(
                ca_certs=b.tls.ca_file,
                certfile=b.tls.cert_file,
                keyfile=b.tls.key_file,
                cert_reqs=ssl.CERT_REQUIRED,
            )
            client.tls_insecure_set(b.tls.insecure)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        client.on_unsubscribe = lambda *args: self._flushed.set()
        return client

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        if reason.is_failure:
            refused = "credentials" in str(reason).lower() or "authori" in str(reason).lower()
            self._fail(
                SourceError(
                    f"{self.what}: the MQTT broker at {self.broker.shown()} refused the connection: {reason}",
                    hint="check the username and password options" if refused else None,
                )
            )
            client.disconnect()
            return
        with self._lock:
            self._connection += 1
        if self.broker.protocol == "5":
            # A resumed session already has the subscription: don't send retained messages again.
            retained = SubscribeOptions.RETAIN_SEND_IF_NEW_SUB
            client.subscribe(self.topic, options=SubscribeOptions(qos=self.qos, retainHandling=retained))
        else:
            client.subscribe(self.topic, qos=self.qos)
        if flags.session_present:
            # The broker may now resend unacknowledged messages ahead of the SUBACK; they can fill
            # the queue before anyone polls, so don't wait for the SUBACK (a refusal still shows).
            self._ready.set()

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reasons: list[ReasonCode], properties: Any
    ) -> None:
        failed = next((r for r in reasons if r.is_failure), None)
        if failed is not None:
            self._fail(
                SourceError(
                    f"{self.what}: the MQTT broker at {self.broker.shown()} refused the subscription "
                    f"to {self.topic}: {failed}",
                    hint="check the topic filter and the broker's access control list",
                )
            )
            return
        self._ready.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if not mqtt.topic_matches_sub(self.topic, message.topic):
            # From a subscription an earlier configuration left in the session: not ours.
            client.ack(message.mid, message.qos)
            return
        arrived = int(time.time() * 1000)
        item = _Message(
            bytes(message.payload), message.topic, message.mid, message.qos, self._connection, arrived
        )
        while not self._closing.is_set():  # once closing, drop it: it was not acknowledged
            try:
                self._queue.put(item, timeout=PUT_WAIT)
                return
            except queue.Full:
                continue

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        self._disconnected.set()
        if reason.value == _TAKEN_OVER and not self._closing.is_set():
            self._fail(
                SourceError(
                    f"{self.what}: another client connected to {self.broker.shown()} with client id "
                    f'"{self.client_id}" and took over the session',
                    hint="run one `gristmill stream` per source, or give the table its own client_id",
                )
            )

    def _fail(self, problem: SourceError) -> None:
        self._problem = problem
        self._ready.set()
