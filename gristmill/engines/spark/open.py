"""Open the project's spark engine from ``[engine]`` in gristmill.toml: the session
(session.py) and the ledger (ledger.py)."""

from __future__ import annotations

import logging
from pathlib import Path

from gristmill.config.secrets import resolve
from gristmill.config.settings import ProjectSettings
from gristmill.engines.spark.engine import SparkEngine
from gristmill.engines.spark.ledger import open_ledger
from gristmill.engines.spark.session import plan_session, start_session


def open_spark(settings: ProjectSettings, root: Path, *, read_only: bool = False) -> SparkEngine:
    """The engine on the session ``[engine]`` describes, its ledger at ``ledger`` (else the
    metastore's PostgreSQL database, else ``<target folder>/spark/ledger.duckdb``). ``read_only``
    is not enforced: opening rolls a crash's journal forward."""
    engine = settings.engine
    plan = plan_session(settings, root)
    url = engine.ledger or engine.metastore
    resolved = resolve(url, base=root) if url else None
    ledger = open_ledger(resolved, plan.folder, schema_prefix=engine.schema_prefix, read_only=read_only)
    try:
        spark = start_session(plan)
        # pyspark logs every failed statement with its JVM stack; the engine raises it as an
        # EngineError with the first line instead.
        logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)
        return SparkEngine(spark, ledger, schema_prefix=engine.schema_prefix)
    except BaseException:
        ledger.close()
        raise
