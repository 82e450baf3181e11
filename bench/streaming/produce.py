"""The bench's events: N JSON events keyed by user, then one sentinel per partition.

    .venv/bin/python -m bench.streaming.produce --bootstrap HOST:PORT [--events N] [--topic events]
        [--jsonl FILE] [--create]

Each event is ``{"user_id": int, "amount": float, 2 decimals, "event_time": "YYYY-MM-DDTHH:MM:SS.ffffff"}``
from a seeded RNG: 1,000 users, amounts 0.01-100.00, event time advancing 1 ms per event from
2026-01-01T00:00:00 minus up to 2 s of disorder (so 1M events span ~16.7 minutes: 17 one-minute
windows). Keyed by user_id (librdkafka's default partitioner), lz4. After them, one sentinel per
partition (user_id -1, event time a day after the last event) moves every engine's watermark past
all real windows; comparisons leave user -1 out. ``--jsonl`` also writes every record (sentinels
included) as JSON lines for the DuckDB reference.
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

START = datetime(2026, 1, 1)
USERS = 1_000
DISORDER_US = 2_000_000
SENTINEL_USER = -1


@dataclass
class Events:
    records: list[tuple[bytes, bytes]]
    """(key, value) of the real events, in produce order."""
    sentinels: list[tuple[int, bytes, bytes]]
    """(partition, key, value): one per partition, produced last."""

    def __len__(self) -> int:
        return len(self.records)


def _event(user: int, cents: int, at: datetime) -> bytes:
    stamp = at.isoformat(timespec="microseconds")
    return f'{{"user_id":{user},"amount":{cents // 100}.{cents % 100:02d},"event_time":"{stamp}"}}'.encode()


def generate(n: int, *, seed: int = 7, partitions: int = 4) -> Events:
    rng = random.Random(seed)
    randrange = rng.randrange
    records: list[tuple[bytes, bytes]] = []
    append = records.append
    keys = [str(u).encode() for u in range(USERS)]
    for i in range(n):
        user = randrange(USERS)
        at = START + timedelta(microseconds=i * 1000 - randrange(DISORDER_US))
        append((keys[user], _event(user, randrange(1, 10_001), at)))
    far = START + timedelta(milliseconds=n, days=1)
    key = str(SENTINEL_USER).encode()
    sentinels = [(p, key, _event(SENTINEL_USER, 0, far)) for p in range(partitions)]
    return Events(records, sentinels)


BAD_SORTS = (
    b"\x00\xff not JSON at all",  # undecodable bytes
    b'{"user_id": 12, "amount": 3.5, "event_ti',  # cut short
    b"[1, 2, 3]",  # JSON, not an object
    b'{"user_id": 12, "amount": "3.50", "event_time": "2026-01-01T00:00:00"}',  # a string for a double
    b'{"user_id": "twelve", "amount": 3.5, "event_time": "2026-01-01T00:00:00"}',  # a string for a bigint
    b'{"user_id": 12, "amount": 3.5, "event_time": 1767225600}',  # a number for a timestamp
)
"""Messages a stream must reject (to its dead-letter table), half undecodable, half mistyped."""


def with_bad(events: Events, share: float, *, seed: int = 11) -> tuple[Events, int]:
    """A copy of ``events`` where ``share`` of the messages, spread at random, are replaced by bad
    ones (the sorts above in turn); the sentinels stay good. Returns it and how many are bad."""
    rng = random.Random(seed)
    records = list(events.records)
    chosen = sorted(rng.sample(range(len(records)), round(len(records) * share)))
    for n, i in enumerate(chosen):
        records[i] = (records[i][0], BAD_SORTS[n % len(BAD_SORTS)])
    return Events(records, events.sentinels), len(chosen)


def write_jsonl(events: Events, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        out.writelines(value + b"\n" for _, value in events.records)
        out.writelines(value + b"\n" for _, _, value in events.sentinels)


def produce(bootstrap: str, topic: str, events: Events) -> float:
    """Produce every event, then the sentinels; returns the seconds it took (flush included)."""
    from confluent_kafka import KafkaException, Producer

    errors: list[object] = []
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "compression.type": "lz4",
            "linger.ms": 20,
            "batch.size": 1_000_000,
            "queue.buffering.max.messages": 1_000_000,
            "queue.buffering.max.kbytes": 1_048_576,
            "delivery.report.only.error": True,
            "on_delivery": lambda err, _msg: errors.append(err) if err else None,
        }
    )
    started = time.perf_counter()
    send = producer.produce
    for i, (key, value) in enumerate(events.records):
        while True:
            try:
                send(topic, value, key)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 10_000 == 0:
            producer.poll(0)
    if producer.flush(120) != 0:
        raise KafkaException(f"{len(producer)} events were not delivered to {topic}")
    for partition, key, value in events.sentinels:  # after every real event of the partition
        send(topic, value, key, partition=partition)
    if producer.flush(60) != 0:
        raise KafkaException(f"the sentinels were not delivered to {topic}")
    if errors:
        raise KafkaException(f"{len(errors)} events failed, first: {errors[0]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", default="events")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--jsonl", type=Path, help="also write the events here as JSON lines")
    parser.add_argument("--create", action="store_true", help="create the topic first")
    args = parser.parse_args()
    if args.create:
        from bench.streaming.broker import create_topic

        create_topic(args.bootstrap, args.topic, args.partitions)
    events = generate(args.events, seed=args.seed, partitions=args.partitions)
    if args.jsonl:
        write_jsonl(events, args.jsonl)
    took = produce(args.bootstrap, args.topic, events)
    print(
        f"produced {len(events):,} events + {len(events.sentinels)} sentinels to {args.topic} in {took:.1f} s"
    )


if __name__ == "__main__":
    main()
