"""Every command documents itself."""

from __future__ import annotations

import pytest

from tests.conftest import Cli

COMMANDS = ["init", "run", "plan", "promote", "lineage", "test", "gc", "query", "ls", "history"]


def test_top_level_help_lists_every_command(cli: Cli) -> None:
    code, out = cli("--help")
    assert code == 0
    for command in COMMANDS:
        assert f" {command} " in out


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_help(cli: Cli, command: str) -> None:
    code, out = cli(command, "--help")
    assert code == 0
    assert "Usage: gristmill " + command in out
    assert len(out.splitlines()) > 5


def test_errors_are_one_message_not_a_traceback(cli: Cli, tmp_path: object) -> None:
    code, out = cli("run", "--project", str(tmp_path))
    assert code == 2
    assert out.startswith("error: no gristmill.toml")
    assert "Traceback" not in out
    assert "hint: run `gristmill init <name>`" in out


def test_an_empty_project_says_what_to_add(cli: Cli, make_project) -> None:  # type: ignore[no-untyped-def]
    code, out = cli("run", project=make_project({}))
    assert code == 0
    assert "Nothing to run" in out and "models/<schema>/<name>.sql" in out
