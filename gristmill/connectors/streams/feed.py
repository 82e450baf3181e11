"""The protocol between a message broker and the streaming loop.

A feed hands out micro-batches of raw messages (``Delivery``), column-wise. Where a broker can
replay (Kafka offsets, JetStream sequences), the loop keeps each position's last processed offset
in the lake, in the transaction that writes the results, and a feed resumes right after it: the
broker's own commit (consumer group offset, ack) is only told afterwards, for lag tools. That is
what makes a run exactly once whatever point it is killed at."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import pyarrow as pa

Position = tuple[str, int]
"""Where messages come from: (topic, partition) for Kafka, (stream, 0) for JetStream,
(topic filter, 0) for MQTT."""

Resume = Callable[[list[Position]], dict[Position, int]]
"""Given positions just assigned to this process, the last offset processed of each (read from
the lake at that moment); positions missing from the answer start at the earliest message."""


@dataclass
class Delivery:
    """One micro-batch of raw messages, column-wise, in arrival order per position."""

    values: list[bytes | None] = field(default_factory=list)
    keys: list[bytes | None] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    partitions: list[int] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    """Kafka offset, JetStream stream sequence, or an MQTT arrival counter."""
    timestamps: list[int | None] = field(default_factory=list)
    """Broker or producer time, milliseconds since the epoch."""

    def __post_init__(self) -> None:
        self._last: tuple[int, dict[Position, tuple[int, int]]] | None = None  # _spans(), cached
        self._arrays: dict[str, tuple[int, Any]] = {}  # arrow(), cached

    def __len__(self) -> int:
        return len(self.values)

    def add(
        self,
        value: bytes | None,
        key: bytes | None,
        topic: str,
        partition: int,
        offset: int,
        timestamp: int | None,
    ) -> None:
        self.values.append(value)
        self.keys.append(key)
        self.topics.append(topic)
        self.partitions.append(partition)
        self.offsets.append(offset)
        self.timestamps.append(timestamp)

    def drop(self, positions: set[Position]) -> None:
        """Take out the messages of ``positions`` (partitions a rebalance took away)."""
        keep = [
            i
            for i, position in enumerate(zip(self.topics, self.partitions, strict=True))
            if position not in positions
        ]
        for name in ("values", "keys", "topics", "partitions", "offsets", "timestamps"):
            column = getattr(self, name)
            setattr(self, name, [column[i] for i in keep])
        self._last = None
        self._arrays.clear()

    def last_offsets(self) -> dict[Position, int]:
        """The highest offset of each position in the batch."""
        return {position: last for position, (_, last) in self._spans().items()}

    def first_offsets(self) -> dict[Position, int]:
        """The lowest offset of each position in the batch."""
        return {position: first for position, (first, _) in self._spans().items()}

    def arrow(self, column: str, type: pa.DataType) -> pa.Array:
        """One of the columns (``partitions``, ``offsets``) as Arrow, converted once per batch."""
        import pyarrow as pa

        found = self._arrays.get(column)
        values = getattr(self, column)
        if found is None or found[0] != len(values) or found[1].type != type:
            found = (len(values), pa.array(values, type))
            self._arrays[column] = found
        array: pa.Array = found[1]
        return array

    def _spans(self) -> dict[Position, tuple[int, int]]:
        """(lowest, highest) offset of each position (computed by Arrow, once per batch)."""
        if self._last is None or self._last[0] != len(self.offsets):
            import pyarrow as pa

            offsets = self.arrow("offsets", pa.int64())
            partitions = self.arrow("partitions", pa.int32())
            wanted = [("o", "min"), ("o", "max")]
            if self.topics and self.topics.count(self.topics[0]) == len(self.topics):
                # One topic (the usual case): group by partition alone.
                grouped = pa.table({"p": partitions, "o": offsets}).group_by("p").aggregate(wanted)
                positions = [(self.topics[0], p) for p in grouped["p"].to_pylist()]
            else:
                table = pa.table({"t": self.topics, "p": partitions, "o": offsets})
                grouped = table.group_by(["t", "p"]).aggregate(wanted)
                positions = list(zip(grouped["t"].to_pylist(), grouped["p"].to_pylist(), strict=True))
            spans = zip(grouped["o_min"].to_pylist(), grouped["o_max"].to_pylist(), strict=True)
            self._last = (len(self.offsets), dict(zip(positions, spans, strict=True)))
        return self._last[1]


class Feed(Protocol):
    """A broker subscription for one source table, owned by one streaming process."""

    exactly_once: bool
    """Whether the broker replays from a stored position (else delivery is at least once: the
    broker redelivers what was not acknowledged)."""

    def open(self, resume: Resume) -> None:
        """Subscribe (join the consumer group). ``resume`` is called whenever positions are
        assigned, and the feed starts each right after the offset it returns."""
        ...

    def poll(self, max_messages: int, timeout: float) -> Delivery:
        """Up to ``max_messages`` messages, waiting at most ``timeout`` seconds for the first.
        Never buffers more than one batch ahead: a slow caller slows the feed (backpressure)."""
        ...

    def take_revoked(self) -> set[Position]:
        """Positions taken away since the last call (a rebalance): messages of them still
        unprocessed must be dropped, their new owner resumes from the lake."""
        ...

    def assigned(self) -> set[Position]:
        """The positions this process owns now."""
        ...

    def processed(self, offsets: Mapping[Position, int]) -> None:
        """Called after the lake committed these last offsets: commit them to the consumer
        group, or acknowledge the messages, so lag tools and redelivery see them."""
        ...

    def lag(self) -> dict[Position, int]:
        """Messages behind the end of each owned position (cheap: cached broker figures)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class GroupFeed(Protocol):
    """A feed that joins a consumer group before the broker assigns it anything. Without it a
    feed counts as joined from the start."""

    joined: bool
    """The group has answered (a rebalance makes it False until it answers again)."""
    join_timeout: float
    """Seconds the group may take to answer (its session timeout)."""


@runtime_checkable
class OptionedFeed(Protocol):
    """A feed that parsed its table's options itself (defaults, topics landing raw bytes)."""

    table_options: Any
    """The table's options, a ``StreamTableOptions``."""


def joined(feed: Feed) -> bool:
    """Whether the feed's consumer group has answered (always, for a feed without a group)."""
    return feed.joined if isinstance(feed, GroupFeed) else True


def join_timeout(feed: Feed) -> float:
    """How long the feed's group may take to answer (0 for a feed without a group)."""
    return feed.join_timeout if isinstance(feed, GroupFeed) else 0.0
