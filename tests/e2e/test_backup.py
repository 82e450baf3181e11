"""Backup and restore: a round trip equals the original, a backup taken while runs continue is
one consistent snapshot, and an interrupted or tampered backup is refused, never restored."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gristmill._util.duckdb_extensions import connect
from gristmill.errors import GristmillError
from gristmill.workspace.backups import Backups
from tests.support.crashing import ROOT, environment

MODELS = {
    # Random on every run (--full-refresh): a restore mixing two runs' files would show.
    "models/marts/a.sql": "select i, random() as r from range(3000) t(i)\n",
    "models/marts/b.sql": "select i, r * 2 as r2 from marts.a\n",
}


def gristmill(root: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "gristmill", *args, "--project", str(root)],
        check=True,
        capture_output=True,
        env={**os.environ, **environment()},
        cwd=ROOT,
    )


def tables_at(root: Path, snapshot: int | None = None) -> dict[str, list[Any]]:
    """Every table's rows, sorted, as the lake in ``root`` holds them (at ``snapshot``)."""
    con = connect(extensions=("ducklake", "sqlite"))
    options = [
        f"DATA_PATH '{(root / '.gristmill/lake').as_posix()}/'",
        "READ_ONLY",
        "OVERRIDE_DATA_PATH TRUE",
    ]
    if snapshot is not None:
        options.append(f"SNAPSHOT_VERSION {snapshot}")
    catalog = (root / ".gristmill/catalog.sqlite").as_posix()
    con.execute(f"ATTACH 'ducklake:sqlite:{catalog}' AS l ({', '.join(options)})")
    names = con.execute(
        "select table_schema, table_name from information_schema.tables where table_catalog = 'l' "
        "and table_type = 'BASE TABLE' order by 1, 2"
    ).fetchall()
    out = {}
    for schema, name in names:
        rows = con.execute(f'select * from l."{schema}"."{name}"').fetchall()
        out[f"{schema}.{name}"] = sorted(json.dumps(r, default=str) for r in rows)
    con.close()
    return out


@pytest.fixture
def project(make_project: Callable[..., Path]) -> Path:
    root = make_project(MODELS)
    gristmill(root, "run")
    return root


def fresh_copy(root: Path, tmp_path: Path) -> Path:
    """The same project folder without its lake: where a backup is restored."""
    target = tmp_path / "restored"
    shutil.copytree(root, target, ignore=shutil.ignore_patterns(".gristmill"))
    return target


def test_round_trip_equals_the_original(project: Path, tmp_path: Path) -> None:
    gristmill(project, "run", "--full-refresh")
    info = Backups.for_project(project).backup(str(tmp_path / "backups"))
    assert info.complete and info.snapshot
    [listed] = Backups.list(str(tmp_path / "backups"))
    assert listed.complete and listed.snapshot == info.snapshot
    target = fresh_copy(project, tmp_path)
    Backups.for_project(target).restore(info.url)
    restored = tables_at(target)
    assert restored == tables_at(project) and any(len(rows) == 3000 for rows in restored.values())
    with pytest.raises(GristmillError, match="already has a lake"):
        Backups.for_project(target).restore(info.url)
    Backups.for_project(target).restore(info.url, force=True)
    assert tables_at(target) == restored


def test_backup_during_runs_restores_one_consistent_snapshot(project: Path, tmp_path: Path) -> None:
    loop = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys\n"
            "while True: subprocess.run([sys.executable, '-m', 'gristmill', 'run', '--full-refresh', "
            f"'--project', {str(project)!r}], capture_output=True)",
        ],
        env={**os.environ, **environment()},
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        infos: dict[int | None, Any] = {}
        for _ in range(1000):  # until backups caught three different snapshots of running runs
            info = Backups.for_project(project).backup(str(tmp_path / "backups"))
            infos.setdefault(info.snapshot, info)
            if len(infos) == 4:
                break
            time.sleep(0.2)
    finally:
        os.killpg(loop.pid, signal.SIGKILL)
        loop.wait()
    assert len(infos) == 4
    for n, info in enumerate(infos.values()):
        target = fresh_copy(project, tmp_path / str(n))
        Backups.for_project(target).restore(info.url)
        # The restored lake is the original as it was at the backup's snapshot, table for table.
        assert tables_at(target) == tables_at(project, info.snapshot)


