"""The public API of ``import gristmill``: sorted, every name resolves, and importing it stays light
(every Python model imports it; the data libraries load only when a name needs them)."""

from __future__ import annotations

import json
import subprocess
import sys

import gristmill

HEAVY = ("duckdb", "pyarrow", "sqlglot", "pydantic", "numpy", "jinja2")


def test_all_is_sorted_and_every_name_resolves() -> None:
    assert gristmill.__all__ == sorted(gristmill.__all__)
    assert set(gristmill.__all__) == {"Workspace", "__version__", "model", "source"}
    for name in gristmill.__all__:
        assert getattr(gristmill, name) is not None


def test_the_public_names_are_the_ones_user_code_imports() -> None:
    from gristmill.authoring.models import model
    from gristmill.authoring.sources import source
    from gristmill.sources import source as documented_source  # docs/sources-python.md
    from gristmill.workspace import Workspace

    assert (gristmill.model, gristmill.source, gristmill.Workspace) == (model, source, Workspace)
    assert documented_source is source


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        gristmill.no_such_name  # noqa: B018
    except AttributeError as err:
        assert "no_such_name" in str(err)
    else:
        raise AssertionError("gristmill.no_such_name resolved")


def test_import_gristmill_imports_no_data_library() -> None:
    script = "import json, sys, gristmill\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    loaded = {m.split(".")[0] for m in json.loads(done.stdout)}
    assert not loaded & set(HEAVY)
