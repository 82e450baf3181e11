"""``gristmill init``: copy the example project into a new folder."""

from __future__ import annotations

import shutil
from pathlib import Path

from gristmill.errors import ProjectError

DEMO = Path(__file__).with_name("demo")


def create_demo(folder: Path, *, force: bool = False) -> Path:
    if folder.exists() and any(folder.iterdir()) and not force:
        raise ProjectError(
            f"{folder} already exists and is not empty",
            hint="pick another name, or pass --force to write into it",
        )
    shutil.copytree(
        DEMO, folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", ".gristmill")
    )
    name = folder.resolve().name
    settings = folder / "gristmill.toml"
    if name != "shop" and name.isidentifier():
        settings.write_text(settings.read_text().replace('name = "shop"', f'name = "{name}"', 1))
    return folder
