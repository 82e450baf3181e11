"""The run-history protocol: SQLite by default; a PostgreSQL store implements the same calls."""

from __future__ import annotations

from typing import Any, Protocol

from gristmill.state.records import CheckRecord, MetricRecord, RunRecord, StepRecord


class RunHistory(Protocol):
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

    def start_run(self, command: str, selection: str) -> int: ...

    def record_steps(
        self,
        run_id: int,
        steps: list[StepRecord],
        checks: list[CheckRecord],
        metrics: list[MetricRecord] | None = None,
    ) -> None:
        """A batch of finished steps, check results and table metrics, in one transaction."""
        ...

    def metric_history(
        self, asset: str, metric: str, column: str = "", *, env: str = "prod", limit: int = 400
    ) -> list[MetricRecord]:
        """The latest ``limit`` non-null values of one metric, oldest first."""
        ...

    def flag_metric(self, run_id: int, asset: str, metric: str, column: str = "", env: str = "prod") -> None:
        """Mark a value an anomaly: later baselines leave it out."""
        ...

    def metric_series(
        self, assets: list[str], *, env: str = "prod", runs: int = 30
    ) -> list[MetricRecord]: ...

    def check_results(self, assets: list[str], *, env: str = "prod", runs: int = 30) -> list[CheckRecord]: ...

    def finish_run(self, run_id: int, status: str, seconds: float, summary: dict[str, Any]) -> None: ...

    def mark_abandoned(self) -> int:
        """Mark runs whose process died as failed; returns how many."""
        ...

    def runs(self, limit: int = 20) -> list[RunRecord]: ...

    def steps(self, run_id: int) -> list[StepRecord]: ...

    def last_build(self) -> dict[str, tuple[int, str, str]]: ...

    def close(self) -> None: ...
