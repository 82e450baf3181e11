"""The Spark session a ``spark`` target asks for, in its three modes, one code path:

- ``master = "local[N]"``: a JVM in this process, for development and CI;
- ``master = "spark://host:7077"``: a standalone cluster, executors in other JVMs (other
  machines); the driver (and its metastore client) stays in this process;
- ``remote = "sc://host:15002"``: Spark Connect, no JVM here; the server's metastore and
  warehouse hold the tables.

Nothing is downloaded at run time (no ``spark.jars.packages``): a PostgreSQL metastore uses the
JDBC driver Debian packages (``libpostgresql-jdbc-java``, ``/usr/share/java/postgresql.jar``).
pyspark is imported only here, when a session is asked for."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from gristmill.config.secrets import register, resolve
from gristmill.config.settings import EngineSettings, ProjectSettings
from gristmill.errors import ConfigError, EngineError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

POSTGRES_JDBC_JAR = Path("/usr/share/java/postgresql.jar")
"""Debian's PostgreSQL JDBC driver (package libpostgresql-jdbc-java)."""
_LOG_CONFIG = Path(__file__).with_name("log4j2.properties")


@dataclass(frozen=True)
class SessionPlan:
    """What a target's session is: the builder's properties, decided without starting a JVM (so
    they can be shown and tested)."""

    master: str | None
    remote: str | None
    conf: dict[str, str]
    folder: Path
    """The target's Spark folder (warehouse and embedded metastore by default; the ledger)."""


def spark_folder(settings: ProjectSettings, root: Path) -> Path:
    """``<target folder>/spark``: beside the target's run history."""
    return (root / settings.storage.state).parent / "spark"


def plan_session(settings: ProjectSettings, root: Path) -> SessionPlan:
    engine = settings.engine
    folder = spark_folder(settings, root).resolve()
    if engine.remote:
        return SessionPlan(None, resolve(engine.remote, base=root), dict(engine.conf), folder)
    master = engine.master or (f"local[{engine.threads}]" if engine.threads else "local[*]")
    warehouse = _path(engine.warehouse, root) if engine.warehouse else str(folder / "warehouse")
    conf = {
        "spark.app.name": "gristmill",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.warehouse.dir": warehouse,
        "spark.sql.catalogImplementation": "hive",
        # Times compare the same on every machine (as the DuckDB and PostgreSQL engines' sessions).
        "spark.sql.session.timeZone": "UTC",
        # Small statements are the norm (checks, bookkeeping): few shuffle partitions, which AQE
        # coalesces further; a large job can raise it in conf.
        "spark.sql.shuffle.partitions": "8",
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        # Nothing downloaded at run time: Ivy never runs.
        "spark.jars.ivy": str(folder / "ivy"),
    }
    java_options = [f"-Dlog4j.configurationFile=file:{_LOG_CONFIG}", f"-Dderby.system.home={folder}"]
    conf["spark.driver.extraJavaOptions"] = " ".join(java_options)
    if engine.memory_limit and master.startswith("local"):
        conf["spark.driver.memory"] = engine.memory_limit
    conf |= _metastore(engine, folder, root)
    conf |= engine.conf
    return SessionPlan(master, None, conf, folder)


def _path(text: str, root: Path) -> str:
    """A folder setting: a URL (``hdfs://``, ``file:``) as given, a path made absolute."""
    return text if "://" in text or text.startswith("file:") else str((root / text).resolve())


def _metastore(engine: EngineSettings, folder: Path, root: Path) -> dict[str, str]:
    """The Hive metastore's JDBC properties: an embedded Derby database in ``folder`` (one process
    at a time), or a PostgreSQL database through Debian's driver (schema created on first use)."""
    prefix = "spark.hadoop."
    if not engine.metastore:
        url = f"jdbc:derby:;databaseName={folder / 'metastore'};create=true"
        return {f"{prefix}javax.jdo.option.ConnectionURL": url}
    jdbc, user, password = jdbc_url(resolve(engine.metastore, base=root))
    if not POSTGRES_JDBC_JAR.exists():
        raise EngineError(
            f"a PostgreSQL metastore needs the JDBC driver at {POSTGRES_JDBC_JAR}",
            hint="apt-get install libpostgresql-jdbc-java (scripts/setup-spark does it)",
        )
    conf = {
        f"{prefix}javax.jdo.option.ConnectionURL": jdbc,
        f"{prefix}javax.jdo.option.ConnectionDriverName": "org.postgresql.Driver",
        f"{prefix}javax.jdo.option.ConnectionUserName": user,
        f"{prefix}javax.jdo.option.ConnectionPassword": password,
        f"{prefix}datanucleus.schema.autoCreateAll": "true",
        f"{prefix}hive.metastore.schema.verification": "false",
        "spark.driver.extraClassPath": str(POSTGRES_JDBC_JAR),
        "spark.jars": str(POSTGRES_JDBC_JAR),
    }
    return conf


def jdbc_url(url: str) -> tuple[str, str, str]:
    """``postgresql://user:pw@host:port/db`` as a JDBC URL, its user and password (the password
    registered for redaction)."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql") or not parts.path.strip("/"):
        raise ConfigError(
            "the metastore is not a PostgreSQL URL",
            location="gristmill.toml: metastore",
            hint='write it as metastore = "postgresql://user@host:5432/dbname"',
        )
    password = unquote(parts.password or "")
    register(password)
    host = parts.hostname or "localhost"
    query = f"?{parts.query}" if parts.query else ""
    jdbc = f"jdbc:postgresql://{host}:{parts.port or 5432}/{parts.path.strip('/')}{query}"
    return jdbc, unquote(parts.username or os.environ.get("USER", "postgres")), password


def start_session(plan: SessionPlan) -> SparkSession:
    """The session ``plan`` describes, or a clear error when pyspark or Java is missing. A session
    already running in this process (one JVM per process) is reused when it is the same."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise EngineError(
            "the spark engine needs pyspark",
            hint='pip install "gristmill[spark]" (and Java 17 or later for master = local[N])',
        ) from None
    builder = SparkSession.builder
    if plan.remote:
        builder = builder.remote(plan.remote)
    else:
        assert plan.master is not None
        if plan.master.startswith("local"):
            # Without it Spark binds to the first network address and warns about it.
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = builder.master(plan.master)
        plan.folder.mkdir(parents=True, exist_ok=True)
    for key, value in plan.conf.items():
        builder = builder.config(key, value)
    try:
        return builder.getOrCreate()
    except Exception as err:  # pyspark raises its own errors and py4j's; all mean no session
        where = plan.remote or plan.master
        raise EngineError(
            f"cannot start a Spark session on {where}: {_first_line(err)}",
            hint="check Java 17+ is installed (java -version) and the master or remote is reachable",
        ) from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0][:300]
