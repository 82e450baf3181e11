"""``nested: child_tables`` against a reference flattening written plainly in Python.

Hypothesis builds a shape (objects, lists of objects, lists inside lists, keys that appear only
in some records or only in the second load) and two loads of documents of that shape. Each is
landed through a real project run on the default storage (DuckLake, Parquet files) in one of the
write modes, and the tables are compared with what the reference flattening of the records that
should be in the table gives: every row at every level once, every value landed, every child row
joined to exactly its own parent (by its ancestry: the root's ``id``, then list and index).

Each example is three real project runs, so CI draws 2 per mode (derandomized: the same ones
every run); ``GRISTMILL_PROPERTY_EXAMPLES=50`` explores further."""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from gristmill.workspace import Workspace

# --- shapes and documents ---------------------------------------------------------------------------

Shape = Any  # "int" | "str" | ("obj", {name: (shape, always_present)}) | ("list", shape)

NAMES = st.sampled_from(["a", "b", "c", "d", "e"])  # plain names: no snake_case renaming to mirror


def shapes(depth: int) -> st.SearchStrategy[Shape]:
    leaf = st.sampled_from(["int", "str"])
    if depth == 0:
        return leaf
    inner = shapes(depth - 1)
    obj = st.dictionaries(NAMES, st.tuples(inner, st.booleans()), min_size=1, max_size=3).map(
        lambda fields: ("obj", _one_always_present(fields))
    )
    return st.one_of(leaf, obj, inner.map(lambda s: ("list", s)))


def _one_always_present(fields: dict[str, Any]) -> dict[str, Any]:
    """DuckDB reads an object that is always empty as a map; keep one key in every object."""
    first = sorted(fields)[0]
    return {name: (shape, present or name == first) for name, (shape, present) in fields.items()}


# The root always has its id, a group (delete_insert's key) and at least one list.
ROOT = st.dictionaries(NAMES, st.tuples(shapes(3), st.booleans()), min_size=1, max_size=3).map(
    lambda fields: {**fields, "items": (("list", ("obj", _one_always_present(dict(fields)))), True)}
)


@st.composite
def value(draw: st.DrawFn, shape: Shape, empty: bool = True) -> Any:
    if shape == "int":
        return draw(st.integers(-(2**40), 2**40))
    if shape == "str":
        return draw(st.text("abcxyz ", max_size=4))  # nothing DuckDB would read as a date or number
    kind, inner = shape
    if kind == "list":
        # A list empty in every record of a load has no element type (it lands as VARCHAR); the
        # first real values give it one. Under quarantine and discard such a list's objects would
        # be new columns, set aside (not that test's subject), so there every list has an element.
        return draw(st.lists(value(inner, empty), min_size=0 if empty else 1, max_size=3))
    return {
        name: draw(value(s, empty)) for name, (s, always) in inner.items() if always or draw(st.booleans())
    }


@st.composite
def records(
    draw: st.DrawFn, shape: dict[str, Any], ids: list[int], empty: bool = True
) -> list[dict[str, Any]]:
    return [{"id": i, "g": i % 3, **draw(value(("obj", shape), empty))} for i in ids]


# --- the reference ------------------------------------------------------------------------------------

Tables = dict[str, dict[tuple[Any, ...], dict[str, Any]]]


def flatten(rows: list[dict[str, Any]]) -> Tables:
    """Tables by name, rows by ancestry: the root's id, then (list, index) per level."""
    out: Tables = {}
    for row in rows:
        _row(out, "t", ("id", row["id"]), row)
    return out


ASIDE = "__set_aside__"  # marks a list element the contract sets aside: it and its lists do not land


def _row(out: Tables, table: str, identity: tuple[Any, ...], element: Any) -> None:
    if isinstance(element, dict) and ASIDE in element:
        return  # its index is still taken: the elements after it keep theirs
    columns, lists = record(element)
    out.setdefault(table, {})[identity] = columns
    for name, items in lists:
        for index, item in enumerate(items, start=1):
            _row(out, f"{table}__{name}", (*identity, name, index), item)


