"""The command line is an interface over the workspace: it imports nothing below it but errors,
config and _util (and the report it writes), and the server is not its business."""

from __future__ import annotations

import ast
from pathlib import Path

import gristmill.cli

ALLOWED = ("gristmill.cli", "gristmill.workspace", "gristmill.errors", "gristmill.config", "gristmill._util")
ALLOWED += ("gristmill.report", "gristmill")


def _imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return [name for name in found if name.split(".")[0] == "gristmill"]


def test_the_cli_imports_only_the_workspace_below_it() -> None:
    folder = Path(gristmill.cli.__file__).parent
    wrong = {
        f"{path.name}: {name}"
        for path in folder.glob("*.py")
        for name in _imports(path)
        if not any(name == a or name.startswith(a + ".") for a in ALLOWED[:-1]) and name != "gristmill"
    }
    assert not wrong, wrong


def test_command_modules_do_not_import_the_app_that_registers_them() -> None:
    folder = Path(gristmill.cli.__file__).parent
    for path in folder.glob("*.py"):
        if path.name not in ("app.py", "entry.py"):
            assert "gristmill.cli.app" not in _imports(path), path.name
