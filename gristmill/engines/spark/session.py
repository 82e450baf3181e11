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
import re
import shutil
import socket
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from gristmill.config.secrets import redact, register, resolve
from gristmill.config.settings import EngineSettings, ProjectSettings
from gristmill.engines.spark.jvm_output import StderrRelay
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
        f"{prefix}datanucleus.schema.autoCreateAll": "false",
        f"{prefix}datanucleus.schema.autoCreateTables": "true",
        f"{prefix}datanucleus.schema.autoCreateColumns": "true",
        f"{prefix}datanucleus.schema.autoCreateConstraints": "false",
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
    """The session ``plan`` describes, or a clear error when pyspark or Java is missing or the
    master or server cannot be reached (in bounded time). A session already running in this
    process (one JVM per process) is reused when it is the same, refused when it is not."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise EngineError(
            "the spark engine needs pyspark",
            hint='pip install "gristmill[spark]" (and Java 17 or later for master = local[N])',
        ) from None
    _quiet_python_warnings()
    if plan.remote:
        return _connect(plan)
    assert plan.master is not None
    # Checked even when a session runs already: Java, the master and the metastore login are the
    # target's errors whether or not this process started a JVM before.
    _java()
    _reachable(plan.master)
    _metastore_reachable(plan)
    running = _running_session()
    if running is not None:
        if not _jvm.get("shared"):
            _check_same(running, plan)
        return running
    if plan.master.startswith("local"):
        # Without it Spark binds to the first network address and warns about it.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    plan.folder.mkdir(parents=True, exist_ok=True)
    _launch_jvm(plan)
    builder = SparkSession.builder.master(plan.master)
    for key, value in plan.conf.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as err:  # pyspark raises its own errors and py4j's; all mean no session
        relay = _jvm.get("relay")
        tail = list(relay.last_lines) if isinstance(relay, StderrRelay) else []
        raise _no_session(plan.master, err, _cause(tail)) from None
    if plan.master.startswith("spark://"):
        _await_executors(session, plan)
    return session


EXECUTOR_WAIT_SECONDS = 120.0
"""How long a standalone master may take to give the application its first executor (workers
start one JVM each) before the session is refused: without executors every job would wait
forever. ``spark.scheduler.maxRegisteredResourcesWaitingTime`` in ``conf`` overrides it."""
PROBE_SECONDS = 10.0
"""How long a TCP connection to a master or Spark Connect server may take before it counts as
unreachable (Spark itself retries a dead master for a minute, a dead server for minutes)."""

_jvm: dict[str, object] = {}
"""The driver JVM this process started: its stderr relay and the options it was launched with
(only a new process can change them)."""
_LAUNCH_OPTIONS = ("spark.driver.extraJavaOptions", "spark.driver.extraClassPath", "spark.driver.memory")
_SAME_CATALOG = (
    "spark.master",
    "spark.sql.warehouse.dir",
    "spark.sql.catalogImplementation",
    "spark.hadoop.javax.jdo.option.ConnectionURL",
)


def share_running_session() -> None:
    """Let every later target in this process use the running session, whatever its warehouse
    and metastore: for a test suite that starts one JVM and separates its tests by schema prefix
    (tests/support/spark_engine.py). A user's process never calls it: there a target with another
    catalog is refused, not silently served the first one's tables."""
    _jvm["shared"] = True


def _quiet_python_warnings() -> None:
    """pyspark warns on every pandas conversion that pandas 3 is not yet fully supported; it is
    advice for pyspark's maintainers, not for a user (Gristmill moves data as Arrow)."""
    warnings.filterwarnings(
        "ignore", message="PySpark does not yet fully support pandas >= 3", category=FutureWarning
    )


def _running_session() -> SparkSession | None:
    from pyspark.sql import SparkSession

    session = SparkSession._instantiatedSession
    if session is None or session.sparkContext._jsc is None:
        return None
    return session


