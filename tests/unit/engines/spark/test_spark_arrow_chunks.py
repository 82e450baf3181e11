"""Record batches reach Spark in bounded chunks: a 5,000,000-row reader is never held whole in
the driver, whether it is written (``write_arrow``) or staged (``stage``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from sqlglot import exp

from gristmill.config.settings import ProjectSettings
from gristmill.engines.base import Relation
from gristmill.engines.spark.engine import SparkEngine
from gristmill.engines.spark.open import open_spark
from tests.support.spark_engine import spark_settings, start_shared_session

pytestmark = pytest.mark.services

ROWS = 5_000_000
BATCH = 100_000


@pytest.fixture(scope="module", autouse=True)
def _spark(tmp_path_factory: pytest.TempPathFactory) -> None:
    start_shared_session(tmp_path_factory.mktemp("spark"))


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[SparkEngine]:
    made = open_spark(ProjectSettings(name="chunks", engine=spark_settings()), tmp_path)
    try:
        yield made
    finally:
        made.close()


class Generated:
    """A reader of ``ROWS`` rows made batch by batch, noting Arrow's allocated bytes as it goes."""

    def __init__(self) -> None:
        self.schema = pa.schema([("id", pa.int64()), ("x", pa.float64()), ("name", pa.string())])
        self.peak = 0
        self.produced = 0

    def batches(self) -> Iterator[pa.RecordBatch]:
        for start in range(0, ROWS, BATCH):
            # Computed by Arrow, so every batch lives in Arrow's memory pool, which is measured.
            ids = pc.add(pa.array(np.arange(start, start + BATCH, dtype=np.int64)), 0)
            names = pc.binary_join_element_wise("customer number ", pc.cast(ids, pa.string()), "")
            batch = pa.RecordBatch.from_arrays([ids, pc.multiply(ids, 0.5), names], schema=self.schema)
            self.produced += batch.nbytes
            self.peak = max(self.peak, pa.total_allocated_bytes())
            yield batch

    def reader(self) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(self.schema, self.batches())


def _count(engine: SparkEngine, table: exp.Table) -> int:
    row = engine.row(exp.select(exp.alias_(exp.Count(this=exp.Star()), "n")).from_(table))
    assert row is not None
    return int(row["n"])


@pytest.mark.parametrize("how", ["write_arrow", "stage"])
def test_a_five_million_row_reader_is_sent_in_bounded_chunks(engine: SparkEngine, how: str) -> None:
    data = Generated()
    baseline = pa.total_allocated_bytes()
    with engine.transaction():
        if how == "write_arrow":
            relation = Relation("raw", "big")
            assert engine.write_arrow(relation, data.reader()) == ROWS
            table = engine.table(relation)
        else:
            table = engine.stage(data.reader())
        assert _count(engine, table) == ROWS
        total = engine.row(exp.select(exp.alias_(exp.Sum(this=exp.column("id")), "s")).from_(table))
        assert total == {"s": ROWS * (ROWS - 1) // 2}  # every row once: none lost, none doubled
    held = data.peak - baseline
    assert data.produced > 200 << 20  # the reader's rows are far more than a chunk
    assert held < data.produced / 2, f"the driver held {held >> 20} MiB of {data.produced >> 20} MiB"
