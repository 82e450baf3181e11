"""The raw engine: the same job written by hand on confluent-kafka (run by ``bench/.venv-gristmill``'s
Python), the floor a Python consumer reaches with no framework, no state kept anywhere and no
exactly-once: each message parsed with orjson, summed into a dict keyed by (user, minute).

    python plain_job.py --bootstrap HOST:PORT --group G --out FILE.parquet [--topic events] [--idle 3]

It reads until nothing arrived for IDLE seconds (as ``gristmill stream --stop-when-idle`` does),
then writes every window it saw to Parquet (user_id, window_start, window_end, amount, events):
the events are at most 2 s out of order, so no window needs closing on the way.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from confluent_kafka import Consumer, Message

MINUTE = timedelta(minutes=1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--topic", default="events")
    parser.add_argument("--idle", type=float, default=3)
    args = parser.parse_args()
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([args.topic])
    sums: dict[tuple[int, str], list[float]] = {}
    quiet = 0.0
    while quiet < args.idle or not consumer.assignment():
        messages = consumer.consume(100_000, timeout=1)
        quiet = 0.0 if messages else quiet + 1
        for value in map(Message.value, messages):
            event = orjson.loads(value)
            key = (event["user_id"], event["event_time"][:16])  # the minute, as written
            found = sums.get(key)
            if found is None:
                sums[key] = [event["amount"], 1]
            else:
                found[0] += event["amount"]
                found[1] += 1
    consumer.close()
    starts = [datetime.fromisoformat(minute) for _, minute in sums]
    pq.write_table(
        pa.table(
            {
                "user_id": [user for user, _ in sums],
                "window_start": starts,
                "window_end": [start + MINUTE for start in starts],
                "amount": [total for total, _ in sums.values()],
                "events": [count for _, count in sums.values()],
            }
        ),
        args.out,
    )


if __name__ == "__main__":
    main()
