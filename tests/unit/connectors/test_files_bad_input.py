"""Bad files fail their load with the file, the line and what to do — and a fix in the YAML works."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gristmill.workspace import Workspace


def load(make_project: Callable[..., Path], data: bytes, options: str = "") -> tuple[Path, str | None]:
    root = make_project({"sources/src.yml": f"kind: files\ntables:\n  t:\n    path: data/t.csv\n{options}"})
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "t.csv").write_bytes(data)
    [step] = Workspace(root).run().steps
    return root, step.error


def test_a_file_in_another_encoding(make_project: Callable[..., Path]) -> None:
    data = "id,name\n1,Zoë\n2,Anaïs\n".encode("latin-1")
    _, error = load(make_project, data)
    assert error is not None
    assert error.startswith("sources/src.yml (t): data/t.csv:")
    assert "line 2: byte 0xeb is not UTF-8" in error and "{encoding: latin-1}" in error
    root, error = load(make_project, data, "    options: {encoding: latin-1}\n")
    assert error is None
    assert Workspace(root).query("select name from raw.src__t order by id").column("name").to_pylist() == [
        "Zoë",
        "Anaïs",
    ]


def test_a_huge_field_gives_a_short_message(make_project: Callable[..., Path]) -> None:
    data = b"id,blob\n1," + b"x" * 3_000_000 + b"\n"
    _, error = load(make_project, data)
    assert error is not None
    assert "sources/src.yml (t): data/t.csv: line 2 is 3,000,002 bytes" in error
    assert "{max_line_size: 3000003}" in error
    assert len(error) < 5_000  # the 3 MB line is not copied into the message or the run history
    root, error = load(make_project, data, "    options: {max_line_size: 10000000}\n")
    assert error is None
    assert Workspace(root).query("select length(blob) as n from raw.src__t").to_pylist() == [{"n": 3_000_000}]


def test_type_drift_deep_in_a_file_names_the_line(make_project: Callable[..., Path]) -> None:
    data = ("id,n\n" + "".join(f"{i},{i}\n" for i in range(30_000)) + "30000,abc\n").encode()
    _, error = load(make_project, data)
    assert error is not None
    assert error.startswith("sources/src.yml (t):")
    assert "Line: 30002" in error and 'Could not convert string "abc"' in error
    root, error = load(make_project, data, "    options: {types: {n: VARCHAR}}\n")
    assert error is None
    assert Workspace(root).query("select count(*) as c from raw.src__t").to_pylist() == [{"c": 30_001}]
