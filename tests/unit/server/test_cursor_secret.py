"""Page cursors are signed with a per-project secret: kept in the state folder (0600, made on the
first serve), so a restarted server or a second process accepts the cursors of the first."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from gristmill.errors import ConfigError
from gristmill.workspace.serving import _kept_secret


def test_the_secret_is_made_once_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "state" / "cursor.secret"
    first = _kept_secret(path)
    assert len(first) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _kept_secret(path) == first  # a restart signs and checks with the same secret


def test_a_damaged_secret_file_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "cursor.secret"
    path.write_text("not hex\n")
    with pytest.raises(ConfigError, match="delete it"):
        _kept_secret(path)
