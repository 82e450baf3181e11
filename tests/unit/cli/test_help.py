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


def _every_command() -> list[tuple[str, object]]:
    import typer

    from gristmill.cli.app import app

    root = typer.main.get_command(app)  # a fresh tree: help texts as written, unescaped
    return [(name, command) for name, command in root.commands.items()]  # type: ignore[attr-defined]


@pytest.mark.parametrize(("name", "command"), _every_command(), ids=[n for n, _ in _every_command()])
def test_help_keeps_bracketed_words(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, name: str, command: object
) -> None:
    """Help is prose: ``[run] threads`` or ``[models.staging]`` must not be eaten as style tags."""
    import re

    monkeypatch.setenv("COLUMNS", "250")  # one line per option, so a bracketed phrase is not split
    texts = [getattr(command, "help", None) or ""]
    texts += [getattr(p, "help", None) or "" for p in getattr(command, "params", [])]
    code, out = cli(name, "--help")
    assert code == 0
    flat = " ".join(out.split())
    for text in texts:
        for bracketed in re.findall(r"\[[^\[\]]*\]", " ".join(text.split())):
            assert bracketed in flat, f"{name} --help lost {bracketed!r}"


def test_run_help_names_the_threads_setting(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    code, out = cli("run", "--help")
    assert code == 0 and "Steps at once ([run] threads in gristmill.toml, default 4)." in out
