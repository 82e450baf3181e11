"""Shared fixtures: a fresh copy of the demo project, small hand-made projects, and a CLI runner."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from gristmill.cli.app import main
from gristmill.project.scaffold import create_demo

CHINOOK_SQLITE = Path(__file__).parents[1] / "gristmill" / "project" / "demo" / "data" / "chinook.sqlite"

# Test modules by file name (names are unique across tests/, so a module keeps its marks when it
# moves). ``services``: talks to a server (PostgreSQL, MariaDB, an S3 server, a Kafka-protocol
# broker, NATS, MQTT) that the tests or scripts/services start, or runs a Spark JVM; ``slow``:
# kills processes, waits on schedules, streams for seconds or generates hundreds of inputs (the
# property tests). The fast tier (`scripts/test --fast`) leaves both out; CI runs everything. A
# module may also mark itself with ``pytestmark``.
SERVICE_MODULES = frozenset(
    {
        "test_crash_s3.py",
        "test_crash_spark.py",
        "test_files_more.py",
        "test_kafka.py",
        "test_kafka_protobuf.py",
        "test_mongodb.py",
        "test_mqtt.py",
        "test_mysql.py",
        "test_nats.py",
        "test_postgres.py",
        "test_postgres_cdc.py",
        "test_spark_cluster.py",
        "test_spark_engine.py",
        "test_spark_kinds.py",
        "test_spark_model_functions.py",
        "test_spark_sessions.py",
        "test_spark_value_checks.py",
        "test_spark_audit.py",
        "test_spark_errors.py",
        "test_spark_properties.py",
        "test_stream_partials.py",
        "test_stream_processes.py",
        "test_streaming.py",
    }
)
SLOW_MODULES = frozenset(
    {
        "test_backfill.py",
        "test_child_tables_property.py",
        "test_contract_properties.py",
        "test_crash.py",
        "test_crash_spark.py",
        "test_kafka.py",
        "test_kafka_protobuf.py",
        "test_scheduler.py",
        "test_spark_cluster.py",
        "test_stream_partials.py",
        "test_streaming.py",
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        name = Path(item.path).name
        if name in SERVICE_MODULES:
            item.add_marker(pytest.mark.services)
        if name in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _private_extension_repo(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRISTMILL_EXTENSION_REPO", str(tmp_path_factory.getbasetemp() / "extensions"))


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    return create_demo(tmp_path / "shop")


def write_files(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Path]:
    """A small project: gristmill.toml plus the given files (name -> text)."""

    def make(files: dict[str, str], *, toml: str = 'name = "t"\n') -> Path:
        root = tmp_path / "proj"
        root.mkdir(exist_ok=True)
        (root / "gristmill.toml").write_text(toml)
        return write_files(root, files)

    return make


class Cli:
    """Runs ``gristmill`` in-process exactly as the console script does; returns (exit code, output)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def __call__(self, *args: str, project: Path | None = None) -> tuple[int, str]:
        argv = [*args, *(["--project", str(project)] if project is not None else [])]
        self.capsys.readouterr()
        try:
            main(argv)
            code = 0
        except SystemExit as exit_:
            code = int(exit_.code or 0)
        captured = self.capsys.readouterr()
        return code, captured.out + captured.err


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(capsys)