def record(element: Any) -> tuple[dict[str, Any], list[tuple[str, list[Any]]]]:
    """A row's columns (objects flattened into ``a__b``) and its lists, by their child tables' names."""
    columns: dict[str, Any] = {}
    lists: list[tuple[str, list[Any]]] = []
    if isinstance(element, dict):
        _columns(element, "", columns, lists)
    elif isinstance(element, list):
        lists.append(("value", element))
    else:
        columns["value"] = element
    return columns, lists


def subtree_rows(element: Any) -> int:
    """How many rows an element lands as: itself and every row of its lists, at every depth."""
    return 1 + sum(subtree_rows(item) for _, items in record(element)[1] for item in items)


def _columns(obj: dict[str, Any], prefix: str, columns: dict[str, Any], lists: list[Any]) -> None:
    for name, item in obj.items():
        if isinstance(item, dict):
            _columns(item, f"{prefix}{name}__", columns, lists)
        elif isinstance(item, list):
            lists.append((prefix + name, item))
        else:
            columns[prefix + name] = item


# --- what landed --------------------------------------------------------------------------------------

IDS = {"_gm_row_id", "_gm_parent_id", "_gm_list_index"}


def landed(workspace: Workspace) -> Tables:
    with workspace._engine(read_only=True) as engine:  # one session for every table
        assert engine is not None
        names = engine.query(
            "select table_name from information_schema.tables where table_schema = 'raw'"
        ).column("table_name")
        rows = {
            n.as_py().removeprefix("src__"): engine.query(f"select * from raw.{n}").to_pylist()
            for n in names
            if not n.as_py().endswith("__quarantine")  # what was set aside is checked apart
        }
    out: Tables = {}
    identity: dict[Any, tuple[str, tuple[Any, ...]]] = {}  # row id -> (table, ancestry)
    for name in sorted(rows, key=lambda n: n.count("__")):  # parents before their children
        ids = [r["_gm_row_id"] for r in rows[name]]
        assert None not in ids and len(set(ids)) == len(ids), f"{name}: row ids not unique"
        for row in rows[name]:
            if name == "t":
                key: tuple[Any, ...] = ("id", row["id"])
            else:  # the parent is the row whose id it names, in the table its name starts with
                assert row["_gm_parent_id"] in identity, f"{name}: a row without its parent"
                parent_table, parent_key = identity[row["_gm_parent_id"]]
                assert name.startswith(parent_table + "__"), f"{name}: a parent in {parent_table}"
                key = (*parent_key, name.removeprefix(parent_table + "__"), row["_gm_list_index"])
            assert row["_gm_row_id"] not in identity, "a row id used in two tables"
            identity[row["_gm_row_id"]] = (name, key)
            data = {c: v for c, v in row.items() if c not in IDS and not c.startswith("_gm_")}
            assert key not in out.get(name, {}), f"{name}: {key} landed twice"
            out.setdefault(name, {})[key] = data
    return out


def assert_equal(got: Tables, want: Tables) -> None:
    for name in sorted(set(got) | set(want)):
        g, w = got.get(name, {}), want.get(name, {})
        assert sorted(g, key=repr) == sorted(w, key=repr), f"{name}: rows differ"
        for key, expected in w.items():
            # columns the table keeps from an earlier load, or that no row of this one had, are NULL
            row = {c: v for c, v in g[key].items() if v is not None}
            assert row == {c: v for c, v in expected.items() if v is not None}, f"{name} {key}"


# --- the loads ----------------------------------------------------------------------------------------


@dataclass
class Mode:
    options: str

    def expect(self, first: list[dict[str, Any]], second: list[dict[str, Any]]) -> list[dict[str, Any]]:
        raise NotImplementedError