def _check_same(running: SparkSession, plan: SessionPlan) -> None:
    """A process has one driver JVM and one SparkContext: a second target with another master,
    warehouse or metastore would silently read and write the first one's catalog."""
    conf = running.sparkContext.getConf()
    for key in _SAME_CATALOG:
        wanted = plan.master if key == "spark.master" else plan.conf.get(key)
        have = conf.get(key)
        if _normal(wanted) != _normal(have):
            raise EngineError(
                f"a Spark session with another {_setting_name(key)} already runs in this process "
                f"({redact(str(have))}, this target wants {redact(str(wanted))})",
                hint="run each Spark target in its own process (one SparkContext per process)",
            )


def _normal(value: str | None) -> str | None:
    """A setting as compared: Spark qualifies the warehouse of a running session
    (``/data/wh`` becomes ``file:/data/wh``)."""
    if value is None:
        return None
    return re.sub(r"^file:(//)?", "", value).rstrip("/") or "/"


def _setting_name(key: str) -> str:
    names = {"spark.master": "master", "spark.sql.warehouse.dir": "warehouse"}
    return names.get(key, "metastore" if "ConnectionURL" in key or "catalog" in key else key)


def _reachable(master: str) -> None:
    """A ``spark://`` master (or any of an HA list) accepts TCP connections, within
    :data:`PROBE_SECONDS`; ``local`` and resource-manager masters (``k8s://``, ``yarn``) are
    left to Spark."""
    if not master.startswith("spark://"):
        return
    addresses = master.removeprefix("spark://").split(",")
    failures = []
    for address in addresses:
        host, _, port = address.rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=PROBE_SECONDS).close()
            return
        except (OSError, ValueError) as err:
            failures.append(
                f"{address}: {err.strerror if isinstance(err, OSError) and err.strerror else err}"
            )
    raise EngineError(
        f"the Spark master {master} is not reachable ({'; '.join(failures)})",
        hint="start it (sbin/start-master.sh) or correct master in gristmill.toml",
    )


def _metastore_reachable(plan: SessionPlan) -> None:
    """A PostgreSQL metastore accepts our user and password, checked before a JVM starts: Spark
    would only find out at the first statement, in a Java stack trace."""
    prefix = "spark.hadoop.javax.jdo.option."
    if plan.conf.get(f"{prefix}ConnectionDriverName") != "org.postgresql.Driver":
        return
    import psycopg
    from psycopg.conninfo import make_conninfo

    parts = urlsplit(plan.conf[f"{prefix}ConnectionURL"].removeprefix("jdbc:"))
    user = plan.conf.get(f"{prefix}ConnectionUserName", "")
    dsn = f"postgresql://{parts.hostname}:{parts.port or 5432}{parts.path}"
    options = dict(part.split("=", 1) for part in parts.query.split("&") if "=" in part)
    password = plan.conf.get(f"{prefix}ConnectionPassword", "")
    conninfo = make_conninfo(dsn, user=user, password=password, **options)
    try:
        psycopg.connect(conninfo, connect_timeout=int(PROBE_SECONDS)).close()
    except psycopg.Error as err:
        shown = f"postgresql://{user}@{parts.hostname}:{parts.port or 5432}{parts.path}"
        raise EngineError(
            f"cannot connect to the Spark metastore {shown} (gristmill.toml: metastore): "
            f"{redact(_first_line(err))}",
            hint="check the server, user, password and database (create the database once: "
            "createdb; Spark creates its tables in it)",
        ) from None


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        raise EngineError(
            "the spark engine needs Java 17 or later for master = local[N] or spark://"
            + (f" (JAVA_HOME={home} has no bin/java)" if home else " (java is not on PATH)"),
            hint='apt-get install openjdk-17-jre-headless, or use a Spark Connect server (remote = "sc://…")',
        )
    return java


