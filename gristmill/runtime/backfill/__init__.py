"""Backfills: the builds of partitioned models a chunk of partitions per run, and what became of
each partition, kept so that a stopped backfill resumes where it stopped."""

from gristmill.runtime.backfill.driver import Ask, backfill, listing
from gristmill.runtime.backfill.request import BackfillRequest
from gristmill.runtime.backfill.result import BackfillResult

__all__ = ["Ask", "BackfillRequest", "BackfillResult", "backfill", "listing"]
