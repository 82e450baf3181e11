"""The peer: Quix Streams' 1-minute tumbling sum per user (run by ``bench/.venv-quix``'s Python).

    python quix_job.py --bootstrap HOST:PORT --group G --out FILE.parquet --state-dir DIR
        [--topic events] [--expect-rows N] [--idle 3] [--guarantee exactly-once|at-least-once]
        [--no-changelog]

Written as a Quix user would write it: a JSON topic keyed by user, event time taken from the
message's ``event_time``, ``tumbling_window(60 s, grace 5 s).agg(amount=Sum("amount"),
events=Count()).final(closing_strategy="partition")`` (the default ``"key"`` strategy never emits
each user's last window). The results are collected by ``app.run(timeout=IDLE, count=N)``: it
stops once N windows came out or nothing arrived for IDLE seconds, and the rows are written to a
Parquet file (user_id, window_start, window_end, amount, events). The last line printed is JSON:
cpu_s (this process, user+sys of all threads, librdkafka's included), wall_s (from before the
imports), processing_s (first message to the file written), rows, version.

Tansu returns no topic configs from DescribeConfigs, and Quix 3.28 needs ``retention.ms`` to
derive its changelog topics' config (``KeyError: 'retention.ms'``): the shim below fills in the
Kafka default (-1, keep forever) where the broker gave none.
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()  # before the imports below, which the wall time includes

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
from datetime import datetime, timedelta  # noqa: E402

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import quixstreams  # noqa: E402
from quixstreams import Application  # noqa: E402
from quixstreams.dataframe.windows import Count, Sum  # noqa: E402
from quixstreams.models.topics.manager import TopicManager  # noqa: E402

EPOCH = datetime(1970, 1, 1)
MS = timedelta(milliseconds=1)


def _shim_topic_configs() -> None:
    derive = TopicManager.derive_topic_config.__func__  # type: ignore[attr-defined]

    def derive_topic_config(cls, topics):
        topics = list(topics)
        for topic in topics:
            config = topic.broker_config
            if config is not None:
                config.extra_config.setdefault("retention.ms", "-1")
                config.extra_config.setdefault("retention.bytes", "-1")
        return derive(cls, topics)

    TopicManager.derive_topic_config = classmethod(derive_topic_config)  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser()
    add = parser.add_argument
    add("--bootstrap", required=True)
    add("--topic", default="events")
    add("--group", required=True)
    add("--out", required=True)
    add("--state-dir", required=True)
    add("--expect-rows", type=int, default=0, help="stop once this many windows came out")
    add("--idle", type=float, default=3.0, help="stop after this many seconds without a message")
    add("--guarantee", default="exactly-once", choices=("exactly-once", "at-least-once"))
    add("--no-changelog", action="store_true")
    args = parser.parse_args()
    _shim_topic_configs()

    first: list[float] = []

    def event_time(value, headers, timestamp, timestamp_type) -> int:
        if not first:
            first.append(time.perf_counter())
        return (datetime.fromisoformat(value["event_time"]) - EPOCH) // MS

    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        processing_guarantee=args.guarantee,
        use_changelog_topics=not args.no_changelog,
        state_dir=args.state_dir,
        # Tansu's first group join takes about session.timeout.ms / 2 (librdkafka's default 45 s).
        consumer_extra_config={"session.timeout.ms": 6000},
        loglevel="WARNING",
    )
    topic = app.topic(
        args.topic, value_deserializer="json", key_deserializer="str", timestamp_extractor=event_time
    )
    sdf = app.dataframe(topic)
    sdf = (
        sdf.tumbling_window(duration_ms=60_000, grace_ms=5_000)
        .agg(amount=Sum("amount"), events=Count())
        .final(closing_strategy="partition")
    )
    rows = app.run(timeout=args.idle, count=args.expect_rows, collect=True, metadata=True)

    table = pa.table(
        {
            "user_id": pa.array([int(r["_key"]) for r in rows], pa.int64()),
            "window_start": pa.array([r["start"] for r in rows], pa.int64()).cast(pa.timestamp("ms")),
            "window_end": pa.array([r["end"] for r in rows], pa.int64()).cast(pa.timestamp("ms")),
            "amount": pa.array([r["amount"] for r in rows], pa.float64()),
            "events": pa.array([r["events"] for r in rows], pa.int64()),
        }
    )
    pq.write_table(table, args.out)
    done = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "cpu_s": usage.ru_utime + usage.ru_stime,
                "wall_s": done - _T0,
                "processing_s": done - first[0] if first else None,
                "rows": table.num_rows,
                "version": quixstreams.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
