"""A micro-batch of raw messages: what the loop asks of it between the broker and the decoder."""

from __future__ import annotations

import pyarrow as pa

from gristmill.connectors.streams.feed import Delivery


def _batch() -> Delivery:
    delivery = Delivery()
    for partition, offset in [(0, 5), (1, 9), (0, 6), (1, 10), (2, 1), (0, 7)]:
        delivery.add(f"{partition}:{offset}".encode(), None, "t", partition, offset, 1000 + offset)
    return delivery


def test_spans_of_each_partition() -> None:
    delivery = _batch()
    assert delivery.first_offsets() == {("t", 0): 5, ("t", 1): 9, ("t", 2): 1}
    assert delivery.last_offsets() == {("t", 0): 7, ("t", 1): 10, ("t", 2): 1}


def test_dropping_revoked_partitions_leaves_consistent_columns_and_spans() -> None:
    delivery = _batch()
    assert delivery.arrow("offsets", pa.int64()).to_pylist() == [5, 9, 6, 10, 1, 7]  # cached now
    delivery.last_offsets()
    delivery.drop({("t", 1)})
    assert delivery.values == [b"0:5", b"0:6", b"2:1", b"0:7"]
    assert delivery.timestamps == [1005, 1006, 1001, 1007]
    assert delivery.arrow("offsets", pa.int64()).to_pylist() == [5, 6, 1, 7]
    assert delivery.last_offsets() == {("t", 0): 7, ("t", 2): 1}


def test_a_dropped_partition_of_the_same_length_is_not_served_stale() -> None:
    """Same length after a drop and an add: the cached Arrow column must not come back."""
    delivery = _batch()
    delivery.arrow("partitions", pa.int32())
    delivery.drop({("t", 2)})
    delivery.add(b"3:0", None, "t", 3, 0, None)
    assert delivery.arrow("partitions", pa.int32()).to_pylist() == [0, 1, 0, 1, 0, 3]
