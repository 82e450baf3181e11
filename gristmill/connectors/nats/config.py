"""Options of a ``kind: nats`` source (the servers and credentials) and of each of its tables
(a JetStream stream, optionally narrowed to a subject filter)."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from gristmill.connectors.base import Options
from gristmill.connectors.streams.config import RegistryFreeTableOptions


class NatsSourceOptions(Options):
    servers: str | list[str] = "nats://127.0.0.1:4222"
    """One URL or a list (the client fails over between them); ``tls://`` for TLS."""
    user: str | None = None
    password: str | None = Field(default=None, repr=False)
    """Best as ``${env:NAME}``: resolved only when connecting, never shown in messages."""
    token: str | None = Field(default=None, repr=False)
    creds: str | None = None
    """A ``.creds`` file (JWT + NKey seed), relative to the project folder."""
    connect_timeout: float = Field(default=5.0, gt=0)
    """Seconds to reach a server before giving up with an error (never a hang)."""

    @field_validator("servers")
    @classmethod
    def _some_server(cls, value: str | list[str]) -> str | list[str]:
        if not (value if isinstance(value, list) else value.strip()):
            raise PydanticCustomError("invalid", "name at least one server URL")
        return value

    def server_list(self) -> list[str]:
        return [self.servers] if isinstance(self.servers, str) else list(self.servers)


class NatsTableOptions(RegistryFreeTableOptions):
    stream: str = Field(pattern=r"^[^.*>\s]+$")
    """The JetStream stream; it must exist (gristmill reads streams, it never creates them)."""
    subject: str | None = None
    """Only messages whose subject matches this filter (``clicks.>``); all of the stream if unset."""
