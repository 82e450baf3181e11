"""``gristmill keys``: a key printed once on create, listed by id (never the key), revoked."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.conftest import Cli


def test_create_list_revoke(cli: Cli, make_project: Callable[..., Path]) -> None:
    root = make_project({})
    code, out = cli(
        "keys", "create", "--name", "dashboards", "--schemas", "marts", "--rate", "10/s", project=root
    )
    assert code == 0
    token = out.splitlines()[0]
    assert token.startswith("gmk_") and "not shown again" in out
    code, listed = cli("keys", "list", "-o", "json", project=root)
    [key] = json.loads(listed)["keys"]
    assert key["name"] == "dashboards" and key["state"] == "active" and key["schemas"] == ["marts"]
    assert token.startswith(key["id"] + "_") and token not in listed
    code, out = cli("keys", "revoke", key["id"], project=root)
    assert code == 0 and "revoked" in out
    code, out = cli("keys", "list", project=root)
    assert "revoked" in out and token not in out
    code, out = cli("keys", "create", "--expires", "soon", project=root)
    assert code == 2 and "--expires" in out and "30d" in out
