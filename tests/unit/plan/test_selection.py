"""The selection syntax over the demo project's graph."""

from __future__ import annotations

from pathlib import Path

import pytest

from gristmill.errors import SelectionError
from gristmill.plan import build_graph, select
from gristmill.project import load_project


@pytest.fixture
def graph(demo: Path):  # type: ignore[no-untyped-def]
    return build_graph(load_project(demo))


def test_everything_in_dependency_order(graph) -> None:  # type: ignore[no-untyped-def]
    chosen = select(graph)
    assert len(chosen) == 19
    for name in chosen:
        for parent in graph.assets[name].upstream:
            assert chosen.index(parent) < chosen.index(name)


def test_ancestors_and_descendants(graph) -> None:  # type: ignore[no-untyped-def]
    assert select(graph, ["+dim_customer"]) == [
        "raw.chinook_db__customer",
        "raw.chinook_db__employee",
        "staging.stg_customer",
        "staging.stg_employee",
        "marts.dim_customer",
    ]
    assert select(graph, ["dim_track+"]) == ["marts.dim_track", "marts.revenue_by_genre_country_month"]
    assert select(graph, ["1+dim_customer"]) == [
        "staging.stg_customer",
        "staging.stg_employee",
        "marts.dim_customer",
    ]


def test_tags_sources_wildcards_union_and_exclude(graph) -> None:  # type: ignore[no-untyped-def]
    assert select(graph, ["tag:finance"]) == [
        "marts.fct_invoice_line",
        "marts.revenue_by_genre_country_month",
    ]
    assert sorted(select(graph, ["source:chinook_export"])) == [
        "raw.chinook_export__invoice",
        "raw.chinook_export__invoice_line",
    ]
    assert len(select(graph, ["staging.*"])) == 5
    assert sorted(select(graph, ["dim_date, dim_track"])) == ["marts.dim_date", "marts.dim_track"]
    assert sorted(select(graph, ["marts.*"], exclude=["tag:finance"])) == [
        "marts.dim_customer",
        "marts.dim_date",
        "marts.dim_track",
    ]


def test_no_match_suggests_a_name(graph) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SelectionError) as caught:
        select(graph, ["dim_custmer"])
    assert 'the selection "dim_custmer" matches no asset' in str(caught.value)
    assert caught.value.hint == 'did you mean "dim_customer"?'


def test_unknown_selector(graph) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SelectionError, match='unknown selector "owner:"'):
        select(graph, ["owner:me"])


def test_selecting_a_model_whose_upstream_was_never_built_says_how(demo: Path) -> None:
    from gristmill.workspace import Workspace

    with pytest.raises(SelectionError) as caught:
        Workspace(demo).plan(["dim_customer"])
    assert "marts.dim_customer reads staging.stg_customer, which has never been built" in str(caught.value)
    assert caught.value.hint == "select it too: -s +dim_customer"
