"""Bad CSV and NDJSON input: the error names the right line and the option that fixes it
(issue 17, item 19). Each of these used to name no line, the wrong line, or the wrong fix."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from gristmill.workspace import Workspace

HEADER = "id,name,amount"


def lines(n: int = 200) -> list[str]:
    return [HEADER] + [f'{i},"n,{i}",{i}.5' for i in range(1, n)]


def run_error(make_project: Callable[..., Path], name: str, data: bytes, options: str = "") -> str:
    root = make_project({"sources/src.yml": f"kind: files\ntables:\n  t: {{path: data/{name}{options}}}\n"})
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / name).write_bytes(data)
    result = Workspace(root).run()
    assert not result.ok, "the load should fail"
    return str(result.steps[0].error)


def text(rows: list[str]) -> bytes:
    return ("\n".join(rows) + "\n").encode()


@pytest.mark.parametrize(
    ("bad", "message", "fix"),
    [
        ("50,n50,50.5,EXTRA", "line 51: Expected Number of Columns: 3 Found: 4", "quote a value holding"),
        ("50,n50", "line 51: Expected Number of Columns: 3 Found: 2", "{null_padding: true}"),
        ('50,"n50,50.5', "line 51: Value with unterminated quote found", "close the quote"),
    ],
)
def test_a_line_with_the_wrong_shape_is_named_with_its_fix(
    make_project: Callable[..., Path], bad: str, message: str, fix: str
) -> None:
    rows = (
        [HEADER] + [f"{i},n{i},{i}.5" for i in range(1, 200)]
        if "EXTRA" in bad or bad == "50,n50"
        else lines()
    )
    rows[50] = bad
    error = run_error(make_project, "t.csv", text(rows))
    assert message in error
    assert fix in error
    assert "automatically detect" not in error


def test_a_latin1_byte_is_named_on_its_line_with_the_encoding_option(
    make_project: Callable[..., Path],
) -> None:
    rows = lines()
    data = text(rows[:120]) + "120,café,1.5\n".encode("latin-1") + text(rows[121:])
    error = run_error(make_project, "t.csv", data)
    assert "line 121: byte 0xe9 is not UTF-8" in error
    assert "{encoding: latin-1}" in error
    assert "UTF-16" not in error


def test_an_oversized_field_is_named_on_its_line_with_the_size_option(
    make_project: Callable[..., Path],
) -> None:
    rows = lines()
    rows[3] = "3," + "x" * 3_000_000 + ",3.5"  # line 4
    error = run_error(make_project, "t.csv", text(rows))
    assert "line 4 is 3,000,006 bytes, over the maximum line size of 2,000,000" in error
    assert "{max_line_size: 3000007}" in error


def test_an_ndjson_type_error_names_the_line_of_the_value(make_project: Callable[..., Path]) -> None:
    data = "".join(json.dumps({"id": i, "v": "oops" if i == 30_719 else i}) + "\n" for i in range(40_000))
    # declared types: the value that does not fit is named on its own line
    error = run_error(
        make_project, "t.ndjson", data.encode(), ", options: {columns: {id: BIGINT, v: BIGINT}}"
    )
    assert "line 30720" in error
    # inferred types: the whole input is looked at, so the column holds every value instead of failing
    root = make_project({"sources/src.yml": "kind: files\ntables:\n  t: {path: data/t.ndjson}\n"})
    result = Workspace(root).run()
    assert result.ok, [s.error for s in result.steps]
    assert Workspace(root).query("select v from raw.src__t where id = 30719").to_pylist() == [{"v": '"oops"'}]
