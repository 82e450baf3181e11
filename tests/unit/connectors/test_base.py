"""Optional source features are protocols checked with isinstance."""

from __future__ import annotations

from gristmill.connectors.base import (
    Acknowledging,
    Deserializing,
    InterruptibleSource,
    NativeReads,
    Publishing,
    Streaming,
)
from gristmill.connectors.files.source import Source as FilesSource
from gristmill.connectors.kafka.source import Source as KafkaSource
from gristmill.connectors.postgres_cdc.source import Source as CdcSource


def test_each_connector_declares_what_it_offers() -> None:
    assert issubclass(FilesSource, NativeReads)
    assert issubclass(FilesSource, InterruptibleSource)
    assert not issubclass(FilesSource, Streaming)
    assert issubclass(CdcSource, Acknowledging)
    for feature in (Streaming, Deserializing, Publishing):
        assert issubclass(KafkaSource, feature), feature.__name__
    assert not issubclass(KafkaSource, NativeReads)
