"""The shape of ``gristmill.toml``."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from gristmill._util.durations import parse_duration
from gristmill.config.secrets import mask_url

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class StorageSettings(_Strict):
    format: Literal["ducklake", "duckdb"] = "ducklake"
    """``ducklake``: a catalog plus Parquet files, readable by other processes (and other engines)
    while a run writes. ``duckdb``: one DuckDB database file (``database``), several times faster
    for many small models, but a run locks it against readers in other processes."""
    database: str = ".gristmill/warehouse.duckdb"
    """The database file when ``format = "duckdb"``."""
    catalog: str = ".gristmill/catalog.sqlite"
    """DuckLake catalog: a SQLite file path (relative to the project) or ``postgres://…``."""
    data: str = ".gristmill/lake"
    """Where DuckLake writes Parquet files: a folder or an ``s3://`` URL."""
    state: str = ".gristmill/state.sqlite"
    """Run history (runs, steps, check results): a SQLite file in WAL mode."""


EngineKindName = Literal["duckdb", "postgres", "spark"]


class EngineSettings(_Strict):
    kind: EngineKindName = "duckdb"
    """Where models run: ``duckdb`` (embedded, the lake in ``[storage]``), ``postgres`` (a
    PostgreSQL 15+ server at ``url``) or ``spark`` (Apache Spark: ``master`` or ``remote``)."""
    url: str | None = None
    """The server of a ``postgres`` engine, ``postgresql://user@host:5432/dbname``; put a password
    in a secret reference (``url = "${env:WAREHOUSE_URL}"``), resolved only when it connects."""
    schema_prefix: str = ""
    """Prefixed to every schema the platform manages on a shared server (``analytics_`` makes
    ``marts`` the schema ``analytics_marts``), so several projects or people share one database."""
    threads: int | None = Field(default=None, ge=1)
    memory_limit: str | None = None
    """A DuckDB memory limit such as ``"4GB"``; the default lets DuckDB choose. On ``spark`` in
    local mode: the driver's memory (``spark.driver.memory``)."""
    master: str | None = None
    """``spark``: where executors run, ``local[N]`` (in this process's JVM; default
    ``local[threads]``, else ``local[*]``) or ``spark://host:7077`` (a standalone cluster)."""
    remote: str | None = None
    """``spark``: a Spark Connect server, ``sc://host:15002`` (no JVM in this process; the
    server's own metastore and warehouse hold the tables)."""
    warehouse: str | None = None
    """``spark``: where tables' Parquet files lie, a folder every executor sees (default
    ``<target folder>/spark/warehouse``)."""
    metastore: str | None = None
    """``spark``: the Hive metastore, ``postgresql://…`` (shared by several processes or
    machines, through Debian's JDBC driver); default an embedded Derby database in the target's
    folder (one process at a time)."""
    ledger: str | None = None
    """``spark``: where the platform commits its own state (versions, pointers, which files
    make each table), ``postgresql://…``; default the metastore's database when that is
    PostgreSQL, else a DuckDB file in the target's folder."""
    conf: dict[str, str] = Field(default_factory=dict)
    """``spark``: more Spark properties (``"spark.executor.memory" = "8g"``), set as given."""

    @model_validator(mode="after")
    def _a_server(self) -> EngineSettings:
        spark_only = {"master": self.master, "remote": self.remote, "warehouse": self.warehouse}
        spark_only |= {"metastore": self.metastore, "ledger": self.ledger}
        given = sorted(name for name, value in spark_only.items() if value) + ["conf"] * bool(self.conf)
        if self.kind != "spark" and given:
            raise ValueError(f"{', '.join(given)}: for the spark engine only")
        if self.kind == "spark":
            if self.url:
                raise ValueError("url is for the postgres engine; spark takes master or remote")
            if self.master and self.remote:
                raise ValueError("give master (a JVM in this process) or remote (Spark Connect), not both")
            if self.remote and not self.remote.startswith("sc://"):
                raise ValueError('remote is a Spark Connect address: remote = "sc://host:15002"')
            if self.remote and (self.metastore or self.warehouse):
                raise ValueError(
                    "metastore and warehouse are the Spark Connect server's own settings: "
                    "set them where the server starts"
                )
            if self.master and not self.master.startswith(("local", "spark://", "k8s://", "yarn")):
                raise ValueError("master is local[N], spark://host:7077, k8s://… or yarn")
        if self.kind == "postgres" and not self.url:
            raise ValueError('the postgres engine needs url = "postgresql://…" (or "${env:WAREHOUSE_URL}")')
        if self.kind == "duckdb" and self.url:
            raise ValueError("url is for a server engine (postgres); the duckdb engine uses [storage]")
        if self.schema_prefix and not _IDENTIFIER.match(self.schema_prefix):
            raise ValueError("schema_prefix must be letters, digits and underscores")
        return self


