"""Schema registry failures as Gristmill errors, shared by the Avro and Protobuf decoders."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from gristmill.config.secrets import redact
from gristmill.errors import SourceError, TransientSourceError


def registry_transport_errors() -> tuple[type[Exception], ...]:
    """The registry client's network failures: it uses httpx2 where installed, else httpx.
    (Imported here: only a table read through a schema registry needs them.)"""
    import httpx

    try:
        import httpx2  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return (httpx.TransportError,)
    return (httpx.TransportError, httpx2.TransportError)


@contextmanager
def registry_failures(where: str) -> Iterator[None]:
    """Registry trouble as gristmill errors: a registry that cannot be reached or refuses the
    credentials is no fault of the message, which must not be set aside as undecodable for it.
    A schema id the registry does not know (404) stays the message's fault, rejected with it."""
    from confluent_kafka.schema_registry import SchemaRegistryError

    try:
        yield
    except registry_transport_errors() as err:
        raise TransientSourceError(
            f"{where}: the schema registry did not answer: {redact(str(err))}",
            hint="check schema_registry: url and that this machine can reach it",
        ) from None
    except SchemaRegistryError as err:
        status = err.http_status_code
        if status in (401, 403):
            raise SourceError(
                f"{where}: the schema registry refused the credentials ({status})",
                hint="check basic.auth.user.info (or the bearer settings) under schema_registry:",
            ) from None
        if status >= 500:
            raise TransientSourceError(f"{where}: the schema registry failed: {redact(str(err))}") from None
        raise