def _launch_jvm(plan: SessionPlan) -> None:
    """Start the driver JVM with its stderr on our relay (pyspark would give it ours), once per
    process; a later session must not need other launch options."""
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway

    options = {key: plan.conf.get(key) for key in _LAUNCH_OPTIONS}
    if SparkContext._gateway is not None:
        launched = _jvm.get("options", options)
        if launched != options:
            raise EngineError(
                "this process's Spark driver JVM was started for another target (other driver "
                "options, metastore driver or memory)",
                hint="run each Spark target in its own process",
            )
        return
    _java()
    conf = SparkConf(loadDefaults=False).setMaster(plan.master or "").setAll(list(plan.conf.items()))
    read_end, write_end = os.pipe()
    relay = StderrRelay(os.fdopen(read_end, "rb"))
    try:
        gateway = launch_gateway(conf, popen_kwargs={"stderr": write_end})
    except Exception as err:
        os.close(write_end)
        relay.wait_closed(5)
        raise _no_session(plan.master or "", err, _cause(list(relay.last_lines))) from None
    os.close(write_end)  # the JVM holds its own copy: the relay ends when the JVM does
    SparkContext._ensure_initialized(gateway=gateway)
    _jvm.update(relay=relay, options=options)


def _no_session(where: str, err: BaseException, cause: str = "") -> EngineError:
    detail = cause or _first_line(err)
    hint = "check Java 17+ is installed (java -version) and the master or remote is reachable"
    if "UnsupportedClassVersionError" in cause:
        hint = "Spark 4 needs Java 17 or later: install it and put it first on PATH (or set JAVA_HOME)"
    return EngineError(f"cannot start a Spark session on {_shown(where)}: {redact(detail)}", hint=hint)


def _cause(lines: list[str]) -> str:
    """The most telling line the JVM printed before the session failed: Spark's reason for
    killing the application, else the first error or exception named."""
    for line in reversed(lines):
        if "Reason: " in line:
            return line.split("Reason: ", 1)[1].strip()[:300]
    for line in lines:
        if "Error" in line or "Exception" in line or "JAVA_HOME" in line:
            return line.strip()[:300]
    return lines[-1].strip()[:300] if lines else ""


def _await_executors(session: SparkSession, plan: SessionPlan) -> None:
    """Until a standalone master has given the application an executor; stop the session and
    fail when it does not in time or the master gives up on it."""
    seconds = EXECUTOR_WAIT_SECONDS
    if "spark.scheduler.maxRegisteredResourcesWaitingTime" in plan.conf:
        seconds = float(
            session.sparkContext._jsc.sc()
            .conf()
            .getTimeAsSeconds("spark.scheduler.maxRegisteredResourcesWaitingTime")
        )
    if plan.conf.get("spark.dynamicAllocation.enabled", "false").lower() == "true":
        return  # executors come with the first tasks
    jsc = session.sparkContext._jsc.sc()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if jsc.isStopped():
            raise EngineError(
                f"the Spark master {plan.master} stopped the application before it ran anything",
                hint="see the master's log; is the driver reachable from the workers (spark.driver.host)?",
            )
        if jsc.getExecutorMemoryStatus().size() > 1:  # the driver counts as one
            return
        time.sleep(0.25)
    session.stop()
    raise EngineError(
        f"no executor started on {plan.master} within {seconds:.0f} s",
        hint="are workers alive with free cores and enough memory for spark.executor.memory? "
        "(the master's web UI lists them)",
    )


def _connect(plan: SessionPlan) -> SparkSession:
    """A Spark Connect client session: no JVM here; fails within :data:`PROBE_SECONDS` when
    nothing listens (the client itself retries for minutes)."""
    from pyspark.sql import SparkSession

    assert plan.remote is not None
    parts = urlsplit(plan.remote.split(";")[0].rstrip("/"))
    try:
        socket.create_connection((parts.hostname or "localhost", parts.port or 15002), PROBE_SECONDS).close()
    except OSError as err:
        raise EngineError(
            f"the Spark Connect server {_shown(plan.remote)} is not reachable ({err.strerror or err})",
            hint="start it (sbin/start-connect-server.sh) or correct remote in gristmill.toml",
        ) from None
    builder = SparkSession.builder.remote(plan.remote)
    for key, value in plan.conf.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
        _ = session.version  # the first call: a server that is not Spark Connect fails here
    except Exception as err:
        raise _no_session(plan.remote, err) from None
    return session


def _shown(where: str) -> str:
    """A master or remote to print: a Spark Connect URL's parameters (``;token=…``) left out."""
    return redact(where.split(";")[0].rstrip("/"))


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0][:300]