TARGETS_FOLDER = ".gristmill/targets"
"""Where each target keeps its state by default: ``.gristmill/targets/<name>/``."""


class TargetSettings(_Strict):
    """``[targets.<name>]``: one place the project runs (as a dbt profile's target), with its own
    state: run history, run lock, and for ``duckdb`` the lake's catalog and files."""

    engine: EngineKindName = "duckdb"
    url: str | None = None
    """The server of a ``postgres`` target (a literal password in it is masked in all output)."""
    schema_prefix: str = ""
    threads: int | None = Field(default=None, ge=1)
    memory_limit: str | None = None
    master: str | None = None
    remote: str | None = None
    warehouse: str | None = None
    metastore: str | None = None
    ledger: str | None = None
    conf: dict[str, str] = Field(default_factory=dict)
    folder: str | None = None
    """Where the target keeps its state (default ``.gristmill/targets/<name>``); ``folder =
    ".gristmill"`` keeps the lake and history a project had before it declared targets."""
    storage: StorageSettings | None = None
    """A ``duckdb`` target's own storage paths; those left unset lie in ``folder``."""

    @model_validator(mode="after")
    def _consistent(self) -> TargetSettings:
        self.engine_settings()  # the [engine] rules, said once
        if self.storage is not None and self.engine != "duckdb":
            raise ValueError(
                f"storage is for a duckdb target; a {self.engine} target keeps its tables in its "
                "database (folder places its run history and lock)"
            )
        return self

    def engine_settings(self) -> EngineSettings:
        return EngineSettings(
            kind=self.engine,
            url=self.url,
            schema_prefix=self.schema_prefix,
            threads=self.threads,
            memory_limit=self.memory_limit,
            master=self.master,
            remote=self.remote,
            warehouse=self.warehouse,
            metastore=self.metastore,
            ledger=self.ledger,
            conf=self.conf,
        )

    def storage_settings(self, name: str) -> StorageSettings:
        """The storage the target uses: what it sets, the rest under its folder."""
        folder = (self.folder or f"{TARGETS_FOLDER}/{name}").rstrip("/")
        given = self.storage or StorageSettings()
        placed = {
            "database": f"{folder}/warehouse.duckdb",
            "catalog": f"{folder}/catalog.sqlite",
            "data": f"{folder}/lake",
            "state": f"{folder}/state.sqlite",
        }
        kept = {key: getattr(given, key) for key in placed if key in given.model_fields_set}
        return StorageSettings(format=given.format, **{**placed, **kept})


class ModelDefaults(_Strict):
    kind: Literal["table", "view", "incremental", "snapshot", "dimension", "fact"] = "table"
    tags: tuple[str, ...] = ()


class CheckSettings(_Strict):
    metrics: bool = True
    """Measure table metrics (row count, null rates, distinct ratios, min/max, freshness) of every
    checked asset; anomaly checks measure what they judge either way."""
    samples: int = Field(default=5, ge=0, le=100)
    """Failing rows kept per failed check (0: none)."""


def _duration(value: object) -> timedelta:
    found = parse_duration(value)
    if found is None:
        raise ValueError(f"{value!r} is not a duration: write e.g. 45s, 30m, 2h, 1d")
    return found


Duration = Annotated[timedelta, BeforeValidator(_duration)]


