"""The three servers, each its own process on loopback: the hand-written floor, Datasette (in
``bench/.venv-datasette``, installed on first use) and ``gristmill serve`` over a project whose
one model builds the same table."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench.serving.data import events_sql

BENCH = Path(__file__).parents[1]
REPO = BENCH.parent
DATASETTE_VENV = BENCH / ".venv-datasette"
DATASETTE_PACKAGES = ("datasette==0.65.5",)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running(
    command: list[str], probe: str, *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> Iterator[str | None]:
    """Start ``command``; yield its base URL once ``probe`` answers at all (None, with the
    process's last words printed, if it exits or stays silent for 90 s). Stopped on exit."""
    port = free_port()
    command = [part.replace("{port}", str(port)) for part in command]
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-serving-{port}.log", "w+")  # noqa: SIM115
    process = subprocess.Popen(
        command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and process.poll() is None:
            try:
                httpx.get(base + probe, timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        if process.poll() is not None or time.monotonic() >= deadline:
            log.seek(0)
            print(f"  [{command[0]} did not start] {log.read()[-600:].strip()}", flush=True)
            yield None
        else:
            yield base
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def floor_command(duck: Path) -> list[str]:
    return [sys.executable, "-m", "bench.serving.floor", str(duck), "{port}"]


def ensure_datasette() -> str | None:
    """Create the venv on first use. Returns why Datasette cannot run, or None when it can."""
    exe = DATASETTE_VENV / "bin" / "datasette"
    if exe.exists():
        return None
    print(f"[setup] installing {' '.join(DATASETTE_PACKAGES)} into {DATASETTE_VENV} (first run only) ...")
    python = DATASETTE_VENV / "bin" / "python"
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", DATASETTE_VENV], check=True, capture_output=True)
        (DATASETTE_VENV / ".gitignore").write_text("*\n")
        done = subprocess.run(
            [python, "-m", "pip", "install", "--quiet", *DATASETTE_PACKAGES], capture_output=True, text=True
        )
    except (OSError, subprocess.CalledProcessError) as err:
        return f"cannot create {DATASETTE_VENV}: {err}"
    if done.returncode != 0 or not exe.exists():
        return "pip install failed: " + done.stderr.strip()[-200:]
    return None


def datasette_command(sqlite: Path) -> list[str]:
    """Immutable (``-i``: no per-request change checks), facets off, 100-row pages."""
    settings = ["suggest_facets", "off", "default_page_size", "100", "sql_time_limit_ms", "10000"]
    pairs = [part for i in range(0, len(settings), 2) for part in ("--setting", *settings[i : i + 2])]
    exe = DATASETTE_VENV / "bin" / "datasette"
    return [str(exe), "serve", "-i", str(sqlite), "--host", "127.0.0.1", "--port", "{port}", *pairs]


def gristmill_project(folder: Path, rows: int) -> tuple[Path, str | None]:
    """A project whose model ``bench.events`` builds the table; built, with a key for the bench.
    Returns the project and the key (None, with why printed, when it cannot be made)."""
    (folder / "models" / "bench").mkdir(parents=True, exist_ok=True)
    (folder / "gristmill.toml").write_text('name = "servebench"\n\n[models.bench]\nkind = "table"\n')
    (folder / "models" / "bench" / "events.sql").write_text(events_sql(rows))
    exe = REPO / ".venv" / "bin" / "gristmill"
    built = subprocess.run([exe, "run", "--project", folder], capture_output=True, text=True)
    if built.returncode != 0:
        print(f"  [gristmill run failed] {built.stdout[-400:]}{built.stderr[-400:]}")
        return folder, None
    key = subprocess.run([exe, "keys", "create", "-q", "--project", folder], capture_output=True, text=True)
    return folder, key.stdout.strip() or None


def gristmill_command(project: Path) -> list[str]:
    exe = REPO / ".venv" / "bin" / "gristmill"
    return [str(exe), "serve", "--project", str(project), "--host", "127.0.0.1", "--port", "{port}"]