KILLED_BACKUP = """
import os, signal, sys
from pathlib import Path
from gristmill.runtime.backup import places, take
copies = 0
real = places.copy_hashing
def dying(*args):
    global copies
    copies += 1
    if copies == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args)
take.copy_hashing = dying
from gristmill.workspace.backups import Backups
Backups.for_project(sys.argv[1]).backup(sys.argv[2], workers=1)
"""


def test_a_killed_backup_is_refused(project: Path, tmp_path: Path) -> None:
    dest = tmp_path / "backups"
    child = subprocess.run(
        [sys.executable, "-c", KILLED_BACKUP, str(project), str(dest)],
        env={**os.environ, **environment()},
        cwd=ROOT,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL
    [partial] = Backups.list(str(dest))
    assert not partial.complete
    target = fresh_copy(project, tmp_path)
    with pytest.raises(GristmillError, match="not a complete backup"):
        Backups.for_project(target).restore(partial.url)
    assert not (target / ".gristmill" / "catalog.sqlite").exists()


def test_a_tampered_file_is_refused_by_name(project: Path, tmp_path: Path) -> None:
    info = Backups.for_project(project).backup(str(tmp_path / "backups"))
    victim = next(f for f in info.files if f.path.endswith(".parquet"))
    path = Path(info.url) / victim.path
    path.write_bytes(path.read_bytes()[:-1] + b"\0")
    target = fresh_copy(project, tmp_path)
    with pytest.raises(GristmillError, match=re.escape(f"{victim.path} does not match")):
        Backups.for_project(target).restore(info.url)
    path.unlink()
    with pytest.raises(GristmillError, match=re.escape(f"{victim.path} is missing")):
        Backups.for_project(target).restore(info.url)
    assert not (target / ".gristmill" / "catalog.sqlite").exists()


def test_a_duckdb_file_round_trip(make_project: Callable[..., Path], tmp_path: Path) -> None:
    root = make_project(MODELS, toml='name = "t"\n[storage]\nformat = "duckdb"\n')
    gristmill(root, "run")
    info = Backups.for_project(root).backup(str(tmp_path / "backups"))
    assert info.storage == "duckdb" and any(f.path == "database.duckdb" for f in info.files)
    target = fresh_copy(root, tmp_path)
    Backups.for_project(target).restore(info.url)
    con = connect(extensions=())
    counts = []
    for project in (root, target):
        path = (project / ".gristmill/warehouse.duckdb").as_posix()
        con.execute(f"ATTACH '{path}' AS w{len(counts)} (READ_ONLY)")
        tables = con.execute(
            f"select table_schema, table_name from information_schema.tables "
            f"where table_catalog = 'w{len(counts)}' and table_type = 'BASE TABLE' order by 1, 2"
        ).fetchall()
        counts.append(
            {
                f"{s}.{t}": sorted(con.execute(f'select * from w{len(counts)}."{s}"."{t}"').fetchall())
                for s, t in tables
            }
        )
    assert counts[0] == counts[1] and counts[0]
    with pytest.raises(GristmillError, match=r"storage\.format"):
        Backups.for_project(make_project_ducklake(tmp_path)).restore(info.url)


def make_project_ducklake(tmp_path: Path) -> Path:
    root = tmp_path / "other"
    root.mkdir()
    (root / "gristmill.toml").write_text('name = "t"\n')
    return root


def test_the_commands(project: Path, tmp_path: Path, cli: Any) -> None:
    dest = str(tmp_path / "backups")
    code, out = cli("backup", dest, project=project)
    assert code == 0 and "backed up snapshot" in out
    code, out = cli("backups", "list", dest)
    assert code == 0 and "complete" in out
    [info] = Backups.list(dest)
    code, out = cli("restore", info.url, project=project)
    assert code == 1 and "already has a lake" in out and "--force" in out
    code, out = cli("restore", info.url, "--force", project=project)
    assert code == 0 and "restored snapshot" in out
