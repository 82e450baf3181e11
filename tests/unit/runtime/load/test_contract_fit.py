"""Which values fit a column the table already holds, under quarantine and discard: a value fits
only when it is stored unchanged (reads back identically); a boolean never stands for a number nor
a number for a boolean. Anything else is set aside and counted, never coerced silently."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.unit.runtime.load.test_loader import Lake


@pytest.fixture
def lake(make_project: Callable[..., Path]) -> Callable[[str], Lake]:
    def make(contract: str) -> Lake:
        source = f"kind: files\ncontract: {contract}\ntables:\n  t: {{path: data/t.ndjson, write: append}}\n"
        return Lake(make_project({"sources/src.yml": source}))

    return make


CASES = [
    # held value, arriving values, the ones that land (as stored), the ones set aside
    pytest.param(True, [273], [], [273], id="number-into-boolean"),
    pytest.param(-16, [False], [], [False], id="boolean-into-bigint"),
    pytest.param(1, [2.0, 3.5], [2], [3.5], id="double-into-bigint"),
    pytest.param(1, ["7", "07", "x"], [7], ["07", "x"], id="text-into-bigint"),
    pytest.param(True, ["true", "yes"], [True], ["yes"], id="text-into-boolean"),
    pytest.param("a", [5], ["5"], [], id="number-into-text"),
    pytest.param(1, [True, 2], [2], [True], id="json-into-bigint"),
    pytest.param("a", ["b", 5, {"k": 1}], ["b", "5"], [{"k": 1}], id="json-into-text"),
    pytest.param(
        {"f": True}, [{"f": 1}, {"f": True}], [{"f": True}], [{"f": 1}], id="json-into-nested-boolean"
    ),
    pytest.param({"f": 1}, [{"f": False}], [], [{"f": False}], id="boolean-into-nested-bigint"),
    # inside a struct a JSON string would keep its quotes: set aside rather than landed changed
    pytest.param({"f": "a"}, [{"f": "b"}, {"f": 2}], [], [{"f": "b"}, {"f": 2}], id="json-into-nested-text"),
]


@pytest.mark.parametrize("contract", ["quarantine", "discard"])
@pytest.mark.parametrize(("held", "arriving", "landed", "aside"), CASES)
def test_only_values_stored_unchanged_fit_the_held_column(
    lake: Callable[[str], Lake],
    contract: str,
    held: Any,
    arriving: list[Any],
    landed: list[Any],
    aside: list[Any],
) -> None:
    t = lake(contract)
    t.write([{"id": 0, "v": held}])
    t.run()
    t.write([{"id": i, "v": v} for i, v in enumerate(arriving, start=1)])
    load = t.run().steps[0].load
    assert [r["v"] for r in t.rows("select id, v from raw.src__t where id > 0 order by id")] == landed
    counted = load.rows_quarantined if contract == "quarantine" else load.rows_discarded
    assert counted == len(aside), load.events
    if contract == "quarantine":
        records = t.rows("select _gm_record from raw.src__t__quarantine") if aside else []
        assert sorted(json.dumps(json.loads(r["_gm_record"])["v"]) for r in records) == sorted(
            json.dumps(v) for v in aside
        )


def test_evolve_refuses_a_boolean_where_a_number_was(lake: Callable[[str], Lake]) -> None:
    t = lake("evolve")
    t.write([{"id": 0, "v": -16}])
    t.run()
    t.write([{"id": 1, "v": False}])
    error = t.run(ok=False).steps[0].error
    assert 'type drift in column "v": BIGINT -> BOOLEAN (first in record 1)' in error
    assert t.rows("select id, v from raw.src__t") == [{"id": 0, "v": -16}]
