"""The Python source: real ``@source`` functions in a project's own module file."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from gristmill.connectors import open_source
from gristmill.errors import ConfigError, SourceError
from gristmill.project import load_project
from gristmill.workspace import Workspace

PIPELINE = """
import pyarrow as pa
from gristmill.sources import source

CALLS = []

@source
def readings(city: str, since=None):
    CALLS.append(since)
    yield {"City": city, "tempC": 21.5, "at": 1}
    yield [{"City": city, "tempC": 19.0, "at": 2}, {"City": city, "tempC": None, "at": 3}]

class Frame:  # any data frame library's object that speaks the Arrow stream interface
    def __init__(self, table):
        self.table = table

    def __arrow_c_stream__(self, requested_schema=None):
        return self.table.__arrow_c_stream__(requested_schema)

@source
def mixed():
    yield {"id": 1, "name": "a"}
    yield pa.record_batch({"id": pa.array([2], pa.int32()), "name": ["b"]})
    yield pa.table({"id": [3, 4], "name": ["c", None]})
    yield {"id": 5}                                     # a missing field lands as null
    yield [{"id": 6, "name": "f"}, {"id": 7, "name": "g"}]
    yield Frame(pa.table({"name": ["h"], "id": [8]}))   # columns in another order

@source
def drifting():
    yield {"id": 1, "temp": 20}
    yield {"id": 2, "temp": 21}
    yield {"id": 3, "temp": "hot"}

@source
def mixed_in_one_chunk():
    return [{"id": 1, "v": 1}, {"id": 2, "v": 2}, {"id": 3, "v": "x"}]

@source
def grows():
    yield {"id": 1}
    yield {"id": 2, "extra": "new"}

@source(schema=pa.schema([("Id", pa.int64()), ("amount", pa.float64())]))
def declared():
    CALLS.append("declared")
    yield {"Id": 1, "amount": 2}
    yield pa.record_batch({"Id": pa.array([2], pa.int16()), "amount": pa.array([3], pa.int64())})

@source
def by_cursor():
    yield [{"id": i, "at": i * 10} for i in range(6)]

@source
def not_rows():
    return 42

@source
def odd_item():
    yield {"id": 1}
    yield 7

@source
def fails_midway():
    yield {"id": 1}
    raise RuntimeError("the API said no")

def plain():
    return [{"id": 1}]
"""

SOURCE_YML = """
kind: python
module: pipelines/weather.py
batch_size: 2
tables:
  readings: {function: readings, params: {city: Berlin}}
  mixed: {}
  drifting: {batch_size: 1}
  mixed_in_one_chunk: {batch_size: 10}
  grows: {batch_size: 1}
  declared: {}
  by_cursor: {incremental: at}
  not_rows: {}
  odd_item: {}
  fails_midway: {}
