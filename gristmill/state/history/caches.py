"""What planning remembers between runs: the lake's state as of a catalog snapshot, what parsing
each model text found, and each model's column analysis. All three are caches: losing them costs
time, never correctness."""

from __future__ import annotations

from typing import Protocol

from gristmill.state.history.schema import Domain, locked


class Caches(Protocol):
    def lake_cache(self) -> tuple[str, str] | None:
        """(catalog snapshot, LakeState JSON) remembered by the last run, if any."""
        ...

    def save_lake_cache(self, snapshot: str, state: str) -> None: ...

    def parse_summaries(self) -> dict[str, str]:
        """What earlier parses of model texts found, by text key."""
        ...

    def save_parse_summaries(self, summaries: dict[str, str]) -> None: ...

    def lineage(self, keys: list[str]) -> dict[str, str]:
        """Stored model analyses (column lineage, JSON) by key."""
        ...

    def save_lineage(self, entries: list[tuple[str, str, str]]) -> None:
        """(key, asset, analysis JSON) rows."""
        ...


class SQLiteCaches(Domain):
    @locked
    def lake_cache(self) -> tuple[str, str] | None:
        row = self.db.execute("SELECT snapshot, state FROM lake_cache").fetchone()
        return (row[0], row[1]) if row else None

    @locked
    def save_lake_cache(self, snapshot: str, state: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO lake_cache VALUES (1, ?, ?)", (snapshot, state))

    @locked
    def parse_summaries(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT key, summary FROM model_parse").fetchall())

    @locked
    def save_parse_summaries(self, summaries: dict[str, str]) -> None:
        if summaries:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR REPLACE INTO model_parse VALUES (?, ?)", list(summaries.items()))
            self.db.execute("COMMIT")

    @locked
    def lineage(self, keys: list[str]) -> dict[str, str]:
        """Stored analyses (JSON) for these keys."""
        found: dict[str, str] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT key, analysis FROM model_lineage WHERE key IN ({marks})", chunk
            ).fetchall()
            found.update(rows)
        return found

    @locked
    def save_lineage(self, entries: list[tuple[str, str, str]]) -> None:
        """(key, asset, analysis JSON) rows."""
        if not entries:
            return
        self.db.execute("BEGIN")
        self.db.executemany("INSERT OR REPLACE INTO model_lineage VALUES (?, ?, ?)", entries)
        self.db.execute("COMMIT")
