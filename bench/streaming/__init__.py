"""Streaming benchmarks: JSON events from Kafka -> 1-minute tumbling sum per user -> a table, Gristmill
vs Quix Streams (`python -m bench.streaming`); produce-to-visible latency (`-m bench.streaming.latency`)."""
