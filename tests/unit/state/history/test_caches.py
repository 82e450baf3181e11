"""Planning caches: the lake state by snapshot, parse summaries, and model analyses."""

from __future__ import annotations

from pathlib import Path

from gristmill.state import SQLiteHistory


def test_the_lake_cache_holds_one_snapshot(tmp_path: Path) -> None:
    history = SQLiteHistory(tmp_path / "state.sqlite")
    assert history.caches.lake_cache() is None
    history.caches.save_lake_cache("s1", "{}")
    history.caches.save_lake_cache("s2", '{"versions": {}}')
    assert SQLiteHistory(tmp_path / "state.sqlite").caches.lake_cache() == ("s2", '{"versions": {}}')


def test_parse_summaries_and_lineage_are_kept_by_key(tmp_path: Path) -> None:
    history = SQLiteHistory(tmp_path / "state.sqlite")
    history.caches.save_parse_summaries({"k1": "a", "k2": "b"})
    history.caches.save_parse_summaries({"k1": "c"})
    history.caches.save_parse_summaries({})
    assert history.caches.parse_summaries() == {"k1": "c", "k2": "b"}
    keys = [f"key{i}" for i in range(1200)]  # more than one chunk of parameters
    history.caches.save_lineage([(k, "marts.m", f'{{"n": "{k}"}}') for k in keys])
    history.caches.save_lineage([])
    found = history.caches.lineage([*keys, "missing"])
    assert len(found) == 1200 and found["key1199"] == '{"n": "key1199"}'