"""


@pytest.fixture
def project(make_project: Callable[..., Path]) -> Path:
    return make_project({"sources/weather.yml": SOURCE_YML, "pipelines/weather.py": PIPELINE})


def _read(root: Path, table: str, since: Any = None) -> pa.Table:
    spec = load_project(root).sources["weather"]
    source = open_source(spec, root)
    try:
        return source.read(spec.tables[table], since).read_all()
    finally:
        source.close()


def _error(root: Path, table: str, *, since: Any = None, schema: bool = False) -> str:
    spec = load_project(root).sources["weather"]
    source = open_source(spec, root)
    try:
        with pytest.raises((SourceError, ConfigError)) as caught:
            if schema:
                source.schema(spec.tables[table])
            else:
                source.read(spec.tables[table], since).read_all()
    finally:
        source.close()
    return str(caught.value)


def test_dicts_and_lists_of_dicts_land_in_snake_case(project: Path) -> None:
    rows = _read(project, "readings")
    assert rows.column_names == ["city", "temp_c", "at"]
    assert rows.to_pylist()[1] == {"city": "Berlin", "temp_c": 19.0, "at": 2}
    assert rows.column("temp_c").to_pylist() == [21.5, 19.0, None]


def test_mixed_chunk_types_unify_to_the_first_chunks_schema(project: Path) -> None:
    rows = _read(project, "mixed")
    assert rows.schema == pa.schema([("id", pa.int64()), ("name", pa.string())])
    assert rows.column("id").to_pylist() == [1, 2, 3, 4, 5, 6, 7, 8]
    assert rows.column("name").to_pylist() == ["a", "b", "c", None, None, "f", "g", "h"]


def test_a_value_that_cannot_be_cast_names_function_chunk_row_and_field(project: Path) -> None:
    message = _error(project, "drifting")
    assert message.startswith('sources/weather.yml (drifting): drifting(): chunk 2, row 0, field "temp":')
    assert "@source(schema=" in message


def test_mixed_types_inside_one_chunk_name_the_row_and_field(project: Path) -> None:
    message = _error(project, "mixed_in_one_chunk")
    assert 'mixed_in_one_chunk(): chunk 0, row 2, field "v": Could not convert' in message


def test_a_field_the_first_chunk_lacked_is_refused_not_dropped(project: Path) -> None:
    assert 'grows(): chunk 1 has a field the schema lacks: "extra"' in _error(project, "grows")


def test_declared_schema_needs_no_call_and_casts_every_chunk(project: Path) -> None:
    spec = load_project(project).sources["weather"]
    source = open_source(spec, project)
    try:
        schema = source.schema(spec.tables["declared"])
        assert schema == pa.schema([("id", pa.int64()), ("amount", pa.float64())])
        module: Any = source.module  # type: ignore[attr-defined]
        assert module.CALLS == []
        rows = source.read(spec.tables["declared"]).read_all()
        assert rows.schema == schema and rows.to_pylist() == [
            {"id": 1, "amount": 2.0},
            {"id": 2, "amount": 3.0},
        ]
    finally:
        source.close()


def test_schema_then_read_calls_the_function_once(project: Path) -> None:
    spec = load_project(project).sources["weather"]
    source = open_source(spec, project)
    try:
        assert source.schema(spec.tables["readings"]).names == ["city", "temp_c", "at"]
        assert source.read(spec.tables["readings"]).read_all().num_rows == 3
        module: Any = source.module  # type: ignore[attr-defined]
        assert module.CALLS == [None]
    finally:
        source.close()


def test_since_is_passed_when_accepted_and_rows_before_it_are_filtered(
    make_project: Callable[..., Path],
) -> None:
    root = make_project(
        {
            "sources/weather.yml": "kind: python\nmodule: pipelines/weather.py\ntables:\n"
            "  readings: {params: {city: Oslo}, incremental: {cursor: at}}\n  by_cursor: {incremental: at}\n",
            "pipelines/weather.py": PIPELINE,
        }
    )
    spec = load_project(root).sources["weather"]
    source = open_source(spec, root)
    try:
        # readings() accepts since: it is told, and its rows before since are dropped all the same
        assert source.read(spec.tables["readings"], 2).read_all().column("at").to_pylist() == [2, 3]
        module: Any = source.module  # type: ignore[attr-defined]
        assert module.CALLS == [2]
        # by_cursor() does not accept since: called without it, filtered after
        assert source.read(spec.tables["by_cursor"], 30).read_all().column("id").to_pylist() == [3, 4, 5]
    finally:
        source.close()


def test_import_error_names_the_users_file_and_line(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "sources/weather.yml": "kind: python\nmodule: pipelines/weather.py\ntables: [readings]\n",
            "pipelines/weather.py": "import math\n\nRATE = math.sqrt(4)\nBAD = 1 / 0\n",
        }
    )
    message = _error(root, "readings", schema=True)
    assert message == (
        "sources/weather.yml: importing pipelines/weather.py failed at pipelines/weather.py:4: "
        "ZeroDivisionError: division by zero"
    )


def test_syntax_error_names_the_users_file_and_line(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "sources/weather.yml": "kind: python\nmodule: pipelines/weather.py\ntables: [readings]\n",
            "pipelines/weather.py": "x = 1\ndef broken(:\n    pass\n",
        }
    )
    assert "failed at pipelines/weather.py:2: SyntaxError" in _error(root, "readings", schema=True)


def test_errors_inside_the_function_point_at_its_line(project: Path) -> None:
    message = _error(project, "fails_midway")
    line = PIPELINE.lstrip("\n").splitlines().index('    raise RuntimeError("the API said no")') + 1
    assert message == (
        f"sources/weather.yml (fails_midway): fails_midway() failed at pipelines/weather.py:{line}: "
        "RuntimeError: the API said no"
    )


def test_unknown_function_suggests_a_decorated_one(project: Path) -> None:
    (project / "sources" / "weather.yml").write_text(
        "kind: python\nmodule: pipelines/weather.py\ntables:\n  r:\n    function: readngs\n"
    )
    spec = load_project(project).sources["weather"]
    with pytest.raises(ConfigError) as caught:
        open_source(spec, project).schema(spec.tables["r"])
    assert str(caught.value).startswith(
        'sources/weather.yml:5: pipelines/weather.py has no @source function "readngs"'
    )
    assert caught.value.hint == 'did you mean "readings"?'


def test_an_undecorated_function_says_so(project: Path) -> None:
    (project / "sources" / "weather.yml").write_text(
        "kind: python\nmodule: pipelines/weather.py\ntables: [plain]\n"
    )
    assert "plain() in pipelines/weather.py is not marked with @source" in _error(
        project, "plain", schema=True
    )


def test_what_is_not_rows_is_a_clear_error(project: Path) -> None:
    assert "not_rows() returned int, not rows" in _error(project, "not_rows")
    assert "odd_item() yielded int (item 1)" in _error(project, "odd_item")


def test_options_are_validated_with_lines(project: Path) -> None:
    (project / "sources" / "weather.yml").write_text(
        "kind: python\nmodule: pipelines/weather.py\ntables:\n"
        "  readings:\n    params: {city: X}\n    functon: x\n"
    )
    spec = load_project(project).sources["weather"]
    with pytest.raises(ConfigError) as caught:
        open_source(spec, project)
    assert str(caught.value).startswith('sources/weather.yml:6: unknown option "functon"')
    assert caught.value.hint == 'did you mean "function"?'


def test_params_must_fit_the_signature(project: Path) -> None:
    (project / "sources" / "weather.yml").write_text(
        "kind: python\nmodule: pipelines/weather.py\ntables:\n  readings:\n    params: {town: X}\n"
    )
    message = _error(project, "readings", schema=True)
    assert message.startswith("sources/weather.yml:5: readings(): ")
    assert "city" in message and "def readings(city: str, since=None)" in message


def test_missing_module_file(project: Path) -> None:
    (project / "sources" / "weather.yml").write_text("kind: python\nmodule: pipelines/nope.py\ntables: [x]\n")
    assert _error(project, "x", schema=True).startswith(
        "sources/weather.yml:2: no Python file pipelines/nope.py in the project"
    )


def test_modules_stay_private_to_each_project(tmp_path: Path, make_project: Callable[..., Path]) -> None:
    before = set(sys.modules)
    roots = []
    for city in ("Berlin", "Lima"):
        root = tmp_path / city
        (root / "pipelines").mkdir(parents=True)
        (root / "sources").mkdir()
        (root / "gristmill.toml").write_text('name = "t"\n')
        (root / "pipelines" / "weather.py").write_text(
            f"from gristmill.sources import source\n\n@source\ndef city():\n    yield {{'name': '{city}'}}\n"
        )
        (root / "sources" / "weather.yml").write_text(
            "kind: python\nmodule: pipelines/weather.py\ntables: [city]\n"
        )
        roots.append(root)
    sources = [(open_source(load_project(r).sources["weather"], r), load_project(r)) for r in roots]
    names = [
        s.read(p.sources["weather"].tables["city"]).read_all().column("name")[0].as_py() for s, p in sources
    ]
    assert names == ["Berlin", "Lima"]
    for source, _ in sources:
        source.close()
    assert set(sys.modules) - before == set()


def test_a_package_by_dotted_name_may_import_its_own_modules(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "sources/weather.yml": "kind: python\nmodule: pipelines\ntables: [stations]\n",
            "pipelines/__init__.py": "from gristmill.sources import source\nfrom .helpers import ROWS\n\n"
            "@source\ndef stations():\n    return ROWS\n",
            "pipelines/helpers.py": "ROWS = [{'id': 1}, {'id': 2}]\n",
        }
    )
    before = set(sys.modules)
    assert _read(root, "stations").column("id").to_pylist() == [1, 2]
    assert set(sys.modules) - before == set()  # the package and its helpers are gone after close


def test_a_project_run_lands_the_rows(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "sources/weather.yml": """
            kind: python
            module: pipelines/weather.py
            tables:
              readings: {params: {city: Berlin}}
              mixed: {}
            """,
            "pipelines/weather.py": PIPELINE,
        }
    )
    result = Workspace(root).run()
    assert result.ok, [s.error for s in result.steps]
    workspace = Workspace(root)
    landed = workspace.query('select city, temp_c, "at" from raw.weather__readings order by "at"').to_pylist()
    assert landed == [
        {"city": "Berlin", "temp_c": 21.5, "at": 1},
        {"city": "Berlin", "temp_c": 19.0, "at": 2},
        {"city": "Berlin", "temp_c": None, "at": 3},
    ]
    assert workspace.query("select count(*) as n from raw.weather__mixed").column("n")[0].as_py() == 8
