"""Options of a ``kind: mqtt`` source (the broker and credentials) and of each of its tables
(a topic filter subscribed in a persistent session)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from gristmill.connectors.base import Options
from gristmill.connectors.streams.config import RegistryFreeTableOptions


class TlsOptions(Options):
    ca_file: str | None = None
    """The CA bundle that signed the broker's certificate; the system's when unset."""
    cert_file: str | None = None
    """A client certificate, for brokers that authenticate clients by certificate."""
    key_file: str | None = None
    insecure: bool = False
    """Skip checking the broker's host name (self-signed test brokers only)."""


class MqttSourceOptions(Options):
    host: str
    port: int | None = Field(default=None, ge=1, le=65535)
    """1883, or 8883 with TLS, when unset."""
    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    """Best as ``${env:NAME}``: resolved only when connecting, never shown in messages."""
    tls: bool | TlsOptions = False
    """``true`` for TLS with the system's CAs, or a mapping of TLS options."""
    protocol: Literal["5", "3.1.1"] = "5"
    """MQTT 5 by default (session expiry, flow control); 3.1.1 for older brokers."""
    keepalive: int = Field(default=60, ge=5)
    """Seconds between pings; the broker drops a client silent for 1.5 times as long."""
    connect_timeout: float = Field(default=5.0, gt=0)
    """Seconds to reach the broker and be accepted before giving up with an error."""
    session_expiry: int = Field(default=86_400, ge=0)
    """Seconds the broker keeps the session, and queues messages, while no process is
    connected (MQTT 5; a 3.1.1 session lasts as long as the broker's settings say)."""
    queue_size: int = Field(default=10_000, ge=1)
    """Messages received ahead of the streaming loop; when full, reading from the broker
    pauses (backpressure) rather than buffering without bound."""

    @field_validator("protocol", mode="before")
    @classmethod
    def _spelled(cls, value: Any) -> Any:
        """``protocol: 5`` is a number in YAML."""
        return str(value) if isinstance(value, int | float) else value

    def tls_options(self) -> TlsOptions | None:
        if self.tls is False:
            return None
        return TlsOptions() if self.tls is True else self.tls


class MqttTableOptions(RegistryFreeTableOptions):
    topic: str
    """A topic filter; ``+`` matches one level, ``#`` the rest (``sensors/+/temp``)."""
    qos: Literal[0, 1] = 1
    """1: at least once, each message acknowledged after the lake committed it; 0: at most
    once, nothing is redelivered."""
    client_id: str | None = None
    """The session's client id; ``gristmill-<source>-<table>`` when unset. Keep it stable: a new
    id starts an empty session, and two processes with one id take the session from each other."""

    @field_validator("topic")
    @classmethod
    def _valid_filter(cls, value: str) -> str:
        levels = value.split("/")
        if not value or "\0" in value:
            raise PydanticCustomError("invalid", "a topic filter must be a non-empty string")
        for index, level in enumerate(levels):
            if "#" in level and (level != "#" or index != len(levels) - 1):
                raise PydanticCustomError(
                    "invalid", '"#" must be a whole level and the last one: {filter}', {"filter": value}
                )
            if "+" in level and level != "+":
                raise PydanticCustomError("invalid", '"+" must be a whole level: {filter}', {"filter": value})
        return value