class RetrySettings(_Strict):
    attempts: int = Field(default=2, ge=0, le=100)
    """Extra attempts after a transient failure (a network error, a busy server or lock);
    terminal errors (bad SQL, failed checks, bad config) are never retried."""
    delay: Duration = timedelta(seconds=5)
    """Wait before the first retry; doubled on each later one, with random jitter."""
    max_delay: Duration = timedelta(minutes=5)


class RunSettings(_Strict):
    threads: int = Field(default=4, ge=1, le=256)
    """Steps running at once. Steps that write the embedded lake take turns on it (each uses all
    of DuckDB's own threads); sources and pools share the rest."""
    timeout: Duration | None = None
    """A whole run's limit: steps still running are cancelled and rolled back."""
    step_timeout: Duration | None = None
    """One step's limit (per attempt)."""
    stop_grace: Duration = timedelta(seconds=10)
    """How long a step asked to stop (a cancel, a timeout) gets to end; one still stuck after it
    (in an engine statement that ignores the interrupt, in user code) is abandoned and the run ends."""
    retries: RetrySettings = RetrySettings()
    on_conflict: Literal["wait", "refuse"] = "refuse"
    """Another run is writing the project: wait for it, or refuse to start (the scheduler
    always waits)."""


class ScheduleSettings(_Strict):
    """When to run a selection: on a cron, to keep assets fresh, or on an event."""

    select: tuple[str, ...] = ()
    """What to run, in selection syntax (``+marts.fct_sales``, ``tag:nightly``); all when empty."""
    exclude: tuple[str, ...] = ()
    env: str = "prod"
    cron: str | None = None
    """Five fields (minute hour day month weekday), or six with seconds first."""
    timezone: str = "UTC"
    """The IANA zone the cron reads in (``Europe/Berlin``); DST gaps and repeats are handled."""
    catch_up: Literal["all", "latest", "none"] = "latest"
    """Ticks missed while the scheduler was down: run each, run the latest once, or skip them."""
    freshness: Duration | None = None
    """Keep the selected assets no older than this: run them (with what they need upstream)
    when their last build is older."""
    on_files: str | None = None
    """A glob (local folder or ``s3://`` bucket): run when a file appears or changes."""
    on_assets: tuple[str, ...] = ()
    """Run when any of these assets is updated by another run."""
    webhook: bool = False
    """Run on ``POST /hooks/<schedule>`` to the scheduler's HTTP port."""
    full_refresh: bool = False

    @model_validator(mode="after")
    def _one_trigger(self) -> ScheduleSettings:
        triggers = [self.cron, self.freshness, self.on_files, self.on_assets or None, self.webhook or None]
        if not any(t is not None for t in triggers):
            raise ValueError("needs a trigger: cron, freshness, on_files, on_assets or webhook")
        return self


class AlertSettings(_Strict):
    """Where to send alerts, and on what."""

    on: tuple[Literal["failure", "recovery", "freshness"], ...] = ("failure", "recovery", "freshness")
    webhook: str | None = None
    """A URL (Slack, Teams or any JSON receiver); usually a secret reference ``${env:SLACK_URL}``."""
    email: tuple[str, ...] = ()
    """Recipients, sent through ``smtp``."""
    smtp: str | None = None
    """``smtp://user:password@host:port`` (``smtps://`` for TLS); put the password in a reference."""
    sender: str = "gristmill@localhost"

    @model_validator(mode="after")
    def _a_channel(self) -> AlertSettings:
        if not self.webhook and not self.email:
            raise ValueError("needs a channel: webhook or email")
        if self.email and not self.smtp:
            raise ValueError('email needs smtp = "smtp://host:port"')
        return self


class LineageSettings(_Strict):
    openlineage: str | None = None
    """Where OpenLineage run events go: a file (``.gristmill/openlineage.jsonl``) or an
    ``http(s)://`` endpoint (Marquez: ``http://host:5000``)."""
    namespace: str | None = None
    """The jobs' namespace; the project name when unset."""


class ServerSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)
    token: str | None = None
    """A bearer token webhook calls must carry (a secret reference)."""
    cursor_secret: str | None = None
    """Signs the data API's page cursors (a secret reference); default: a random secret kept in
    the state folder (``cursor.secret``), so cursors outlive a restart."""
    allow_sql: bool = False
    """Serve ``POST /api/v1/sql`` (read-only, guarded; docs/serving-sql.md). ``--allow-sql`` too."""
    pg_port: int | None = Field(default=None, ge=0, le=65535)
    """Open the PostgreSQL wire door on this port (``--pg-port``); none by default."""
    sql_row_cap: int = Field(default=10_000, ge=1)
    """Rows a free SQL statement returns at most (the answer says ``truncated``)."""
    sql_timeout: float = Field(default=30.0, gt=0)
    """Seconds a free SQL statement may run before it is interrupted."""
    memory_copies_mb: int = Field(default=256, ge=0)
    """Served tables copied into the server's memory, per snapshot, up to this estimate of their
    size (rows x columns x 8 bytes): pages read native in-memory tables instead of the lake's
    Parquet files (~5x less engine time per page, measured). 0 reads the lake every time."""


class ProjectSettings(_Strict):
    name: str
    """The project's name; also used in run history and lineage events."""
    storage: StorageSettings = StorageSettings()
    engine: EngineSettings = EngineSettings()
    targets: dict[str, TargetSettings] = {}
    """Named targets (``[targets.dev]``, ``[targets.prod]``), each with its engine and its own
    state; instead of ``[engine]`` and ``[storage]``."""
    target: str | None = None
    """The default target (``--target`` and ``GRISTMILL_TARGET`` choose another); required when
    more than one is declared. Once a target is chosen, the target in use."""
    checks: CheckSettings = CheckSettings()
    run: RunSettings = RunSettings()
    pools: dict[str, int] = {}
    """Named pools: at most this many steps in the pool at once (``shopdb = 2``). A source's
    tables are in the pool named after the source (one at a time unless set here)."""
    schedules: dict[str, ScheduleSettings] = {}
    alerts: dict[str, AlertSettings] = {}
    lineage: LineageSettings = LineageSettings()
    server: ServerSettings = ServerSettings()
    models: dict[str, ModelDefaults] = {}
    """Defaults per model folder, e.g. ``[models.staging] kind = "view"``."""

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError("must be letters, digits and underscores, starting with a letter")
        return value

    @model_validator(mode="after")
    def _targets(self) -> ProjectSettings:
        declared = ", ".join(self.targets)
        if self.targets and {"engine", "storage"} & self.model_fields_set:
            table = "engine" if "engine" in self.model_fields_set else "storage"
            raise ValueError(
                f"declare [{table}] or [targets.<name>], not both: move [{table}] into each target"
            )
        for name in self.targets:
            if not _IDENTIFIER.match(name):
                raise ValueError(f'target name "{name}" must be letters, digits and underscores')
        if self.target is not None and self.target not in self.targets:
            raise ValueError(
                f'target = "{self.target}" names no declared target '
                + (f"(declared: {declared})" if self.targets else "(declare it as [targets.<name>])")
            )
        if len(self.targets) > 1 and self.target is None:
            first = next(iter(self.targets))
            raise ValueError(f'name the default target, e.g. target = "{first}" (declared: {declared})')
        _apart(self.targets)
        return self

    def defaults_for(self, folder: str) -> ModelDefaults:
        return self.models.get(folder, ModelDefaults())


def _apart(targets: dict[str, TargetSettings]) -> None:
    """Two targets sharing a state file or a lake would share versions, cursors and history."""
    seen: dict[str, str] = {}
    for name, target in targets.items():
        storage = target.storage_settings(name)
        paths = [storage.state]
        if target.engine == "duckdb":
            paths += [storage.database] if storage.format == "duckdb" else [storage.catalog, storage.data]
        else:  # a server's state lives in its database, under the target's schema prefix
            paths.append(f"{mask_url(target.url or '')} with schema_prefix {target.schema_prefix!r}")
        for path in paths:
            other = seen.setdefault(path.removeprefix("./"), name)
            if other != name:
                raise ValueError(
                    f"targets {other} and {name} both use {path}: each target keeps its own state"
                )