class Replace(Mode):
    def expect(self, first: list[dict[str, Any]], second: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return second


class Append(Mode):
    def expect(self, first: list[dict[str, Any]], second: list[dict[str, Any]]) -> list[dict[str, Any]]:
        seen = {r["id"] for r in first}
        return first + [r for r in second if r["id"] not in seen]  # re-read rows are not doubled


class Merge(Mode):
    def expect(self, first: list[dict[str, Any]], second: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return list({r["id"]: r for r in first + second}.values())


class DeleteInsert(Mode):
    def expect(self, first: list[dict[str, Any]], second: list[dict[str, Any]]) -> list[dict[str, Any]]:
        groups = {r["g"] for r in second}
        return [r for r in first if r["g"] not in groups] + second


class SetAside(Mode):
    """``contract: quarantine`` or ``discard``: the rows the second load sets aside (a root or an
    item whose value does not fit the table) are left out of the expected rows, with their lists."""

    def __init__(self, options: str, merge: bool) -> None:
        super().__init__(options)
        self.merge = merge

    def expect(self, first: list[dict[str, Any]], second: list[dict[str, Any]]) -> list[dict[str, Any]]:
        kept = [_without_aside_items(r) for r in second if isinstance(r["n"], int)]
        if self.merge:
            return list({r["id"]: r for r in first + kept}.values())
        return first + kept


def _without_aside_items(row: dict[str, Any]) -> dict[str, Any]:
    row = copy.deepcopy(row)
    row["items"] = [{ASIDE: True} if isinstance(i["q"], str) else i for i in row["items"]]
    return row


MODES = {
    "replace": Replace("    nested: child_tables\n"),
    "replace_keyed": Replace("    nested: child_tables\n    key: [id]\n"),
    "append": Append("    nested: child_tables\n    write: append\n"),
    "append_incremental": Append(
        "    nested: child_tables\n    write: append\n    incremental: {cursor: id}\n"
    ),
    "merge": Merge("    nested: child_tables\n    write: merge\n    key: [id]\n"),
    "delete_insert": DeleteInsert("    nested: child_tables\n    write: delete_insert\n    key: [g]\n"),
    "append_quarantine": SetAside(
        "    nested: child_tables\n    write: append\n    contract: quarantine\n", merge=False
    ),
    "merge_discard": SetAside(
        "    nested: child_tables\n    write: merge\n    key: [id]\n    contract: discard\n", merge=True
    ),
}
SET_ASIDE = {"append_quarantine", "merge_discard"}


@st.composite
def two_loads(draw: st.DrawFn, mode: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    shape = draw(ROOT)
    if mode in SET_ASIDE:  # every key in every record: a new column is not this test's subject
        shape = _always(("obj", shape))[1]
    empty = mode not in SET_ASIDE
    first = draw(records(shape, list(range(1, draw(st.integers(1, 5)) + 1)), empty))
    top = len(first)
    if mode == "append_incremental":  # the source returns the last row again, then new ones
        second = [
            copy.deepcopy(first[-1]),
            *draw(records(shape, list(range(top + 1, top + draw(st.integers(0, 4)) + 1)), empty)),
        ]
    elif mode in ("merge", "delete_insert"):  # some ids again (changed), some new
        again = draw(st.lists(st.sampled_from(range(1, top + 1)), unique=True, max_size=top))
        fresh = list(
            range(top + 1, top + draw(st.integers(1, 3)) + 1)
        )  # an empty file: no columns to merge on
        second = draw(records(shape, sorted(again) + fresh, empty))
    else:
        second = draw(records(shape, list(range(top + 1, top + draw(st.integers(1, 5)) + 1)), empty))
    if mode in SET_ASIDE:
        # "n" at the root and "q" in every item are numbers; in the second load some are words,
        # which do not fit: those roots and items are set aside, with everything below them
        for row in first:
            row["n"] = row["id"]
            for item in row["items"]:
                item["q"] = 1
        for row in second:
            row["n"] = draw(st.sampled_from([row["id"], "bad"]))
            for item in row["items"]:
                item["q"] = draw(st.sampled_from([2, "bad"]))
        return first, second
    # a key that appears only in the second load, at the root and inside the list's objects
    late = draw(st.booleans())
    reread = {r["id"] for r in first} if mode == "append_incremental" else set()
    for row in second:
        if late and row["id"] not in reread:
            row["late"] = {"v": row["id"]}
            for item in row["items"]:
                item["late_tags"] = [row["id"], -row["id"]]
    return first, second


def _always(shape: Shape) -> Shape:
    if isinstance(shape, str):
        return shape
    kind, inner = shape
    if kind == "list":
        return ("list", _always(inner))
    return ("obj", {name: (_always(s), True) for name, (s, _) in inner.items()})


def _project(root: Path, options: str) -> None:
    (root / "sources").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "gristmill.toml").write_text('name = "t"\n')
    (root / "sources" / "src.yml").write_text(
        f"kind: files\ntables:\n  t:\n    path: data/t.ndjson\n{options}"
    )


def _load(root: Path, rows: list[dict[str, Any]]) -> Workspace:
    return _run(root, rows)[0]


def _run(root: Path, rows: list[dict[str, Any]]) -> tuple[Workspace, Any]:
    (root / "data" / "t.ndjson").write_text("".join(json.dumps(r) + "\n" for r in rows))
    workspace = Workspace(root)
    result = workspace.run()
    assert result.ok, [s.error for s in result.steps]
    return workspace, result.steps[0].load


@pytest.mark.parametrize("mode", sorted(MODES))
def test_child_tables_land_every_value_and_link_every_row_to_its_parent(mode: str) -> None:
    @settings(
        max_examples=int(os.environ.get("GRISTMILL_PROPERTY_EXAMPLES", "2")),
        deadline=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],  # a failing case is printed as found, not shrunk
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(loads=two_loads(mode))
    def check(loads: tuple[list[dict[str, Any]], list[dict[str, Any]]]) -> None:
        first, second = loads
        root = Path(tempfile.mkdtemp(prefix="gm-child-tables-"))
        try:
            _project(root, MODES[mode].options)
            assert_equal(landed(_load(root, first)), flatten(first))
            workspace, load = _run(root, second)
            assert_equal(landed(workspace), flatten(MODES[mode].expect(first, second)))
            if mode in SET_ASIDE:
                accounted_for(workspace, load, second, quarantined=mode == "append_quarantine")
                return
            # a rerun of the same input changes nothing: same rows, same ids, same links
            if mode != "append":  # a plain append adds what it reads, every time
                ids = row_ids(workspace)
                _load(root, second)
                assert row_ids(workspace) == ids
        finally:
            shutil.rmtree(root, ignore_errors=True)

    check()


def row_ids(workspace: Workspace) -> dict[str, list[tuple[str, str | None]]]:
    """Every table's (row id, parent id) pairs."""
    with workspace._engine(read_only=True) as engine:
        assert engine is not None
        names = engine.query(
            "select table_name from information_schema.tables where table_schema = 'raw'"
        ).column("table_name")
        out = {}
        for name in (n.as_py() for n in names):
            parent = "_gm_parent_id::varchar" if name != "src__t" else "null"
            rows = engine.query(f"select _gm_row_id::varchar as r, {parent} as p from raw.{name}")
            out[name] = sorted((r["r"], r["p"]) for r in rows.to_pylist())
        return out


def accounted_for(
    workspace: Workspace, load: Any, second: list[dict[str, Any]], *, quarantined: bool
) -> None:
    """Every row set aside is quarantined whole (its lists in its record) or counted as
    discarded with every row below it; nothing else is."""
    roots = [r for r in second if isinstance(r["n"], str)]
    items = [i for r in second if isinstance(r["n"], int) for i in r["items"] if isinstance(i["q"], str)]
    if not quarantined:
        assert load.rows_discarded == sum(subtree_rows(e) for e in roots + items)
        assert load.rows_quarantined == 0
        return
    assert load.rows_discarded == 0
    assert load.rows_quarantined == len(roots) + len(items)

    def held(table: str) -> list[dict[str, Any]]:
        rows = workspace.query(f"select _gm_record from raw.{table}").to_pylist() if (roots or items) else []
        out = []
        for r in rows:
            got = json.loads(r["_gm_record"])
            out.append({k: v for k, v in got.items() if not k.startswith("_gm_")})
        return sorted(out, key=repr)

    def whole(element: dict[str, Any]) -> dict[str, Any]:
        columns, lists = record(element)
        return {**columns, **dict(lists)}

    if roots:
        assert held("src__t__quarantine") == sorted((whole(r) for r in roots), key=repr)
    if items:
        assert held("src__t__items__quarantine") == sorted((whole(i) for i in items), key=repr)
